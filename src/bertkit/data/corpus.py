"""Pretraining corpora: files -> documents of sentences, checked before any work starts.

Two input formats:
  * "lines": the BERT format. One sentence per line, a blank line between documents.
  * "prose": running text, hard-wrapped or not. Each FILE is one document (a book, as in BookCorpus);
    blank lines separate paragraphs, and paragraphs are split into sentences by `split_sentences`.
  * "auto" (default) picks one per file by looking at its first lines (`detect_format`).

Files are read line by line (plain or gzip, UTF-8; `errors="strict"` names the file and line of a bad
byte), so a corpus never has to fit in memory; one document is held whole.
"""

from __future__ import annotations

import dataclasses
import gzip
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)
SINGLE_SENTENCE = "the corpus holds a single sentence: next-sentence prediction needs at least two. Add text or files"

FORMATS = ("auto", "lines", "prose")
ERRORS = ("strict", "replace")


class CorpusError(ValueError):
    """Bad pretraining input (empty corpus, one document, undecodable bytes...). A ValueError, so the
    CLI prints it as one line."""


# ---------------------------------------------------------------------------------------------------
# Reading: files -> documents of sentences
# ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class RawDocument:
    sentences: list[str]
    path: str
    line: int  # first line of the document (1-based), for messages


# Abbreviations after which a period does not end a sentence ("Mr. Knightley", "St. Paul").
_ABBREVIATIONS = frozenset(
    "mr mrs ms messrs mme mlle dr st jr sr prof capt col gen lt sgt maj rev hon gov esq vs etc viz cf "
    "ch chap vol no nos fig op pp ed e.g i.e a.m p.m".split())
# A candidate boundary: terminal punctuation, optional closing quotes/brackets, whitespace, and then
# something that can start a sentence (optional opening quotes/brackets, then a capital or a digit).
_BOUNDARY = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*\s+(?=[\"'\u201c\u2018(\[]*[A-Z0-9])")
_LAST_WORD = re.compile(r"(\S+)$")


def split_sentences(paragraph: str) -> list[str]:
    """Split a paragraph of running text into sentences with a small rule-based splitter.

    Rule: a sentence ends at `.`, `!` or `?` (optionally followed by closing quotes or brackets) when
    whitespace and then a capital letter, digit or opening quote follow, unless the `.` ends a known
    abbreviation ("Mr.", "St.", "e.g.") or a single capital letter (initials such as "J. Smith", "A. M.").
    Line breaks inside the paragraph are joined. This is not a full sentence tokenizer (a quote ending in
    "?" followed by a name is split), but NSP only needs boundaries that are usually right.
    """
    text = " ".join(paragraph.split())
    sentences, start = [], 0
    for m in _BOUNDARY.finditer(text):
        if m.group().startswith(".") and not m.group().startswith(".."):  # "..." always ends
            last = _LAST_WORD.search(text, start, m.start())
            word = last.group(1).lstrip("\"'(\u201c\u2018[").lower() if last else ""
            if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
                continue
        end = m.end()
        sentences.append(text[start:end].strip())
        start = end
    if start < len(text):
        sentences.append(text[start:].strip())
    return [s for s in sentences if s]


def detect_format(lines: Sequence[str]) -> str:
    """"prose" for hard-wrapped running text, "lines" for one sentence per line (the BERT format).

    In the BERT format almost every line ends a sentence; in hard-wrapped text most lines stop
    mid-sentence (measured on the Gutenberg books: 65-89% unterminated, vs 13% in bert_sample_text).
    """
    sample = [line.strip() for line in lines if line.strip()][:300]
    if not sample:
        return "lines"
    unterminated = sum(not re.search(r"[.!?:;][\"'\u201d\u2019)\]]*$", s) for s in sample) / len(sample)
    long = sum(len(s) > 100 for s in sample) / len(sample)
    return "prose" if unterminated >= 0.4 and long < 0.2 else "lines"


def _open_binary(path: str):
    """(line iterator over bytes, raw file) — gzip recognised by its magic bytes, not by the name."""
    raw = open(path, "rb")
    if raw.read(2) == b"\x1f\x8b":
        raw.seek(0)
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw
    raw.seek(0)
    return raw, raw


def _decode_lines(path: str, errors: str, on_bytes: Callable[[int], None] | None = None) -> Iterator[str]:
    """Lines of a file as str without line endings (LF, CRLF and CR all accepted; BOM dropped).

    Undecodable bytes raise CorpusError naming the file, line and byte unless errors="replace".
    """
    stream, raw = _open_binary(path)
    last_pos = 0
    try:
        for lineno, data in enumerate(stream, 1):
            try:
                line = data.decode("utf-8")
            except UnicodeDecodeError as e:
                if errors != "replace":
                    raise CorpusError(
                        f"{path}:{lineno}: byte 0x{data[e.start]:02x} at column {e.start + 1} is not valid "
                        f"UTF-8; convert the file to UTF-8 or use errors='replace' (--errors replace) to "
                        f"substitute U+FFFD") from None
                line = data.decode("utf-8", errors="replace")
            if lineno == 1:
                line = line.lstrip("\ufeff")
            text = line.rstrip("\r\n")
            if "\r" in text:  # a lone CR is a line break too (old Mac files)
                yield from text.split("\r")
            else:
                yield text
            if on_bytes is not None and lineno % 4096 == 0:
                pos = raw.tell()
                on_bytes(pos - last_pos)
                last_pos = pos
    finally:
        if on_bytes is not None:
            on_bytes(raw.tell() - last_pos)
        stream.close()
        raw.close()


def _file_format(path: str, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    head = []
    for line in _decode_lines(path, "replace"):
        head.append(line)
        if len(head) >= 2000:
            break
    return detect_format(head)


def _blocks(lines: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """Groups of consecutive non-blank lines, with the 1-based line number of the first."""
    block, first = [], 0
    for lineno, line in enumerate(lines, 1):
        line = line.strip()
        if line:
            if not block:
                first = lineno
            block.append(line)
        elif block:
            yield first, block
            block = []
    if block:
        yield first, block


def expand_corpus(paths: Sequence[str]) -> list[str]:
    """Corpus arguments -> files: a folder stands for every file below it (sorted, hidden ones
    skipped), so a folder of short texts is a corpus as it is; files are kept as given.
    Raises FileNotFoundError for a missing path and CorpusError for a folder with no files."""
    files: list[str] = []
    for path in map(str, paths):
        p = Path(path)
        if p.is_dir():
            found = sorted(str(f) for f in p.rglob("*")
                           if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts))
            if not found:
                raise CorpusError(f"{path}: the folder holds no files")
            files += found
        elif p.exists():
            files.append(path)
        else:
            raise FileNotFoundError(f"corpus file not found: {path}")
    return files


def read_documents(paths: Sequence[str], *, fmt: str = "auto", errors: str = "strict",
                   on_bytes: Callable[[int], None] | None = None) -> Iterator[RawDocument]:
    """Lazily yield the documents of `paths` (plain or gzip, UTF-8).

    fmt "lines": a blank line ends a document, each line is a sentence. Deviation: google-research
    continues the last document of a file into the next file; here a file end always ends a document.
    fmt "prose": one document per file, sentences from `split_sentences` over each paragraph.
    `on_bytes(n)` reports progress in bytes read from disk.
    """
    if fmt not in FORMATS or errors not in ERRORS:
        raise ValueError(f"fmt must be one of {FORMATS} and errors one of {ERRORS}")
    for path in map(str, paths):
        file_fmt = _file_format(path, fmt)
        logger.info("%s: %s format", path, file_fmt)
        blocks = _blocks(_decode_lines(path, errors, on_bytes))
        if file_fmt == "lines":
            for first, block in blocks:
                yield RawDocument(block, path, first)
        else:
            sentences, first_line = [], 0
            for first, block in blocks:
                first_line = first_line or first
                sentences.extend(split_sentences(" ".join(block)))
            if sentences:
                yield RawDocument(sentences, path, first_line)


@dataclasses.dataclass
class CorpusSummary:
    files: int = 0
    bytes: int = 0
    documents: int = 0  # counted up to `check_corpus`'s stop point when it stops early


def check_corpus(paths: Sequence[str], *, fmt: str = "auto", errors: str = "strict",
                 full: bool = True) -> CorpusSummary:
    """Fail fast, before any work: missing or empty files, undecodable bytes, fewer than two documents.

    With full=True every byte is decoded once (cheap next to tokenization: about 1 s for 10 MB), so a bad
    byte at the end of the last file is reported before hours of processing. full=False stops as soon as
    two documents are seen (the document count is then a lower bound).
    """
    if not paths:
        raise CorpusError("no corpus files given")
    summary = CorpusSummary()
    for path in map(str, paths):
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"corpus file not found: {path}")
        summary.files += 1
        summary.bytes += p.stat().st_size
    sentences = 0
    for document in read_documents(paths, fmt=fmt, errors=errors):
        summary.documents += 1
        sentences += len(document.sentences)
        if not full and summary.documents >= 2:
            return summary
    if summary.documents == 0:
        raise CorpusError(f"the corpus is empty: no text in {', '.join(map(str, paths))}")
    # A single document (one book) is fine: `_pools` cuts it in two, see `split_document`.
    if sentences < 2:
        raise CorpusError(SINGLE_SENTENCE)
    return summary
