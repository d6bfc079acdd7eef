"""Model names from the Hugging Face Hub: `bert-base-uncased`, `sentence-transformers/all-MiniLM-L6-v2`.

`resolve_model_path(name_or_path)` turns what a user typed into a local model directory:
  - an existing local path wins, whatever it looks like;
  - otherwise a Hub repo id ("name" or "owner/name") is downloaded with `huggingface_hub`'s cache
    (`HF_HOME` / `HF_HUB_CACHE`), so a second call costs nothing and `HF_HUB_OFFLINE=1` uses the cache
    with no network; the token comes from where `huggingface_hub` keeps it (`HF_TOKEN`, `hf auth
    login`), the server from `HF_ENDPOINT`; `revision` pins a branch, tag or commit.

Only the files a BERT directory needs are fetched (config, safetensors weights, vocabulary,
sentence-transformers' module files), never pickled weights: `pytorch_model.bin` can run code when
loaded, so a repo that has only that gets an error saying how to get safetensors instead.
"""

from __future__ import annotations

import fnmatch
import os
import re

# What a model directory is made of (pretrained.py, tokenizer/, embeddings.py read these). Patterns
# are fnmatch'ed against repo paths ("*" also crosses "/"), so sub-folders are named explicitly.
ALLOW_PATTERNS = (
    "config.json", "model.safetensors", "model.safetensors.index.json", "model-*-of-*.safetensors",
    "vocab.txt", "tokenizer_config.json", "special_tokens_map.json",
    "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json",
    "[0-9]_*/config.json", "[0-9]_Dense/model.safetensors",
    # An original google-research/bert checkpoint (TF variables, not pickle) is read too.
    "bert_config.json", "bert_model.ckpt.*",
)
PICKLED_WEIGHTS = ("pytorch_model.bin", "tf_model.h5", "flax_model.msgpack", "pytorch_model-*.bin")
# A Hub repo id: "name" or "owner/name"; letters, digits, "-", "_", "." (not leading, no "..").
_REPO_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9_.-]*/)?[A-Za-z0-9][A-Za-z0-9_.-]*$")


class HubError(ValueError):
    """A Hub name that cannot give a model directory (not found, offline with no cache, no safetensors)."""


# A missing path ending like a file (vocab.txt, config.json, ...) is reported as a missing file.
_FILE_SUFFIXES = (".txt", ".json", ".jsonl", ".tsv", ".csv", ".safetensors", ".bin", ".h5", ".index", ".gz")


def is_repo_id(name: str) -> bool:
    return (bool(_REPO_ID.match(name)) and ".." not in name and not name.endswith((".", "-"))
            and not name.lower().endswith(_FILE_SUFFIXES))


def resolve_model_path(name_or_path: str | os.PathLike, revision: str | None = None) -> str:
    """A local directory holding the model `name_or_path` names.

    Args:
      name_or_path: a local directory (returned as is when it exists), or a Hugging Face Hub model
        repo id such as "google-bert/bert-base-uncased".
      revision: a branch, tag or commit of the Hub repo (default "main"); an error with a local path.

    Returns:
      The path of the directory (for a Hub name, the snapshot folder in huggingface_hub's cache).

    Raises:
      FileNotFoundError: not a local path and not a valid repo id.
      HubError (a ValueError): the repo or revision does not exist, the Hub cannot be reached and
        the cache has no copy (e.g. `HF_HUB_OFFLINE=1`), a download failed after huggingface_hub's
        retries, or the repo has no safetensors weights.
    """
    path = os.fspath(name_or_path)
    if os.path.exists(path):
        if revision is not None:
            raise ValueError(f"{path}: a local path has no revisions (--revision {revision} is for Hub names)")
        return path
    if not is_repo_id(path):
        raise FileNotFoundError(f"{path}: no such file or directory (and not a Hugging Face Hub name)")
    folder = _download(path, revision)
    names = _relative_files(folder)
    if not any(fnmatch.fnmatch(n, p) for n in names for p in ("*.safetensors", "bert_model.ckpt.index")):
        raise HubError(_no_safetensors_message(path, revision))
    return folder


def _download(repo_id: str, revision: str | None) -> str:
    import httpx2  # huggingface_hub's HTTP client: its errors are what a dropped connection raises
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    where = f"{repo_id}" + (f"@{revision}" if revision else "")
    try:
        return snapshot_download(repo_id, revision=revision, allow_patterns=list(ALLOW_PATTERNS))
    except RevisionNotFoundError:
        raise HubError(f"{where}: the Hub repo has no revision {revision!r}") from None
    except GatedRepoError:
        raise HubError(f"{where}: a gated repo; accept its terms on the Hub and log in (`hf auth login` or "
                       "HF_TOKEN)") from None
    except RepositoryNotFoundError:
        raise HubError(f"{repo_id}: not a local directory, and no such model repo on the Hub "
                       "(or it is private: log in with `hf auth login` or set HF_TOKEN)") from None
    except LocalEntryNotFoundError as e:
        from huggingface_hub.constants import is_offline_mode

        if is_offline_mode():
            raise HubError(f"{where}: not a local directory, and HF_HUB_OFFLINE is set while the Hugging Face cache "
                           "has no copy of it; download it once with the Hub reachable") from None
        cause = _first_line(e.__cause__) if e.__cause__ else _first_line(e)
        raise HubError(f"{where}: not a local directory, and the Hub cannot be reached ({cause}) while the "
                       "Hugging Face cache has no copy of it") from None
    except EntryNotFoundError as e:
        raise HubError(f"{where}: {_first_line(e)}") from None
    except (OSError, httpx2.HTTPError) as e:  # cut short after huggingface_hub's own retries with resume
        raise HubError(f"{where}: download failed ({_first_line(e)}); run again to resume it") from None


def _relative_files(folder: str) -> list[str]:
    return [os.path.relpath(os.path.join(root, f), folder).replace(os.sep, "/")
            for root, _, files in os.walk(folder) for f in files]


def _no_safetensors_message(repo_id: str, revision: str | None) -> str:
    where = f"{repo_id}" + (f"@{revision}" if revision else "")
    pickled = []
    try:
        from huggingface_hub import list_repo_files

        pickled = [n for n in list_repo_files(repo_id, revision=revision)
                   if any(fnmatch.fnmatch(n, p) for p in PICKLED_WEIGHTS)]
    except Exception:  # offline, or the listing failed: the message below still holds
        pass
    found = f" it has only {', '.join(pickled)}," if pickled else ""
    return (f"{where}: no model.safetensors in the Hub repo;{found} bertkit loads safetensors only, because "
            "unpickling a .bin file can run arbitrary code. Look for a safetensors conversion on the repo's "
            "'Community' tab (pass --revision refs/pr/N), or convert it yourself where you trust the file: "
            f"transformers.AutoModel.from_pretrained('{repo_id}').save_pretrained(DIR), then give DIR")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
