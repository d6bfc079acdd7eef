"""Train a WordPiece vocab.txt from raw text files.

Two passes, both streaming over the words rather than the text:

1. Count words. Files are read in blocks of lines, decoded (UTF-8; a bad byte is an error
   naming the file and line unless errors="replace"), and split by the SAME `BasicTokenizer`
   the trained vocab will be used with (so casing, accents and punctuation agree). Memory is
   bounded by the number of distinct words; past `max_distinct_words`, words seen once are
   dropped (a rare word is split into pieces anyway).
2. Learn pieces, as HF's WordPiece trainer does: byte-pair-style merges over the counted words,
   where a word starts as `w ##o ##r ##d` and the most frequent adjacent pair is merged until
   the vocab is full. Counts are updated incrementally, touching only the words that contain
   the merged pair, so the 10 MB Gutenberg set trains in seconds.

The vocab is: special tokens ([PAD] [UNK] [CLS] [SEP] [MASK], ids 0-4), optional [unusedN]
slots, every character kept in the alphabet both as a word start and as `##` continuation (so
corpus words never become [UNK] unless they contain a character rarer than the alphabet
cut-off), then the merged pieces in merge order.
"""

from __future__ import annotations

import heapq
import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .basic import BasicTokenizer
from .errors import CorpusEncodingError

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PREFIX = "##"
_BLOCK_LINES = 4096


@dataclass
class VocabStats:
    words: int = 0           # word occurrences counted
    distinct_words: int = 0
    alphabet: int = 0        # characters kept
    merges: int = 0


def count_words(files, basic: BasicTokenizer, errors: str = "strict", progress: bool = True,
                max_distinct_words: int = 5_000_000) -> Counter:
    """Word frequencies of `files`, pre-tokenized by `basic`."""
    if errors not in ("strict", "replace"):
        raise ValueError(f"errors must be 'strict' or 'replace', got {errors!r}")
    files = [Path(f) for f in files]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"{f}: corpus file not found")
    counts: Counter = Counter()
    bar = _progress_bar(sum(os.path.getsize(f) for f in files), progress)
    for path in files:
        for text, nbytes in _read_blocks(path, errors):
            counts.update(basic.tokenize(text))
            bar.update(nbytes)
            if len(counts) > max_distinct_words:
                counts = Counter({w: c for w, c in counts.items() if c > 1})
    bar.close()
    return counts


def _read_blocks(path: Path, errors: str):
    """Yield (decoded text of up to _BLOCK_LINES lines, their size in bytes)."""
    with open(path, "rb") as f:
        first_line = 1
        while True:
            lines = f.readlines(1 << 20)  # about 1 MB of whole lines
            if not lines:
                return
            raw = b"".join(lines)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                if errors == "strict":
                    line = first_line + raw[:e.start].count(b"\n")
                    col = e.start - raw.rfind(b"\n", 0, e.start)  # 1-based
                    raise CorpusEncodingError(
                        f"byte {raw[e.start]:#04x} at column {col} is not valid UTF-8; convert the file "
                        f"(e.g. iconv -f latin1 -t utf-8) or pass errors='replace' (--errors replace)",
                        path, line) from None
                text = raw.decode("utf-8", errors="replace")
            first_line += len(lines)
            yield text, len(raw)


def _progress_bar(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc="counting words", disable=not enabled)


def choose_alphabet(counts: Counter, limit: int) -> list[str]:
    """The `limit` most frequent characters (ties by code point, for determinism)."""
    chars: Counter = Counter()
    for word, c in counts.items():
        for ch in word:
            chars[ch] += c
    ranked = sorted(chars.items(), key=lambda kv: (-kv[1], kv[0]))
    return sorted(ch for ch, _ in ranked[:limit])


class _Merger:
    """Incremental pair counts over a set of words (symbol ids per word)."""

    def __init__(self, words: list[list[int]], freqs: list[int]):
        self.words, self.freqs = words, freqs
        self.pairs: Counter = Counter()
        self.where: dict[tuple[int, int], set[int]] = {}
        for i, (w, f) in enumerate(zip(words, freqs)):
            for pair in zip(w, w[1:]):
                self.pairs[pair] += f
                self.where.setdefault(pair, set()).add(i)

    def merge(self, pair: tuple[int, int], new: int) -> list[tuple[int, int]]:
        """Replace `pair` by symbol `new` everywhere; returns the pairs whose count changed."""
        a, b = pair
        changed = set()
        for i in self.where.pop(pair, ()):
            w, f = self.words[i], self.freqs[i]
            if not any(x == a and y == b for x, y in zip(w, w[1:])):
                continue  # stale index entry
            for p in zip(w, w[1:]):
                self.pairs[p] -= f
                changed.add(p)
            merged, k = [], 0
            while k < len(w):
                if k + 1 < len(w) and w[k] == a and w[k + 1] == b:
                    merged.append(new)
                    k += 2
                else:
                    merged.append(w[k])
                    k += 1
            self.words[i] = merged
            for p in zip(merged, merged[1:]):
                self.pairs[p] += f
                self.where.setdefault(p, set()).add(i)
                changed.add(p)
        self.pairs.pop(pair, None)
        changed.discard(pair)
        return list(changed)


def learn_pieces(counts: Counter, alphabet: list[str], n_merges: int, min_frequency: int = 2,
                 max_word_chars: int = 100) -> list[str]:
    """Merged pieces, most useful first (see module docstring)."""
    symbols = [s for ch in alphabet for s in (ch, PREFIX + ch)]
    ids = {s: i for i, s in enumerate(symbols)}
    words, freqs = [], []
    for word, f in counts.items():
        if len(word) > max_word_chars or any(ch not in ids for ch in word):
            continue  # a word with a character outside the alphabet is [UNK] whatever we learn
        words.append([ids[word[0]]] + [ids[PREFIX + ch] for ch in word[1:]])
        freqs.append(f)
    merger = _Merger(words, freqs)
    # Max-heap on count, ties broken by the pair's strings so training is deterministic.
    heap = [(-c, symbols[a], symbols[b], (a, b)) for (a, b), c in merger.pairs.items()]
    heapq.heapify(heap)
    learned: list[str] = []
    while heap and len(learned) < n_merges:
        neg, _, _, pair = heapq.heappop(heap)
        count = merger.pairs.get(pair, 0)
        if count != -neg:
            if count > 0:  # stale entry: re-queue with the current count
                heapq.heappush(heap, (-count, symbols[pair[0]], symbols[pair[1]], pair))
            continue
        if count < min_frequency:
            break
        token = symbols[pair[0]] + symbols[pair[1]][len(PREFIX):]
        if token not in ids:  # two different merges can spell the same piece
            ids[token] = len(symbols)
            symbols.append(token)
            learned.append(token)
        for p in merger.merge(pair, ids[token]):
            c = merger.pairs.get(p, 0)
            if c > 0:
                heapq.heappush(heap, (-c, symbols[p[0]], symbols[p[1]], p))
    return learned


def train_vocab(files, vocab_size: int, lower_case: bool = True, strip_accents: bool | None = None,
                tokenize_chinese_chars: bool = True, num_unused: int = 0, min_frequency: int = 2,
                limit_alphabet: int = 1000, errors: str = "strict", progress: bool = True,
                stats: VocabStats | None = None) -> list[str]:
    """Learn a WordPiece vocab (list of tokens, index = id) of at most `vocab_size` tokens."""
    basic = BasicTokenizer(lower_case, strip_accents, tokenize_chinese_chars)
    counts = count_words(files, basic, errors=errors, progress=progress)
    head = list(SPECIAL_TOKENS) + [f"[unused{i}]" for i in range(num_unused)]
    alphabet = choose_alphabet(counts, limit_alphabet)
    base = head + [s for prefix in ("", PREFIX) for s in (prefix + ch for ch in alphabet)]
    if vocab_size < len(base):
        raise ValueError(f"vocab_size={vocab_size} is too small: special tokens, unused slots and the "
                         f"{len(alphabet)}-character alphabet (twice, with and without ##) need {len(base)}")
    if not counts:
        raise ValueError("the corpus has no words")
    pieces = learn_pieces(counts, alphabet, vocab_size - len(base), min_frequency)
    if stats is not None:
        stats.words, stats.distinct_words = sum(counts.values()), len(counts)
        stats.alphabet, stats.merges = len(alphabet), len(pieces)
    if len(base) + len(pieces) < vocab_size:
        log.warning("only %d tokens: no pair occurs %d+ times any more", len(base) + len(pieces), min_frequency)
    return base + pieces
