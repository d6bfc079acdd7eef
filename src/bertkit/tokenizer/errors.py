"""Errors for bad tokenizer input. All are ValueErrors, so the CLI prints them as one line."""

from __future__ import annotations


class TokenizerError(ValueError):
    """Base class; `path` and `line` (1-based) say where the problem is, when known."""

    def __init__(self, message: str, path=None, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        where = self.path or ""
        if line is not None:
            where = f"{where}:{line}" if where else f"line {line}"
        super().__init__(f"{where}: {message}" if where else message)


class VocabError(TokenizerError):
    """The vocab is empty, has duplicates or blank lines, or lacks a special token."""


class CasingError(TokenizerError):
    """The vocab's casing contradicts the tokenizer settings (e.g. cased vocab, lower_case=True)."""


class CorpusEncodingError(TokenizerError):
    """A corpus file is not valid UTF-8."""
