"""Pretraining instances from raw text: files -> documents -> sentences -> word pieces -> NSP pairs -> masks.

The algorithm is google-research/bert `create_pretraining_data.py`; the differences are deliberate and
marked "Deviation" below. Pipeline (all lazy, one pool of documents in memory at a time):

    read_documents(paths)            RawDocument: sentences of one document, with file and line
      -> tokenize_document(...)      TokenizedDocument: word-piece ids, flat, plus sentence bounds
      -> pools of documents          (~pool_tokens word pieces; NotNext segments come from the same pool)
      -> create_instances_from_document(...)    [CLS] A [SEP] B [SEP] + segment ids + IsNext/NotNext
      -> create_masked_lm_predictions(...)      static masking (skipped when masking is dynamic)

Two input formats:
  * "lines": the BERT format. One sentence per line, a blank line between documents.
  * "prose": running text, hard-wrapped or not. Each FILE is one document (a book, as in BookCorpus);
    blank lines separate paragraphs, and paragraphs are split into sentences by `split_sentences`.
  * "auto" (default) picks one per file by looking at its first lines (`detect_format`).

Streaming: files are read line by line and documents are tokenized one at a time; documents are grouped
into pools of about `pool_tokens` word pieces (default 4M, ~16 MB of ids), and instances are built pool by
pool. NotNext segments are drawn from the other documents of the same pool (the reference draws from the
whole corpus, which must then fit in memory); a pool always holds at least two documents. One document is
held whole, so a single prose file larger than memory is not supported: use the "lines" format with
blank lines between documents for such text.

Randomness comes only from the `rng` / `seed` arguments (a `random.Random`), never from globals, so a
seed reproduces the output exactly (for the same files, options and pool_tokens).
"""

from __future__ import annotations

import dataclasses
import gzip
import itertools
import logging
import random
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)
SINGLE_SENTENCE = "the corpus holds a single sentence: next-sentence prediction needs at least two. Add text or files"

FORMATS = ("auto", "lines", "prose")
ERRORS = ("strict", "replace")
NUM_SPECIAL_TOKENS = 3  # [CLS] A [SEP] B [SEP]


class CorpusError(ValueError):
    """Bad pretraining input (empty corpus, one document, undecodable bytes...). A ValueError, so the
    CLI prints it as one line."""


# ---------------------------------------------------------------------------------------------------
# Options and vocabulary facts
# ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PretrainingDataConfig:
    """How instances are built. `static_mask=False` leaves instances unmasked (dynamic masking in tf.data).

    `pool_tokens` bounds memory: documents are processed in pools of about this many word pieces (4M
    ids are 16 MB). NotNext segments are drawn from other documents of the same pool, and instances are
    shuffled within a pool; a pool always holds at least two documents.
    """

    max_length: int = 128
    max_predictions: int = 20
    masked_lm_prob: float = 0.15
    short_seq_prob: float = 0.1
    dupe_factor: int = 1
    whole_word_mask: bool = False
    static_mask: bool = True
    pool_tokens: int = 4_000_000
    # google-research's names, before these took the CLI's (--max-length, --max-predictions); they
    # still work for one release, with a DeprecationWarning.
    max_seq_length: dataclasses.InitVar[int | None] = None
    max_predictions_per_seq: dataclasses.InitVar[int | None] = None

    def __post_init__(self, max_seq_length, max_predictions_per_seq):
        for old, new, value in (("max_seq_length", "max_length", max_seq_length),
                                ("max_predictions_per_seq", "max_predictions", max_predictions_per_seq)):
            if value is not None:
                warnings.warn(f"PretrainingDataConfig({old}=...) is deprecated; use {new}=", DeprecationWarning,
                              stacklevel=3)
                object.__setattr__(self, new, value)  # the dataclass is frozen
        if self.max_length < NUM_SPECIAL_TOKENS + 2:
            raise ValueError(
                f"--max-length {self.max_length} is too small: [CLS] A [SEP] B [SEP] needs 3 special tokens "
                f"and at least one token in each segment, so at least {NUM_SPECIAL_TOKENS + 2}")
        if not 1 <= self.max_predictions <= self.max_length - NUM_SPECIAL_TOKENS:
            raise ValueError(f"max-predictions must be in [1, seq-len - 3 = {self.max_length - 3}], "
                             f"got {self.max_predictions}")
        if not 0.0 < self.masked_lm_prob < 1.0:
            raise ValueError(f"masked-lm-prob must be in (0, 1), got {self.masked_lm_prob}")
        if not 0.0 <= self.short_seq_prob <= 1.0:
            raise ValueError(f"short-seq-prob must be in [0, 1], got {self.short_seq_prob}")
        if self.dupe_factor < 1 or self.pool_tokens < 1:
            raise ValueError("dupe-factor and pool_tokens must be positive")

    @property
    def max_num_tokens(self) -> int:
        return self.max_length - NUM_SPECIAL_TOKENS


@dataclasses.dataclass(frozen=True)
class MaskingSpec:
    """The vocabulary facts masking needs, shared by static (Python) and dynamic (tf.data) masking.

    special_ids: never masked, never used as a random replacement ([PAD] [UNK] [CLS] [SEP] [MASK]...).
    is_subword[id]: True for "##" continuation pieces (whole-word masking keeps them with their word).
    random_ids: candidates for the 10% random replacement: every non-special id. Deviation: google-research
      draws from the whole vocabulary, specials included; a random [CLS]/[PAD] mid-sentence teaches nothing.
    """

    vocab_size: int
    pad_id: int
    cls_id: int
    sep_id: int
    mask_id: int
    unk_id: int
    special_ids: frozenset[int]
    is_subword: np.ndarray
    random_ids: np.ndarray
    is_special: np.ndarray  # bool [vocab_size], special_ids as a lookup table
    subword_ids: frozenset[int]  # is_subword as a set: faster than numpy scalar indexing in Python loops

    @classmethod
    def from_vocab(cls, tokens: Sequence[str], *, pad_id: int, cls_id: int, sep_id: int, mask_id: int,
                   unk_id: int, special_ids: Iterable[int] = ()) -> "MaskingSpec":
        """`tokens[i]` is the piece with id i (vocab.txt order)."""
        special = frozenset(int(i) for i in special_ids) | {pad_id, cls_id, sep_id, mask_id, unk_id}
        is_subword = np.array([t.startswith("##") for t in tokens], dtype=bool)
        is_special = np.zeros(len(tokens), dtype=bool)
        is_special[[i for i in special if 0 <= i < len(tokens)]] = True
        random_ids = np.flatnonzero(~is_special).astype(np.int32)
        return cls(len(tokens), pad_id, cls_id, sep_id, mask_id, unk_id, special, is_subword, random_ids,
                   is_special, frozenset(np.flatnonzero(is_subword).tolist()))

    @classmethod
    def from_tokenizer(cls, tokenizer) -> "MaskingSpec":
        """Duck-typed: `vocab` (token -> id), `pad_id`, `cls_id`, `sep_id`, `mask_id`, `unk_id`,
        `special_ids`."""
        return cls.from_vocab(vocab_tokens(tokenizer), pad_id=tokenizer.pad_id, cls_id=tokenizer.cls_id,
                              sep_id=tokenizer.sep_id, mask_id=tokenizer.mask_id, unk_id=tokenizer.unk_id,
                              special_ids=getattr(tokenizer, "special_ids", ()))


def vocab_tokens(tokenizer) -> list[str]:
    """The vocabulary as a list, token i at index i (vocab.txt order), from `tokenizer.vocab`."""
    tokens = [""] * (max(tokenizer.vocab.values()) + 1)
    for token, i in tokenizer.vocab.items():
        tokens[i] = token
    return tokens


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


# ---------------------------------------------------------------------------------------------------
# Tokenizing
# ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class TokenizedDocument:
    """Sentence i is `ids[bounds[i]:bounds[i + 1]]`. Flat int32 keeps a pool compact (4 bytes a piece)."""

    ids: np.ndarray
    bounds: np.ndarray

    def __len__(self) -> int:
        return len(self.bounds) - 1

    def sentence(self, i: int) -> np.ndarray:
        return self.ids[self.bounds[i]:self.bounds[i + 1]]

    @property
    def num_tokens(self) -> int:
        return int(self.bounds[-1])


def _split_long(ids: np.ndarray, limit: int, is_subword: np.ndarray) -> list[np.ndarray]:
    """Cut a sentence of more than `limit` pieces into near-equal parts of at most `limit`, at word starts.

    Why: a sentence that fills a sequence alone forms a one-sentence chunk, and google-research then always
    makes a NotNext pair and truncates most of the sentence away. Verse and old prose have such
    "sentences"; parts of half a sequence keep the IsNext rate at 50% and the text in use.
    """
    parts = -(-len(ids) // limit)
    size = -(-len(ids) // parts)
    out, start = [], 0
    while len(ids) - start > limit:
        cut = start + size
        while cut > start + 1 and is_subword[ids[cut]]:  # do not split a word's ## pieces
            cut -= 1
        if cut == start + 1:
            cut = start + size
        out.append(ids[start:cut])
        start = cut
    out.append(ids[start:])
    return out


def tokenize_document(doc: RawDocument, tokenizer, spec: MaskingSpec, max_sentence_tokens: int,
                      stats: dict | None = None) -> TokenizedDocument:
    """Word-piece ids of each sentence; empty sentences dropped, too-long ones cut (`_split_long`).

    Special ids that come out of raw text (a literal "[SEP]" in a book, if the tokenizer honours it) are
    replaced by [UNK]: only the instance builder may place [CLS]/[SEP], and [PAD] must mean padding.
    """
    encode = tokenizer.convert_tokens_to_ids
    split = tokenizer.tokenize
    lists = [encode(split(sentence)) for sentence in doc.sentences]
    lengths = np.fromiter((len(ids) for ids in lists), dtype=np.int64, count=len(lists))
    flat = np.fromiter(itertools.chain.from_iterable(lists), dtype=np.int32, count=int(lengths.sum()))
    flat[spec.is_special[flat]] = spec.unk_id
    lengths = lengths[lengths > 0]
    bounds = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=bounds[1:])
    if lengths.size and lengths.max() > max_sentence_tokens:  # rare: rebuild with long sentences cut
        pieces = []
        for i, n in enumerate(lengths):
            ids = flat[bounds[i]:bounds[i + 1]]
            if n > max_sentence_tokens:
                pieces.extend(_split_long(ids, max(1, max_sentence_tokens // 2), spec.is_subword))
                if stats is not None:
                    stats["long_sentences_split"] = stats.get("long_sentences_split", 0) + 1
            else:
                pieces.append(ids)
        bounds = np.zeros(len(pieces) + 1, dtype=np.int64)
        np.cumsum([len(p) for p in pieces], out=bounds[1:])
    return TokenizedDocument(flat, bounds)


# ---------------------------------------------------------------------------------------------------
# Instances
# ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class TrainingInstance:
    """One sequence. Unpadded; `input_ids` is masked when masking was static.

    document_index / b_document_index: indices in the pool of the documents A and B came from
    (equal for IsNext), kept for checks and debugging.
    """

    input_ids: list[int]
    token_type_ids: list[int]
    is_random_next: bool
    masked_lm_positions: list[int]
    masked_lm_ids: list[int]
    document_index: int = -1
    b_document_index: int = -1


def _truncate_seq_pair(tokens_a: np.ndarray, tokens_b: np.ndarray, max_num_tokens: int,
                       rng: random.Random) -> tuple[np.ndarray, np.ndarray]:
    """google-research's `truncate_seq_pair`, in O(1) draws instead of one per removed token.

    The reference removes one token at a time from the longer side (B on ties), from the front or the
    back with probability 1/2 each ("to add more randomness and avoid biases"). Which side loses how many
    is deterministic, and the number of front removals on a side is Binomial(r, 1/2): r fair bits.
    """
    la, lb = len(tokens_a), len(tokens_b)
    excess = la + lb - max_num_tokens
    if excess <= 0:
        return tokens_a, tokens_b
    first = min(excess, abs(la - lb))  # shrink the longer side down to the shorter one
    ra, rb = (first, 0) if la > lb else (0, first)
    rest = excess - first
    rb += (rest + 1) // 2  # then alternate, B first because ties go to B
    ra += rest // 2

    def cut(tokens: np.ndarray, r: int) -> np.ndarray:
        front = bin(rng.getrandbits(r)).count("1") if r else 0
        return tokens[front:len(tokens) - (r - front)]

    return cut(tokens_a, ra), cut(tokens_b, rb)


def _random_other_document(num_documents: int, document_index: int, rng: random.Random) -> int:
    # Deviation: google-research retries up to 10 times and can still return the same document;
    # drawing from the other n-1 documents is uniform and always different.
    index = rng.randrange(num_documents - 1)
    return index + 1 if index >= document_index else index


def create_instances_from_document(all_documents: Sequence[TokenizedDocument], document_index: int,
                                   max_length: int, short_seq_prob: float,
                                   rng: random.Random, spec: MaskingSpec) -> list[TrainingInstance]:
    """Unmasked [CLS] A [SEP] B [SEP] instances from one document (google-research semantics)."""
    document = all_documents[document_index]
    # Account for [CLS], [SEP], [SEP].
    max_num_tokens = max_length - NUM_SPECIAL_TOKENS

    # We *usually* want to fill up the entire sequence since we are padding to `max_length` anyway,
    # so short sequences are generally wasted computation. However, we *sometimes* (i.e. short_seq_prob
    # == 0.1 == 10% of the time) want to use shorter sequences to minimize the mismatch between
    # pre-training and fine-tuning. The `target_seq_length` is just a rough target however, whereas
    # `max_length` is a hard limit.
    # Deviation: the reference draws the target once per *document*, so with book-sized documents whole
    # books come out short or not at all; here it is drawn again for every instance.
    def draw_target() -> int:
        return rng.randint(2, max_num_tokens) if rng.random() < short_seq_prob else max_num_tokens

    target_seq_length = draw_target()

    # We DON'T just concatenate all of the tokens from a document into a long sequence and choose an
    # arbitrary split point because this would make the next sentence prediction task too easy. Instead,
    # we split the input into segments "A" and "B" based on the actual "sentences" provided by the user
    # input.
    instances = []
    current_chunk: list[np.ndarray] = []
    current_length = 0
    i = 0
    while i < len(document):
        segment = document.sentence(i)
        current_chunk.append(segment)
        current_length += len(segment)
        # Deviation: the reference closes a chunk of ONE sentence as soon as that sentence reaches the
        # target, and a one-sentence chunk is always made NotNext; with long sentences or short targets
        # that pushes the IsNext rate well below 50% (47.5% measured on the Gutenberg books). Here a
        # chunk takes a second sentence when the document has one, so B can really follow A.
        if i == len(document) - 1 or (current_length >= target_seq_length and len(current_chunk) >= 2):
            # `a_end` is how many segments from `current_chunk` go into the `A` (first) sentence.
            a_end = rng.randint(1, len(current_chunk) - 1) if len(current_chunk) >= 2 else 1
            tokens_a = np.concatenate(current_chunk[:a_end])
            b_document_index = document_index
            if len(current_chunk) == 1 or rng.random() < 0.5:
                is_random_next = True
                target_b_length = target_seq_length - len(tokens_a)
                b_document_index = _random_other_document(len(all_documents), document_index, rng)
                random_document = all_documents[b_document_index]
                bounds = random_document.bounds
                random_start = rng.randint(0, len(random_document) - 1)
                # Sentences from `random_start` on, until B reaches its target length (at least one).
                b_end = random_start + 1
                while b_end < len(random_document) and bounds[b_end] - bounds[random_start] < target_b_length:
                    b_end += 1
                tokens_b = random_document.ids[bounds[random_start]:bounds[b_end]]
                # We didn't actually use these segments so we "put them back" so they don't go to waste.
                i -= len(current_chunk) - a_end
            else:
                is_random_next = False
                tokens_b = np.concatenate(current_chunk[a_end:])
            tokens_a, tokens_b = _truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng)
            assert len(tokens_a) >= 1 and len(tokens_b) >= 1

            input_ids = [spec.cls_id, *tokens_a.tolist(), spec.sep_id, *tokens_b.tolist(), spec.sep_id]
            token_type_ids = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
            instances.append(TrainingInstance(input_ids, token_type_ids, is_random_next, [], [],
                                              document_index, b_document_index))
            current_chunk, current_length = [], 0
            target_seq_length = draw_target()
        i += 1
    return instances


def create_masked_lm_predictions(input_ids: list[int], masked_lm_prob: float, max_predictions: int,
                                 spec: MaskingSpec, rng: random.Random, whole_word_mask: bool = False,
                                 ) -> tuple[list[int], list[int], list[int]]:
    """Static masking. Returns (masked input ids, positions ascending, original ids at those positions).

    num_to_predict = min(max_predictions, max(1, round(n * masked_lm_prob))) with n the number
    of non-special tokens (Deviation: the reference counts [CLS]/[SEP] in n too). Each chosen token is
    replaced by [MASK] 80% of the time, kept 10%, and replaced by a random token 10%.
    """
    special = spec.special_ids
    candidates = [i for i, token in enumerate(input_ids) if token not in special]
    num_to_predict = min(max_predictions, max(1, int(round(len(candidates) * masked_lm_prob))),
                         len(candidates))  # 0 only if every token is [UNK]
    if whole_word_mask:
        chosen = _choose_whole_words(input_ids, candidates, num_to_predict, spec.subword_ids, rng)
    else:
        # A uniform random subset in random order: the same distribution as the reference's full
        # `rng.shuffle` of the candidates followed by taking the first ones, in fewer draws.
        chosen = rng.sample(candidates, num_to_predict)

    output = list(input_ids)
    for index in chosen:
        r = rng.random()
        if r < 0.8:  # 80% of the time, replace with [MASK]
            output[index] = spec.mask_id
        elif r >= 0.9:  # 10% of the time, replace with a random word; 10%, keep the original
            output[index] = int(spec.random_ids[rng.randrange(len(spec.random_ids))])
    positions = sorted(chosen)
    return output, positions, [input_ids[p] for p in positions]


def _choose_whole_words(input_ids: list[int], candidates: list[int], num_to_predict: int,
                        subword_ids: frozenset[int], rng: random.Random) -> list[int]:
    # Whole Word Masking means that we mask all of the wordpieces corresponding to an original word.
    # When a word has been split into WordPieces, the first token does not have any marker and any
    # subsequence tokens are prefixed with ##. So whenever we see the ## token, we append it to the
    # previous set of word indexes. A ## piece right after [CLS]/[SEP] (B truncated from the front)
    # starts a word of its own rather than joining the last word of A.
    words: list[list[int]] = []
    for i in candidates:
        if words and words[-1][-1] == i - 1 and input_ids[i] in subword_ids:
            words[-1].append(i)
        else:
            words.append([i])
    # Visit the words in random order: a partial Fisher-Yates shuffle has the same distribution as the
    # reference's full `rng.shuffle` but stops once enough tokens are chosen.
    chosen: list[int] = []
    n = len(words)
    for j in range(n):
        if len(chosen) >= num_to_predict:
            break
        k = rng.randrange(j, n)
        words[j], words[k] = words[k], words[j]
        # If adding a whole-word mask would exceed the maximum number of predictions, then just skip
        # this candidate.
        if len(chosen) + len(words[j]) <= num_to_predict:
            chosen.extend(words[j])
    return chosen


def _pools(documents: Iterable[TokenizedDocument], pool_tokens: int) -> Iterator[list[TokenizedDocument]]:
    """Group documents into pools of about `pool_tokens` pieces, each with at least two documents.

    A full pool is held back until the next one has two documents, so a lone last document joins the
    previous pool instead of forming a pool in which NotNext is impossible.
    """
    pending: list[TokenizedDocument] | None = None
    current: list[TokenizedDocument] = []
    tokens = 0
    for doc in documents:
        current.append(doc)
        tokens += doc.num_tokens
        if tokens >= pool_tokens and len(current) >= 2:
            if pending is not None:
                yield pending
            pending, current, tokens = current, [], 0
    if pending is not None and len(current) == 1:
        pending.extend(current)
        current = []
    if pending is not None:
        yield pending
    if len(current) >= 2:
        yield current
    elif current:
        yield split_document(current[0])


def split_document(document: TokenizedDocument) -> list[TokenizedDocument]:
    """The two halves (by sentences) of the corpus's only document, as two documents.

    NotNext needs a B segment from another document. With one document (a single book, the most
    common first corpus) google-research's `create_pretraining_data.py` falls back to the same
    document; here B comes from the other half, so it is always text that does not follow A.
    Raises CorpusError when the document has a single sentence.
    """
    if len(document) < 2:
        raise CorpusError(SINGLE_SENTENCE)
    logger.warning("the corpus holds a single document: NotNext segments come from its other half")
    middle = len(document) // 2
    cut = int(document.bounds[middle])
    first = TokenizedDocument(document.ids[:cut], document.bounds[:middle + 1])
    second = TokenizedDocument(document.ids[cut:], document.bounds[middle:] - cut)
    return [first, second]


def instances_from_pool(pool: Sequence[TokenizedDocument], config: PretrainingDataConfig, spec: MaskingSpec,
                        rng: random.Random) -> Iterator[TrainingInstance]:
    """`dupe_factor` passes over the pool; each pass is shuffled, then (static) masked.

    Each pass re-draws segment boundaries, NotNext partners and masks, as google-research's duplicates do.
    Deviation: the reference shuffles all duplicates together; shuffling per pass keeps memory at one
    pass (two copies of a sequence still never sit next to each other after tf.data's shuffle).
    """
    for _ in range(config.dupe_factor):
        instances = []
        for document_index in range(len(pool)):
            instances.extend(create_instances_from_document(
                pool, document_index, config.max_length, config.short_seq_prob, rng, spec))
        rng.shuffle(instances)
        for instance in instances:
            if config.static_mask:
                instance.input_ids, instance.masked_lm_positions, instance.masked_lm_ids = \
                    create_masked_lm_predictions(instance.input_ids, config.masked_lm_prob,
                                                 config.max_predictions, spec, rng,
                                                 config.whole_word_mask)
            yield instance


def create_pretraining_instances(paths: Sequence[str], tokenizer, config: PretrainingDataConfig, *,
                                 seed: int = 12345, fmt: str = "auto", errors: str = "strict",
                                 progress: bool = False, stats: dict | None = None,
                                 spec: MaskingSpec | None = None) -> Iterator[TrainingInstance]:
    """Stream instances from raw text files: the whole pipeline, one pool of documents at a time.

    `tokenizer` is duck-typed (`tokenize`, `convert_tokens_to_ids`, `vocab` and the special ids). `stats`,
    if given, is filled with counts (documents, sentences, tokens, instances, long_sentences_split...).
    Run `check_corpus` first to fail before any work; a single document is also caught here.
    """
    spec = spec or MaskingSpec.from_tokenizer(tokenizer)
    stats = {} if stats is None else stats
    for key in ("documents", "sentences", "tokens", "instances", "pools", "long_sentences_split"):
        stats.setdefault(key, 0)
    rng = random.Random(seed)
    total = sum(Path(p).stat().st_size for p in map(str, paths))
    with tqdm(total=total, unit="B", unit_scale=True, desc="pretraining data", disable=not progress) as bar:
        def tokenized() -> Iterator[TokenizedDocument]:
            for raw in read_documents(paths, fmt=fmt, errors=errors, on_bytes=bar.update):
                doc = tokenize_document(raw, tokenizer, spec, config.max_num_tokens, stats)
                if len(doc) == 0:
                    continue
                stats["documents"] += 1
                stats["sentences"] += len(doc)
                stats["tokens"] += doc.num_tokens
                yield doc

        for pool in _pools(tokenized(), config.pool_tokens):
            stats["pools"] += 1
            for instance in instances_from_pool(pool, config, spec, rng):
                stats["instances"] += 1
                yield instance
            bar.set_postfix(instances=stats["instances"], refresh=False)
