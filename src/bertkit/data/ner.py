"""Token classification (NER) data: CoNLL / JSON Lines readers, IOB1 -> IOB2, windowed featurizer.

Word labels go to the word's first WordPiece; its other pieces, special tokens and padding get
IGNORE_INDEX. Sentences longer than the model's max length are cut into overlapping windows, and
each word is "owned" (labelled in training, read back in prediction) by exactly one window, the
one where its first piece has the most context - so no word is dropped or counted twice.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from .common import (IGNORE_INDEX, doc_spans, make_dataset, max_context_owner,  # noqa: F401
                     iter_text_lines, nonempty, pad_rows)

_TAG = re.compile(r"O|[BI]-\S+")
_FIELD_SEP = re.compile(r"[ \t]+")


@dataclasses.dataclass(frozen=True)
class NerExample:
    words: list[str]
    tags: list[str] | None = None  # as the file gives them (IOB1 or IOB2), or IOB2 if converted
    source: str = ""  # "file:line" of the first word


# --- tag schemes ---------------------------------------------------------------------------------

def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB1 (B- only between two touching entities of one type) -> IOB2 (B- starts every entity).

    An I-X that does not continue an X entity starts one, so becomes B-X. Valid IOB2 is unchanged,
    which makes the conversion safe to apply to any IOB input.
    """
    out, prev_type = [], None
    for tag in tags:
        kind, _, etype = tag.partition("-")
        if kind == "I" and etype != prev_type:
            tag = f"B-{etype}"
        out.append(tag)
        prev_type = etype if kind in ("B", "I") else None
    return out


def detect_scheme(tag_sequences: Iterable[Sequence[str]]) -> str:
    """"IOB1" when some I-X starts an entity (after O, another type, or at a sentence start), as in
    CoNLL-2003's files; else "IOB2" (every entity starts with B-X, as WNUT-17 and HF datasets)."""
    for tags in tag_sequences:
        if iob1_to_iob2(tags) != list(tags):
            return "IOB1"
    return "IOB2"


def tag_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Entities (type, first word, last word) of an IOB2 sequence, as seqeval's default mode reads it:
    B-X starts an entity, I-X continues an X entity or starts one after O/another type."""
    spans: list[tuple[str, int, int]] = []
    for i, tag in enumerate(tags):
        kind, _, etype = tag.partition("-")
        if kind == "I" and spans and spans[-1][0] == etype and spans[-1][2] == i - 1:
            spans[-1] = (etype, spans[-1][1], i)
        elif kind in ("B", "I"):
            spans.append((etype, i, i))
    return spans


def infer_tag_list(examples: Sequence[NerExample]) -> list[str]:
    """"O" then B-/I- per entity type, types sorted: a stable id order independent of the data order."""
    types = sorted({t[2:] for e in examples for t in e.tags or () if t != "O"})
    return ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]


# --- readers -------------------------------------------------------------------------------------

def read_ner_file(path: str | os.PathLike, **kwargs) -> list[NerExample]:
    """CoNLL columns, or JSON Lines for .jsonl/.json/.ndjson (kwargs go to the reader).
    Raises ValueError naming the file (and line) for bad rows and for a file without sentences."""
    return list(iter_ner_file(path, **kwargs))


def iter_ner_file(path: str | os.PathLike, **kwargs) -> Iterator[NerExample]:
    """`read_ner_file`'s sentences one at a time, the file read as they are taken (an empty file
    is the same error, raised at its end)."""
    if os.fspath(path).lower().endswith((".jsonl", ".json", ".ndjson")):
        return _sentences(path, iter_ner_jsonl(path, **kwargs))
    return _sentences(path, iter_conll(path, **kwargs))


def _sentences(path, examples: Iterable[NerExample]) -> Iterator[NerExample]:
    return nonempty(examples, f"{os.fspath(path)}: no sentences (empty file)")


def read_conll(path: str | os.PathLike, *, has_tags: bool = True, to_iob2: bool = False) -> list[NerExample]:
    """CoNLL column file: word in the first column, tag in the last; tags as the file gives them
    (CoNLL-2003 is IOB1), or converted to IOB2 with `to_iob2`.

    Sentences end at blank or whitespace-only lines (WNUT-17 uses a lone tab) and at
    `-DOCSTART-` lines. Columns are separated by spaces or tabs. Raises ValueError with file:line
    on a row whose column count differs from the file's first row, or a tag that is not O/B-X/I-X.
    """
    return list(_sentences(path, iter_conll(path, has_tags=has_tags, to_iob2=to_iob2)))


def iter_conll(path: str | os.PathLike, *, has_tags: bool = True, to_iob2: bool = False) -> Iterator[NerExample]:
    """`read_conll`'s sentences one at a time, the file read as they are taken."""
    words: list[str] = []
    tags: list[str] = []
    start, width = 0, None
    with open(path, "rb") as f:
        for number, (_, line) in enumerate(iter_text_lines(f, os.fspath(path)), start=1):
            if not line.strip() or line.startswith("-DOCSTART-"):
                if words:
                    yield _sentence(path, start, words, tags, has_tags, to_iob2)
                    words, tags = [], []
                continue
            fields = _FIELD_SEP.split(line.strip(" \t"))
            width = len(fields) if width is None else width
            if len(fields) != width or (has_tags and width < 2):
                raise ValueError(f"{path}:{number}: expected {max(width, 2)} columns, found {len(fields)}")
            if has_tags:
                tags.append(_check_tag(fields[-1], f"{path}:{number}"))
            if not words:
                start = number
            words.append(fields[0])
    if words:
        yield _sentence(path, start, words, tags, has_tags, to_iob2)


def _sentence(path, start: int, words: list[str], tags: list[str], has_tags: bool, to_iob2: bool) -> NerExample:
    kept = (iob1_to_iob2(tags) if to_iob2 else list(tags)) if has_tags else None
    return NerExample(list(words), kept, f"{path}:{start}")


def read_ner_jsonl(path: str | os.PathLike, *, tokens_key: str = "tokens", tags_key: str = "tags",
                   has_tags: bool = True, to_iob2: bool = False) -> list[NerExample]:
    """One JSON object per line with a list of words and a list of tags of the same length (kept as
    given, or converted to IOB2 with `to_iob2`)."""
    return list(_sentences(path, iter_ner_jsonl(path, tokens_key=tokens_key, tags_key=tags_key, has_tags=has_tags,
                                                to_iob2=to_iob2)))


def iter_ner_jsonl(path: str | os.PathLike, *, tokens_key: str = "tokens", tags_key: str = "tags",
                   has_tags: bool = True, to_iob2: bool = False) -> Iterator[NerExample]:
    """`read_ner_jsonl`'s sentences one at a time, the file read as they are taken."""
    with open(path, "rb") as f:
        for where, line in iter_text_lines(f, os.fspath(path)):
            if line.strip():
                yield _json_sentence(where, line, tokens_key, tags_key, has_tags, to_iob2)


def _json_sentence(where: str, line: str, tokens_key: str, tags_key: str, has_tags: bool,
                   to_iob2: bool) -> NerExample:
    try:
        row = json.loads(line)
        words = row[tokens_key]
        tags = row[tags_key] if has_tags else None
    except json.JSONDecodeError as e:
        raise ValueError(f"{where}: invalid JSON ({e.msg})") from None
    except (KeyError, TypeError):
        raise ValueError(f"{where}: need a JSON object with {tokens_key!r}"
                         + (f" and {tags_key!r}" if has_tags else "")) from None
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise ValueError(f"{where}: {tokens_key!r} must be a list of strings")
    if tags is not None:
        if not isinstance(tags, list) or len(tags) != len(words):
            raise ValueError(f"{where}: {len(words)} tokens but {tags_key!r} is not a list "
                             f"of {len(words)} tags")
        tags = [_check_tag(str(t), where) for t in tags]
        tags = iob1_to_iob2(tags) if to_iob2 else tags
    return NerExample(words, tags, where)


def _check_tag(tag: str, where: str) -> str:
    if not _TAG.fullmatch(tag):
        raise ValueError(f"{where}: tag {tag!r} is not O, B-TYPE or I-TYPE")
    return tag


def encode_tags(examples: Sequence[NerExample], tag_list: Sequence[str]) -> list[list[int]]:
    """Tag ids per word; ValueError naming the sentence (file:line of its first word), the word and
    the tag of the first unknown tag."""
    index = {t: i for i, t in enumerate(tag_list)}
    for e in examples:
        for i, tag in enumerate(e.tags or ()):
            if tag not in index:
                raise ValueError(f"{e.source}: unknown tag {tag!r} at word {i} ({e.words[i]!r}) of "
                                 f"the sentence starting here; known tags: {list(tag_list)}")
    return [[index[t] for t in e.tags] for e in examples]


# --- features ------------------------------------------------------------------------------------

def featurize_ner(examples: Sequence[NerExample], tokenizer, *, tag_list: Sequence[str] | None = None,
                  max_length: int = 128, stride: int | None = None) -> dict[str, np.ndarray]:
    """Sentences -> windows of `[CLS] pieces [SEP]`, one feature row per window.

    Returns int32 arrays input_ids, token_type_ids, attention_mask, word_index [N, max_length]
    (the word whose first piece sits at that position and is owned by this window, else -1),
    example_index [N], and labels [N, max_length] (tag id at owned first pieces, IGNORE_INDEX
    elsewhere) when the examples have tags (`tag_list` then required).
    A sentence longer than max_length - 2 pieces gets windows starting `stride` pieces apart
    (default: half a window, so each word has context on both sides in its owning window).
    """
    window = max_length - 2
    stride = max(1, window // 2) if stride is None else stride
    tagged = [e.tags is not None for e in examples]
    if any(tagged) and not all(tagged):
        raise ValueError("some examples have tags and some do not")
    labeled = bool(examples) and all(tagged)
    if labeled and tag_list is None:
        raise ValueError("examples have tags: pass tag_list (e.g. infer_tag_list(train))")
    tag_ids = encode_tags(examples, tag_list) if labeled else None
    cache: dict[str, list[int]] = {}
    rows: dict[str, list] = {k: [] for k in ("input_ids", "word_index", "labels", "example_index")}
    for ex_index, example in enumerate(examples):
        pieces, piece_word = _sentence_pieces(example.words, tokenizer, cache)
        for ids, word_index in _windows(pieces, piece_word, window, stride):
            rows["input_ids"].append([tokenizer.cls_id, *ids, tokenizer.sep_id])
            rows["word_index"].append([-1, *word_index, -1])
            if labeled:
                rows["labels"].append([IGNORE_INDEX if w < 0 else tag_ids[ex_index][w]
                                       for w in rows["word_index"][-1]])
            rows["example_index"].append(ex_index)
    features = {
        "input_ids": pad_rows(rows["input_ids"], max_length, tokenizer.pad_id),
        "token_type_ids": np.zeros((len(rows["input_ids"]), max_length), np.int32),
        "attention_mask": pad_rows([[1] * len(r) for r in rows["input_ids"]], max_length, 0),
        "word_index": pad_rows(rows["word_index"], max_length, -1),
        "example_index": np.array(rows["example_index"], dtype=np.int32),
    }
    if labeled:
        features["labels"] = pad_rows(rows["labels"], max_length, IGNORE_INDEX)
    return features


def _sentence_pieces(words: Sequence[str], tokenizer, cache: dict[str, list[int]]):
    """Piece ids of a sentence and the word index of each piece.

    Words are tokenized one by one (BERT's basic tokenizer splits at whitespace anyway). A word
    with no pieces at all (e.g. only a zero-width or control character) becomes [UNK], so that it
    still gets a position and a prediction.
    """
    pieces: list[int] = []
    piece_word: list[int] = []
    for w, word in enumerate(words):
        ids = cache.get(word)
        if ids is None:
            ids = cache[word] = list(tokenizer.convert_tokens_to_ids(tokenizer.tokenize(word))) \
                or [tokenizer.unk_id]
        pieces += ids
        piece_word += [w] * len(ids)
    return pieces, piece_word


def _windows(pieces: list[int], piece_word: list[int], window: int, stride: int):
    """Yield (piece ids, owned word index per piece or -1) for each window over the sentence.

    A word is owned by the window where its first piece has the most context (max-context rule),
    so each word is labelled and predicted exactly once across the windows.
    """
    spans = doc_spans(len(pieces), window, stride)
    owner = max_context_owner(spans, len(pieces))
    for k, (start, length) in enumerate(spans):
        word_index = []
        for j in range(start, start + length):
            first = j == 0 or piece_word[j - 1] != piece_word[j]
            word_index.append(piece_word[j] if first and owner[j] == k else -1)
        yield pieces[start: start + length], word_index


# --- predictions back to words and entities ------------------------------------------------------

def word_predictions(features: dict[str, np.ndarray], predictions: np.ndarray,
                     examples: Sequence[NerExample]) -> list[np.ndarray]:
    """Per-piece predictions [N, L] (ids) or [N, L, C] (scores) -> one id per word, per example.

    Each word is read from the window that owns it. Raises RuntimeError if a word was not owned by
    any window (cannot happen for features made by `featurize_ner` from the same examples).
    """
    predictions = np.asarray(predictions)
    if predictions.ndim == 3:
        predictions = predictions.argmax(axis=-1)
    out = [np.full(len(e.words), -1, dtype=np.int64) for e in examples]
    for n, ex_index in enumerate(features["example_index"]):
        owned = features["word_index"][n] >= 0
        out[ex_index][features["word_index"][n][owned]] = predictions[n][owned]
    missing = [i for i, words in enumerate(out) if (words < 0).any()]
    if missing:
        raise RuntimeError(f"{len(missing)} examples have words with no prediction "
                           f"(first: {examples[missing[0]].source})")
    return out


def split_words(text: str) -> list[tuple[str, int, int]]:
    """Words of raw text with character offsets: runs of letters/digits (joined by ' - . & inside,
    e.g. "U.S", "don't", "Jean-Luc") and single punctuation marks, as in CoNLL tokenization."""
    return [(m.group(), m.start(), m.end())
            for m in re.finditer(r"\w+(?:['’.\-&]\w+)*|[^\w\s]", text)]


def entities(text: str, words: Sequence[tuple[str, int, int]], tags: Sequence[str]) -> list[dict]:
    """Entity dicts {type, start, end, text} with character offsets into `text`, from word tags."""
    return [{"type": etype, "start": words[first][1], "end": words[last][2],
             "text": text[words[first][1]: words[last][2]]}
            for etype, first, last in tag_spans(tags)]
