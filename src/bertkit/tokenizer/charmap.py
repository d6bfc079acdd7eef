"""Per-code-point normalisation tables for the in-graph tokenizer, built from `basic.py`.

The in-graph path cannot call Python, so the Python normaliser is tabulated once for every
code point U+0000..U+10FFFF: each code point maps to a ROW, a short sequence of output code
points with a pre-tokenization class each (WHITESPACE / WORD / ISOLATED). Most code points
map to themselves; they share placeholder rows holding -1 ("the input code point").

Layout (all int32, small enough to be constants in a SavedModel):
  page_index [0x1100]        page of code point cp is page_index[cp >> 8]
  pages      [n_pages * 256] row of cp is pages[page_index[cp >> 8] * 256 + (cp & 255)]
  row_splits [n_rows + 1]    row r holds values[row_splits[r]:row_splits[r + 1]]
  values, classes            output code points (-1 = copy the input) and their classes

Identical 256-code-point pages are stored once (unassigned planes, CJK blocks), so the tables
stay around 100-200 KB instead of 4 MB for a flat array.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass

import numpy as np

from . import unicode_tables as tables
from .basic import ISOLATED, WHITESPACE, WORD, BasicTokenizer

N_CODE_POINTS = 0x110000
SPECIAL = 3  # class of characters inside a special token matched in the raw text
REMOVED_ROW, SPECIAL_ROW = 0, 1
_IDENTITY_ROWS = {WORD: 2, ISOLATED: 3}  # rows whose output is the input code point
_FIXED_ROWS = [((), ()), ((-1,), (SPECIAL,)), ((-1,), (WORD,)), ((-1,), (ISOLATED,))]


@dataclass(frozen=True)
class CharTables:
    page_index: np.ndarray
    pages: np.ndarray
    row_splits: np.ndarray
    values: np.ndarray
    classes: np.ndarray

    def rows_of(self, cps: np.ndarray) -> np.ndarray:
        """The row of each code point (numpy mirror of the in-graph lookup, for tests)."""
        cps = np.asarray(cps, dtype=np.int64)
        return self.pages[self.page_index[cps >> 8] * 256 + (cps & 255)]

    def expand(self, cp: int) -> tuple[list[int], list[int]]:
        """Output code points and classes for one code point (for tests)."""
        r = int(self.rows_of([cp])[0])
        lo, hi = self.row_splits[r], self.row_splits[r + 1]
        return [cp if v == -1 else int(v) for v in self.values[lo:hi]], [int(c) for c in self.classes[lo:hi]]


def _range_mask(ranges) -> np.ndarray:
    mask = np.zeros(N_CODE_POINTS, dtype=bool)
    for lo, hi in ranges:
        mask[lo:hi + 1] = True
    return mask


def _changing_code_points(strip_accents: bool, lower_case: bool, untouched: np.ndarray) -> list[int]:
    """Code points whose normalised form may differ from themselves (the rest are identity)."""
    extra = set(tables.LOWER_OVERRIDES) | set(tables.NFD_OVERRIDES)
    out = []
    for cp in np.flatnonzero(untouched).tolist():
        c = chr(cp)
        if (cp in extra or (lower_case and c.lower() != c)
                or (strip_accents and not unicodedata.is_normalized("NFD", c))):
            out.append(cp)
    return out


@functools.lru_cache(maxsize=8)
def build_char_tables(lower_case: bool, strip_accents: bool | None, tokenize_chinese_chars: bool) -> CharTables:
    """Tabulate `BasicTokenizer.normalize_char` for these settings (about 1 s; cached)."""
    basic = BasicTokenizer(lower_case, strip_accents, tokenize_chinese_chars)
    removed = _range_mask(tables.REMOVED)
    if basic.strip_accents:
        removed |= _range_mask(tables.STRIPPED_MARKS)
    spaces = _range_mask(tables.WHITESPACE)
    isolated = _range_mask(tables.PUNCTUATION)
    if tokenize_chinese_chars:
        isolated |= _range_mask(tables.CJK)

    row_of = np.full(N_CODE_POINTS, _IDENTITY_ROWS[WORD], dtype=np.int32)
    row_of[isolated] = _IDENTITY_ROWS[ISOLATED]
    row_of[removed] = REMOVED_ROW
    rows = list(_FIXED_ROWS)
    row_ids = {row: i for i, row in enumerate(rows)}

    def row_for(values: tuple, classes: tuple) -> int:
        key = (values, classes)
        if key not in row_ids:
            row_ids[key] = len(rows)
            rows.append(key)
        return row_ids[key]

    row_of[spaces] = row_for((32,), (WHITESPACE,))
    untouched = ~(removed | spaces)
    for cp in _changing_code_points(basic.strip_accents, lower_case, untouched):
        out, classes = basic.normalize_char(chr(cp))
        if out == chr(cp):
            continue  # identity after all; keep its class row
        row_of[cp] = row_for(tuple(map(ord, out)), classes)
    return _pack(row_of, rows)


def _pack(row_of: np.ndarray, rows: list) -> CharTables:
    page_table = row_of.reshape(-1, 256)
    unique_pages, page_index = np.unique(page_table, axis=0, return_inverse=True)
    lengths = np.array([len(v) for v, _ in rows], dtype=np.int32)
    row_splits = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    values = np.array([x for v, _ in rows for x in v], dtype=np.int32)
    classes = np.array([x for _, c in rows for x in c], dtype=np.int32)
    return CharTables(page_index.reshape(-1).astype(np.int32), unique_pages.reshape(-1).astype(np.int32),
                      row_splits, values, classes)
