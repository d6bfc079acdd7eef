"""Every text in ../shared/data, as the parity tests feed them to both tokenizers.

Raw lines of every text file (TSV rows with their labels and tabs, CoNLL rows, book lines,
README) plus the texts a pipeline would really tokenize: CoNLL/WNUT sentences (tokens joined
by a space), SQuAD contexts, questions and answers. Files are decoded as UTF-8 with
errors="replace" (shakespeare-caesar.txt is Latin-1 on purpose) and split on "\\n" only, so
CRLF books keep their "\\r" (the tokenizers must treat it as whitespace).
"""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
SKIP_DIRS = {"vocab"}  # the vocab files are the tokenizers' input, not text


def text_files(root: Path = SHARED_DATA) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".json"
                  and not SKIP_DIRS & set(p.relative_to(root).parts))


def file_lines(path: Path) -> list[str]:
    return path.read_bytes().decode("utf-8", errors="replace").split("\n")


def conll_sentences(path: Path) -> list[str]:
    sentences, cur = [], []
    for line in file_lines(path):
        if not line.strip() or line.startswith("-DOCSTART-"):
            if cur:
                sentences.append(" ".join(cur))
            cur = []
        else:
            cur.append(line.split("\t" if "\t" in line else " ")[0])
    if cur:
        sentences.append(" ".join(cur))
    return sentences


def squad_texts(path: Path) -> list[str]:
    out = []
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        for para in article["paragraphs"]:
            out.append(para["context"])
            for qa in para["qas"]:
                out.append(qa["question"])
                out.extend(a["text"] for a in qa["answers"])
    return out


def all_texts(root: Path = SHARED_DATA) -> dict[str, list[str]]:
    """name -> texts, for every source under `root`."""
    sources: dict[str, list[str]] = {}
    for path in text_files(root):
        name = str(path.relative_to(root))
        sources[name] = file_lines(path)
        if path.parent.name in ("conll2003", "wnut17"):
            sources[name + ":sentences"] = conll_sentences(path)
    for path in sorted((root / "squad").glob("*.json")):
        sources[str(path.relative_to(root))] = squad_texts(path)
    return sources


def sample(texts: list[str], every: int) -> list[str]:
    """Every `every`-th text plus every non-ASCII one (where the interesting cases are)."""
    return [t for i, t in enumerate(texts) if i % every == 0 or not t.isascii()]
