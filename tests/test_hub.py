"""Hub names (bertkit.hub) against a stand-in Hub on 127.0.0.1 (tests/hub_server.py): no internet.

Each resolution runs in a fresh process with HF_ENDPOINT / HF_HOME / HF_HUB_OFFLINE set, as a user
sets them (huggingface_hub reads them when it is imported).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.hub_server import HubServer, Repo

RESOLVE = "import sys; from bertkit.hub import resolve_model_path as r; print(r(sys.argv[1], sys.argv[2] or None))"


def _env(hub, home, offline=False):
    env = dict(os.environ, HF_ENDPOINT=hub.url if hub else "http://127.0.0.1:9", HF_HOME=str(home),
               HF_HUB_OFFLINE="1" if offline else "0", HF_HUB_DISABLE_PROGRESS_BARS="1")
    env.pop("HF_HUB_CACHE", None)
    return env


def resolve(name, hub, home, revision="", offline=False):
    """(returncode, stdout's last line, stderr) of resolve_model_path in a fresh process."""
    out = subprocess.run([sys.executable, "-c", RESOLVE, name, revision], env=_env(hub, home, offline),
                         capture_output=True, text=True, timeout=120)
    return out.returncode, (out.stdout.strip().splitlines() or [""])[-1], out.stderr


@pytest.fixture(scope="module")
def tiny_hf_dir(tmp_path_factory):
    """A tiny random transformers BertModel saved with safetensors, plus a vocab."""
    import torch
    from transformers import BertConfig, BertModel

    out = tmp_path_factory.mktemp("tiny_hf")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=37, max_position_embeddings=64)
    model = BertModel(config).eval()
    model.save_pretrained(out)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(94)]
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (out / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}), encoding="utf-8")
    return out, model


@pytest.fixture
def hub(tiny_hf_dir):
    directory, _ = tiny_hf_dir
    repo = Repo.from_dir(str(directory))
    repo.files["pytorch_model.bin"] = b"pickle bytes that must never be fetched"
    repo.files["onnx/model.onnx"] = b"not needed"
    server = HubServer({"tiny-org/tiny-bert": repo}).start()
    yield server
    server.stop()


def test_hub_name_downloads_the_model_files_and_loads_as_hf_does(hub, tiny_hf_dir, tmp_path):
    import torch

    import bertkit

    _, hf_model = tiny_hf_dir
    code, path, err = resolve("tiny-org/tiny-bert", hub, tmp_path)
    assert code == 0, err
    assert sorted(os.listdir(path)) == ["config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt"]
    assert hub.downloads("pytorch_model.bin") == 0 and hub.downloads("model.onnx") == 0

    ids = np.array([[2, 7, 8, 9, 3, 0], [2, 11, 3, 0, 0, 0]], np.int32)
    mask = (ids > 0).astype(np.int32)
    encoder = bertkit.load_pretrained(path)
    ours = encoder({"input_ids": ids, "token_type_ids": np.zeros_like(ids), "attention_mask": mask})
    with torch.no_grad():
        ref = hf_model(input_ids=torch.tensor(ids, dtype=torch.long), attention_mask=torch.tensor(mask))
    np.testing.assert_allclose(np.asarray(ours["sequence_output"]), ref.last_hidden_state.numpy(), atol=2e-5)
    np.testing.assert_allclose(np.asarray(ours["pooled_output"]), ref.pooler_output.numpy(), atol=2e-5)
    assert bertkit.load_tokenizer(path).encode("w3 w4").ids == [2, 8, 9, 3]

    # The cache answers offline, with no request to any server, and for a pinned commit too.
    before = len(hub.requests)
    assert resolve("tiny-org/tiny-bert", None, tmp_path, offline=True)[:2] == (0, path)
    sha = hub.repos["tiny-org/tiny-bert"].sha
    assert resolve("tiny-org/tiny-bert", None, tmp_path, revision=sha, offline=True)[:2] == (0, path)
    assert len(hub.requests) == before


def test_unknown_revision_and_repo_and_offline_misses_are_one_clear_error(hub, tmp_path):
    code, _, err = resolve("tiny-org/tiny-bert", hub, tmp_path, revision="v9")
    assert code != 0 and "tiny-org/tiny-bert@v9: the Hub repo has no revision 'v9'" in err
    code, _, err = resolve("tiny-org/missing", hub, tmp_path)
    assert "tiny-org/missing: not a local directory, and no such model repo on the Hub" in err
    code, _, err = resolve("tiny-org/tiny-bert", None, tmp_path, offline=True)
    assert "HF_HUB_OFFLINE is set while the Hugging Face cache has no copy" in err


def test_cli_reports_a_missing_repo_in_one_line(hub, tmp_path):
    out = subprocess.run([sys.executable, "-m", "bertkit", "embed", "--model", "tiny-org/missing"],
                         input="a text\n", env=_env(hub, tmp_path), capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "bertkit embed: error: tiny-org/missing: not a local directory, and no such model repo on the Hub "
        "(or it is private: log in with `hf auth login` or set HF_TOKEN)"]


def test_a_repo_with_only_pickled_weights_is_refused_with_what_to_do(tiny_hf_dir, tmp_path):
    directory, _ = tiny_hf_dir
    repo = Repo.from_dir(str(directory))
    repo.files["pytorch_model.bin"] = repo.files.pop("model.safetensors")
    server = HubServer({"old-org/bin-only": repo}).start()
    try:
        code, _, err = resolve("old-org/bin-only", server, tmp_path)
    finally:
        server.stop()
    assert code != 0
    assert "no model.safetensors in the Hub repo; it has only pytorch_model.bin" in err
    assert "unpickling" in err and "--revision refs/pr/N" in err
    assert server.downloads("pytorch_model.bin") == 0


def test_an_interrupted_download_resumes_to_the_same_bytes(hub, tmp_path):
    hub.cut["model.safetensors"] = 1
    code, path, err = resolve("tiny-org/tiny-bert", hub, tmp_path)
    assert code == 0, err
    with open(os.path.join(path, "model.safetensors"), "rb") as f:
        assert f.read() == hub.repos["tiny-org/tiny-bert"].files["model.safetensors"]
    assert hub.downloads("model.safetensors") == 2  # the cut one, then the rest with a Range request


def test_a_download_that_keeps_failing_says_so(hub, tmp_path):
    hub.cut["model.safetensors"] = 100
    code, _, err = resolve("tiny-org/tiny-bert", hub, tmp_path)
    assert code != 0
    assert err.strip().splitlines()[-1].startswith("bertkit.hub.HubError: tiny-org/tiny-bert: download failed (")
    assert "run again to resume it" in err


def test_a_local_path_wins_over_a_hub_name(tmp_path, tiny_hf_dir, monkeypatch):
    from bertkit.hub import resolve_model_path

    directory, _ = tiny_hf_dir
    link = tmp_path / "tiny-org" / "tiny-bert"
    link.parent.mkdir()
    link.symlink_to(directory)
    monkeypatch.chdir(tmp_path)
    assert resolve_model_path("tiny-org/tiny-bert") == "tiny-org/tiny-bert"
    with pytest.raises(ValueError, match="a local path has no revisions"):
        resolve_model_path("tiny-org/tiny-bert", revision="main")
    with pytest.raises(FileNotFoundError, match="not a Hugging Face Hub name"):
        resolve_model_path("./no/such/dir")
    with pytest.raises(FileNotFoundError, match="vocab.txt: no such file or directory"):
        resolve_model_path("vocab.txt")  # a missing file is a missing file, not a Hub lookup


@pytest.mark.slow
def test_bertkit_embed_with_a_sentence_transformers_hub_name(minilm_path, tmp_path):
    """`bertkit embed --model sentence-transformers/all-MiniLM-L6-v2` gives the local folder's vectors."""
    from bertkit import Embedder

    server = HubServer({"sentence-transformers/all-MiniLM-L6-v2": Repo.from_dir(minilm_path)}).start()
    texts = ["A man is playing a guitar.", "", "The new movie is awesome, says the critic."]
    try:
        out = subprocess.run([sys.executable, "-m", "bertkit", "embed", "--model",
                              "sentence-transformers/all-MiniLM-L6-v2", "--output", str(tmp_path / "e.npy")],
                             input="\n".join(texts) + "\n", env=_env(server, tmp_path / "home"),
                             capture_output=True, text=True, timeout=600)
    finally:
        server.stop()
    assert out.returncode == 0, out.stderr
    got = np.load(tmp_path / "e.npy")
    want = Embedder(minilm_path).encode(texts)
    assert got.shape == want.shape == (3, 384)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_a_sharded_safetensors_checkpoint_loads_as_one(tiny_hf_dir, tmp_path):
    import bertkit

    directory, hf_model = tiny_hf_dir
    hf_model.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    names = os.listdir(tmp_path / "sharded")
    assert "model.safetensors.index.json" in names and len([n for n in names if n.endswith(".safetensors")]) > 2
    ids = np.array([[2, 7, 8, 3]], np.int32)
    inputs = {"input_ids": ids, "token_type_ids": np.zeros_like(ids), "attention_mask": np.ones_like(ids)}
    whole = bertkit.load_pretrained(str(directory))(inputs)["sequence_output"]
    sharded = bertkit.load_pretrained(str(tmp_path / "sharded"))(inputs)["sequence_output"]
    np.testing.assert_array_equal(np.asarray(whole), np.asarray(sharded))
