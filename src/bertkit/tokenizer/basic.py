"""Basic (pre-WordPiece) tokenization: clean, split CJK, strip accents, lower-case, split punctuation.

The behaviour is that of the original BERT `BasicTokenizer` as implemented by HF `tokenizers`
(`BertNormalizer` + `BertPreTokenizer`), because that is what every released BERT checkpoint is
used with today and what we test against token-for-token. Where the HF implementation differs
from google-research's Python, we follow HF and say so:

* Character classes (control, punctuation, non-spacing mark, CJK) come from `unicode_tables`,
  which is probed from HF itself (see `_gen_unicode_tables`), not from `unicodedata`.
* Lower-casing is per character (Rust `char::to_lowercase`), so a final capital sigma becomes
  `σ`, never `ς` (Python's `str.lower()` is context sensitive).
* Order is clean -> CJK -> NFD + strip marks -> lower-case (google lower-cases first).
* Offsets: every normalised character remembers the ORIGINAL character it came from. A
  character that expands (NFD `é` -> `e` + mark, `İ`.lower() -> `i` + dot, Hangul -> jamo) gives
  all of its pieces the original character's index, exactly like HF's alignments.

Special tokens such as `[MASK]` are matched in the raw text first (case-sensitive, even inside
a word: `a[MASK]b` -> `a`, `[MASK]`, `b`) and never normalised, as HF's added tokens are.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from typing import NamedTuple

from . import unicode_tables as tables

# Classes of normalised characters (also used by the in-graph tables in `fast.py`).
WHITESPACE, WORD, ISOLATED = 0, 1, 2

# ASCII characters HF's cleaner removes; their presence sends a text down the general path.
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# BERT counts every printable non-alphanumeric ASCII character as punctuation ("$", "^", "`"
# are symbols in Unicode, punctuation here).
_ASCII_WORD_OR_PUNCT = re.compile(r"[A-Za-z0-9]+|[!-/:-@\[-`{-~]")
_NON_SPACE = re.compile(r"[^\t\n\r ]+")


class RangeSet:
    """Membership in a sorted tuple of inclusive (lo, hi) code point ranges."""

    def __init__(self, ranges):
        self.lo = [lo for lo, _ in ranges]
        self.hi = [hi for _, hi in ranges]

    def __contains__(self, cp: int) -> bool:
        i = bisect_right(self.lo, cp) - 1
        return i >= 0 and cp <= self.hi[i]


REMOVED = RangeSet(tables.REMOVED)
SPACES = RangeSet(tables.WHITESPACE)
PUNCTUATION = RangeSet(tables.PUNCTUATION)
STRIPPED_MARKS = RangeSet(tables.STRIPPED_MARKS)
CJK = RangeSet(tables.CJK)
COMBINING = RangeSet(tables.COMBINING)


def nfd(c: str) -> str:
    """Canonical decomposition of one character, as the reference computes it."""
    return tables.NFD_OVERRIDES.get(ord(c)) or unicodedata.normalize("NFD", c)


def lower(c: str) -> str:
    """Per-character lower-casing, as Rust's `char::to_lowercase` (no final-sigma rule)."""
    return tables.LOWER_OVERRIDES.get(ord(c)) or c.lower()


def combining_class(c: str) -> int:
    """Canonical combining class as the reference's (older) NFD tables have it: marks newer
    than those tables are starters (0) there, so NFD does not re-order around them."""
    ccc = unicodedata.combining(c)
    return ccc if ccc and ord(c) in COMBINING else 0


def char_class(c: str) -> int:
    """Class of a normalised character for pre-tokenization."""
    cp = ord(c)
    if cp in SPACES:
        return WHITESPACE
    return ISOLATED if cp in PUNCTUATION else WORD


class Word(NamedTuple):
    """One pre-tokenized word (the public form of the plain tuples used internally for speed).

    `aligns` holds, for each character of `text`, the index of the original character it came
    from; it is None when the word is an unchanged slice of the input (`text[start:end]` up to
    case), so offsets are simply `start + i`. `special` marks a special token found in the text.
    """

    text: str
    start: int
    end: int
    aligns: list[int] | None
    special: bool = False


class BasicTokenizer:
    """Splits raw text into normalised words with offsets into the original string."""

    def __init__(self, lower_case: bool = True, strip_accents: bool | None = None,
                 tokenize_chinese_chars: bool = True, never_split=()):
        self.lower_case = lower_case
        # HF: strip_accents=None means "follow lower_case" (uncased BERT strips accents).
        self.strip_accents = lower_case if strip_accents is None else bool(strip_accents)
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.never_split = tuple(never_split)
        self._special_re = _special_pattern(self.never_split)
        self._decomp: dict[str, tuple[str, bool]] = {}
        self._finish: dict[tuple[str, bool], tuple[str, tuple[int, ...]]] = {}

    # ---- public -------------------------------------------------------------------------

    def split(self, text: str) -> list[Word]:
        """Pre-tokenize `text` into words (special tokens included, flagged `special`)."""
        return [Word(t, s, e, a, sp) for t, s, e, a, sp in self.split_tuples(text)]

    def tokenize(self, text: str) -> list[str]:
        return [w[0] for w in self.split_tuples(text)]

    def split_tuples(self, text: str) -> list[tuple]:
        """`split` as plain (text, start, end, aligns, special) tuples: the hot path."""
        if self._special_re is None or not self._special_re.search(text):
            return self._split_chunk(text, 0)
        words: list[tuple] = []
        pos = 0
        for m in self._special_re.finditer(text):
            words += self._split_chunk(text[pos:m.start()], pos)
            words.append((m.group(), m.start(), m.end(), None, True))
            pos = m.end()
        words += self._split_chunk(text[pos:], pos)
        return words

    def normalize_char(self, c: str) -> tuple[str, tuple[int, ...]]:
        """Normalised form of one character and the class of each output character.

        Context-free, so it can be tabulated for the in-graph tokenizer; the only context
        effect of the reference (canonical re-ordering of combining marks) is handled in
        `_normalize` for the Python path.
        """
        if not c:
            return "", ()
        decomposed, cjk = self._decompose(c)
        out, classes = "", ()
        for d in decomposed:
            o, k = self._finish_char(d, cjk)
            out, classes = out + o, classes + k
        return out, classes

    # ---- per-chunk ----------------------------------------------------------------------

    def _split_chunk(self, chunk: str, base: int) -> list[tuple]:
        if not chunk:
            return []
        if chunk.isascii() and not _ASCII_CONTROL.search(chunk):
            return self._split_ascii(chunk, base)
        # Mostly-ASCII text with a few special characters (a SQuAD context with one "é") only
        # needs the general path for the non-ASCII stretches. ASCII whitespace always ends a
        # word and no combining mark re-orders across it, so cutting there changes nothing.
        words: list[tuple] = []
        for m in _NON_SPACE.finditer(chunk):
            seg, start = m.group(), base + m.start()
            if seg.isascii() and not _ASCII_CONTROL.search(seg):
                words += self._split_ascii(seg, start)
            else:
                words += _group_words(self._normalize(seg, start))
        return words

    def _split_ascii(self, chunk: str, base: int) -> list[tuple]:
        """ASCII is unchanged by NFD and lower-casing keeps lengths, so words are plain regex
        matches and offsets are positions."""
        if self.lower_case:
            chunk = chunk.lower()
        return [(m.group(), base + m.start(), base + m.end(), None, False)
                for m in _ASCII_WORD_OR_PUNCT.finditer(chunk)]

    def _normalize(self, chunk: str, base: int) -> list[tuple[str, int, int]]:
        """(char, class, original index) for each normalised character of `chunk`."""
        seq: list[tuple[str, int, bool]] = []  # (decomposed char, original index, from CJK)
        for i, c in enumerate(chunk, base):
            decomposed, cjk = self._decompose(c)
            seq.extend((d, i, cjk) for d in decomposed)
        if self.strip_accents:
            seq = _canonical_reorder(seq)
        out = []
        for d, i, cjk in seq:
            chars, classes = self._finish_char(d, cjk)
            out.extend(zip(chars, classes, [i] * len(chars)))
        return out

    def _decompose(self, c: str) -> tuple[str, bool]:
        """Clean + CJK + NFD: the steps that happen before marks are stripped."""
        hit = self._decomp.get(c)
        if hit is None:
            cp = ord(c)
            if cp in REMOVED:
                hit = ("", False)
            elif cp in SPACES:
                hit = (" ", False)
            else:
                cjk = self.tokenize_chinese_chars and cp in CJK
                hit = (nfd(c) if self.strip_accents else c, cjk)
            self._decomp[c] = hit
        return hit

    def _finish_char(self, d: str, cjk: bool) -> tuple[str, tuple[int, ...]]:
        """Strip marks, lower-case, classify one decomposed character."""
        hit = self._finish.get((d, cjk))
        if hit is None:
            if self.strip_accents and ord(d) in STRIPPED_MARKS:
                s = ""
            else:
                s = lower(d) if self.lower_case else d
            # A CJK ideograph is padded with spaces by the reference: its own word.
            hit = (s, tuple(ISOLATED if cjk else char_class(x) for x in s))
            self._finish[(d, cjk)] = hit
        return hit


def _group_words(chars: list[tuple[str, int, int]]) -> list[tuple]:
    """Runs of WORD characters form words; each ISOLATED character is a word by itself."""
    words: list[tuple] = []
    cur: list[str] = []
    aligns: list[int] = []

    def flush():
        if cur:
            words.append(("".join(cur), aligns[0], aligns[-1] + 1, aligns.copy(), False))
            cur.clear()
            aligns.clear()

    for ch, cls, i in chars:
        if cls == WORD:
            cur.append(ch)
            aligns.append(i)
            continue
        flush()
        if cls == ISOLATED:
            words.append((ch, i, i + 1, [i], False))
    flush()
    return words


def _canonical_reorder(seq: list[tuple[str, int, bool]]) -> list[tuple[str, int, bool]]:
    """Unicode canonical ordering of combining marks after per-character NFD.

    Per-character NFD equals whole-string NFD except that runs of combining marks must be
    stably sorted by combining class. The reference re-derives alignments from the sorted
    output: the first character of each decomposition takes the next original character's
    index, the others copy their left neighbour. We do the same, so offsets match even then.
    """
    ccc = [combining_class(d) for d, _, _ in seq]
    if not any(ccc[k] > ccc[k + 1] > 0 for k in range(len(seq) - 1)):
        return seq
    # (char, starts a decomposition, cjk); the source indices in input order.
    items = [(d, k == 0 or seq[k - 1][1] != i, cjk) for k, (d, i, cjk) in enumerate(seq)]
    sources = [i for (_, i, _), (_, first, _) in zip(seq, items) if first]
    k = 0
    while k < len(items):
        end = k
        while end < len(items) and ccc[end] > 0:
            end += 1
        if end > k + 1:
            run = sorted(zip(ccc[k:end], items[k:end]), key=lambda t: t[0])
            items[k:end] = [item for _, item in run]
        k = max(end, k + 1)
    out, src, prev = [], iter(sources), None
    for d, first, cjk in items:
        prev = next(src) if first else prev
        out.append((d, prev, cjk))
    return out


def _special_pattern(tokens) -> re.Pattern | None:
    """Regex for the special tokens, longest first so matching is leftmost-longest like HF."""
    tokens = sorted({t for t in tokens if t}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, tokens))) if tokens else None
