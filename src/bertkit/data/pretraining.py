"""Pretraining instances from raw text: documents -> word pieces -> NSP pairs -> masks.

The algorithm is google-research/bert `create_pretraining_data.py`; the differences are deliberate and
marked "Deviation" below. Pipeline (all lazy, one pool of documents in memory at a time):

    corpus.read_documents(paths)     RawDocument: sentences of one document, with file and line
      -> tokenize_document(...)      TokenizedDocument: word-piece ids, flat, plus sentence bounds
      -> pools of documents          (~pool_tokens word pieces; NotNext segments come from the same pool)
      -> create_instances_from_document(...)    [CLS] A [SEP] B [SEP] + segment ids + IsNext/NotNext
      -> masking.create_masked_lm_predictions(...)   static masking (skipped when masking is dynamic)

Reading the corpus formats is `corpus.py`; masking (the Python and the tf.data versions) is
`masking.py`; writing and reading TFRecords is `records.py`.

Streaming: documents are grouped into pools of about `pool_tokens` word pieces (default 4M, ~16 MB of
ids), and instances are built pool by pool. NotNext segments are drawn from the other documents of the
same pool (the reference draws from the whole corpus, which must then fit in memory); a pool always
holds at least two documents. One document is held whole, so a single prose file larger than memory is
not supported: use the "lines" format with blank lines between documents for such text.

Randomness comes only from the `rng` / `seed` arguments (a `random.Random`), never from globals, so a
seed reproduces the output exactly (for the same files, options and pool_tokens).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import random
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .corpus import SINGLE_SENTENCE, CorpusError, RawDocument, read_documents
from .masking import MaskingSpec, create_masked_lm_predictions

logger = logging.getLogger(__name__)
NUM_SPECIAL_TOKENS = 3  # [CLS] A [SEP] B [SEP]


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
            raise ValueError(f"--max-predictions must be in [1, max-length - 3 = {self.max_length - 3}], "
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


# Names that moved to corpus.py and masking.py; importing them from here still works for one
# release, with a DeprecationWarning.
_MOVED = {**dict.fromkeys(("FORMATS", "ERRORS", "CorpusSummary", "check_corpus", "detect_format", "expand_corpus",
                           "split_sentences"), "corpus"),
          **dict.fromkeys(("vocab_tokens",), "masking")}


def __getattr__(name: str):
    if name in _MOVED:
        import importlib

        warnings.warn(f"bertkit.data.pretraining.{name} moved to bertkit.data.{_MOVED[name]}", DeprecationWarning,
                      stacklevel=2)
        return getattr(importlib.import_module(f"{__package__}.{_MOVED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
