"""vocab.txt files: reading, validation (empty, blank lines, duplicates, specials) and casing checks."""

from __future__ import annotations

from pathlib import Path

from .errors import CasingError, VocabError


def read_vocab_file(path) -> list[str]:
    """Tokens of a vocab.txt, one per line (line number = id). CRLF endings are accepted."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: vocab file not found")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise VocabError(f"not valid UTF-8 (byte {e.start})", path, line) from None
    if text.startswith("\ufeff"):
        text = text[1:]  # a BOM is an editor artefact, not part of the first token
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line, it does not start a new one
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def validate_vocab(tokens: list[str], required, source=None) -> dict[str, int]:
    """token -> id, after checking the vocab is usable; errors name the file and line."""
    if not tokens:
        raise VocabError("the vocab is empty", source)
    vocab: dict[str, int] = {}
    for i, tok in enumerate(tokens):
        if not isinstance(tok, str) or tok == "":
            raise VocabError(f"empty or non-string token {tok!r} (id {i}); every line must hold one token",
                             source, i + 1)
        if tok in vocab:
            raise VocabError(f"duplicate token {tok!r} (also on line {vocab[tok] + 1}); ids would be ambiguous",
                             source, i + 1)
        vocab[tok] = i
    missing = [t for t in required if t not in vocab]
    if missing:
        raise VocabError(f"missing special token(s) {', '.join(missing)}; a BERT vocab needs "
                         f"{', '.join(required)} (or pass the names your vocab uses, e.g. unk_token=...)", source)
    return vocab


def vocab_is_cased(tokens) -> bool | None:
    """True if letters in the vocab have upper case, False if none do, None if it cannot tell."""
    words = [t for t in tokens if not (t.startswith("[") and t.endswith("]"))]
    letters = [t for t in words if any(c.isalpha() for c in t)]
    if len(letters) < 50:
        return None
    upper = sum(1 for t in letters if t != t.lower())
    return upper > 0.01 * len(letters)


def check_vocab_casing(tokens, lower_case: bool, source=None) -> None:
    cased = vocab_is_cased(tokens)
    if cased is None:
        return
    if lower_case and cased:
        raise CasingError("the vocab has upper-case tokens but lower_case=True, so they could never be "
                          "produced; use lower_case=False for a cased vocab (or check_casing=False)", source)
    if not lower_case and not cased:
        raise CasingError("the vocab has no upper-case tokens but lower_case=False, so every capitalised "
                          "word would split badly; use lower_case=True (or check_casing=False)", source)
