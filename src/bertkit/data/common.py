"""What the task data modules share: file reading, windows over long sequences, padding, tf.data.

Feature convention (all three tasks): a featurizer returns `dict[str, np.ndarray]` whose first axis
is the feature (one row per window). The model inputs are `MODEL_INPUT_KEYS`, all int32 [N, L];
targets are `labels` (classification [N], NER [N, L]) or `start_positions`/`end_positions` (QA [N]);
any other key is bookkeeping for mapping predictions back (example_index, offsets, ...).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import BinaryIO

import numpy as np

# Label value ignored by the loss (pieces after the first of a word, special tokens, padding).
IGNORE_INDEX = -100
MODEL_INPUT_KEYS = ("input_ids", "token_type_ids", "attention_mask")
# Rows per forward pass at inference (predict, evaluate, dev passes): on 2 CPU cores batches of
# 16-64 length-sorted rows run at the same tokens/s, and smaller ones hold less memory.
INFERENCE_BATCH_SIZE = 32


def read_text_lines(path: str | os.PathLike) -> list[str]:
    """Lines of a UTF-8 file, BOM removed, LF or CRLF endings, nothing else normalised.

    Splits on "\\n" only (not str.splitlines, which would also split on \\x1c, \\u2028, ... that
    can occur inside real text). Raises ValueError naming the line of the first undecodable byte.
    """
    with open(path, "rb") as f:
        return [text for _, text in iter_text_lines(f, os.fspath(path))]


def iter_text_lines(stream: BinaryIO, name: str) -> Iterator[tuple[str, str]]:
    """`("name:line", text)` for each line of a binary UTF-8 stream, read one line at a time.

    The same rules as `read_text_lines`: split on "\\n" only, a BOM at the start and a "\\r"
    before the "\\n" removed, a last line without "\\n" kept, blank lines kept (the caller
    decides what a blank line means, so outputs can stay aligned with input lines).
    Raises ValueError naming "name:line" for bytes that are not UTF-8.
    """
    for number, raw in enumerate(stream, start=1):  # binary streams split on b"\n" only
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        raw = raw[:-1] if raw.endswith(b"\n") else raw
        raw = raw[:-1] if raw.endswith(b"\r") else raw
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{name}:{number}: not valid UTF-8 ({e.reason})") from None
        yield f"{name}:{number}", text


def nonempty(items: Iterable, error: str) -> Iterator:
    """`items` passed through as they are taken; ValueError(`error`) once they end if there were
    none (an empty file, for the readers that stream)."""
    seen = False
    for item in items:
        seen = True
        yield item
    if not seen:
        raise ValueError(error)


# --- windows over sequences longer than the model's max length ---------------------------------

def doc_spans(length: int, window: int, stride: int) -> list[tuple[int, int]]:
    """(start, length) windows of at most `window` tokens that together cover range(length).

    Consecutive windows start `stride` tokens apart (the SQuAD "doc stride"), so with
    stride < window they overlap and every token gets some left and right context in at least
    one window. The last window ends exactly at `length`. An empty sequence gets one empty window
    so that its example still yields a feature.
    """
    if window < 1 or stride < 1:
        raise ValueError(f"window ({window}) and stride ({stride}) must be positive")
    spans, start = [], 0
    while True:
        span_len = min(length - start, window)
        spans.append((start, span_len))
        if start + span_len >= length:
            return spans
        start += min(span_len, stride)


def max_context_owner(spans: Sequence[tuple[int, int]], length: int) -> np.ndarray:
    """For each position in range(length), the index of the window where it has the most context.

    Why: with overlapping windows a token appears in several of them, and its prediction is best
    where it sees the most text on both sides. As in google-research/bert `_check_is_max_context`,
    the score of a token in a window is min(left context, right context) + 0.01 * window length,
    and the first window with the best score wins. Example, windows over positions
        A: [0..4]   B: [3..7]   C: [6..10]
    position 4 ("bought") has left/right context 4/0 in A and 1/3 in B, so B owns it.
    Every position gets exactly one owner, so the owned regions partition the sequence.
    """
    best_score = np.full(length, -1.0)
    owner = np.full(length, -1, dtype=np.int64)
    positions = np.arange(length)
    for index, (start, span_len) in enumerate(spans):
        end = start + span_len - 1
        inside = (positions >= start) & (positions <= end)
        score = np.minimum(positions - start, end - positions) + 0.01 * span_len
        better = inside & (score > best_score)
        best_score[better] = score[better]
        owner[better] = index
    return owner


# --- padding -----------------------------------------------------------------------------------

def pad_rows(rows: Sequence[Sequence[int]], length: int, value: int, dtype=np.int32) -> np.ndarray:
    """Stack variable-length rows into [len(rows), length], right-padded with `value`."""
    out = np.full((len(rows), length), value, dtype=dtype)
    for i, row in enumerate(rows):
        if len(row) > length:
            raise ValueError(f"row {i} has {len(row)} tokens, more than max length {length}")
        out[i, : len(row)] = row
    return out


# --- tf.data -------------------------------------------------------------------------------------

def make_dataset(features: dict[str, np.ndarray], batch_size: int, *,
                 label_keys: Sequence[str] | str | None = "labels", shuffle: bool = False,
                 seed: int = 0, bucket: bool = False, pad_multiple: int = 8,
                 drop_remainder: bool = False, sequence_labels: bool | None = None,
                 group_by_length: bool = True):
    """A tf.data.Dataset of `(inputs, targets)` batches (or `inputs` alone if label_keys is None).

    `inputs` is a dict of MODEL_INPUT_KEYS. `targets` is the array of the one label key, or a dict
    when several are given (QA: ("start_positions", "end_positions")).
    With `bucket=True`, each batch is cut to its longest row rounded up to `pad_multiple` (fewer
    padded tokens, few distinct shapes); with `shuffle` too, rows of similar length are batched
    together (HF's `group_by_length`), unless `group_by_length=False`: random batches, each still
    cut to its own longest row. Without `shuffle` the feature order is kept (use `concat_batches` to put per-batch
    outputs of varying widths back together). Shuffling is seeded and differs per epoch (per
    iteration over the dataset). `sequence_labels`: whether the targets have a sequence axis that is
    cut with the inputs (NER's [N, L] tags: yes; multi-label [N, C] targets: no); None: those of
    shape [N, L, ...] do.
    """
    import tensorflow as tf

    keys = _label_key_list(label_keys)
    missing = [k for k in (*MODEL_INPUT_KEYS, *keys) if k not in features]
    if missing:
        raise KeyError(f"features lack {missing}; have {sorted(features)}")
    arrays = {k: np.asarray(features[k]) for k in (*MODEL_INPUT_KEYS, *keys)}
    if not bucket:
        ds = tf.data.Dataset.from_tensor_slices(_split_inputs_targets(arrays, keys))
        if shuffle:
            ds = ds.shuffle(len(arrays["input_ids"]), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)

    length = arrays["input_ids"].shape[-1]
    if sequence_labels is None:
        cut = [k for k, v in arrays.items() if k in MODEL_INPUT_KEYS or (v.ndim >= 2 and v.shape[1] == length)]
    else:
        cut = [*MODEL_INPUT_KEYS, *(keys if sequence_labels else ())]
    epochs = itertools.count()

    def generate():
        rng = np.random.default_rng([seed, next(epochs)])
        for batch in _bucketed_batches(arrays["attention_mask"], batch_size, rng if shuffle else None,
                                       drop_remainder, group_by_length):
            width = _rounded_width(arrays["attention_mask"][batch], pad_multiple)
            yield _split_inputs_targets({k: _cut(v[batch], width) if k in cut else v[batch]
                                         for k, v in arrays.items()}, keys)

    signature = _split_inputs_targets(
        {k: tf.TensorSpec((None,) * v.ndim, tf.as_dtype(v.dtype)) for k, v in arrays.items()}, keys)
    # No prefetch here: a prefetch thread blocked inside the Python generator can deadlock the
    # interpreter's exit (the iterator's destructor waits for the thread, the thread for the GIL).
    # The generator only slices numpy arrays, so there is little to overlap anyway.
    return tf.data.Dataset.from_generator(generate, output_signature=signature)


def concat_batches(batches: Sequence[np.ndarray], length: int, value=0) -> np.ndarray:
    """Concatenate per-batch outputs [B, w, ...] of varying width w (bucketed batches) into
    [N, length, ...], padding the sequence axis with `value`."""
    padded = []
    for b in batches:
        b = np.asarray(b)
        pad = [(0, 0), (0, length - b.shape[1])] + [(0, 0)] * (b.ndim - 2)
        padded.append(np.pad(b, pad, constant_values=value))
    return np.concatenate(padded, axis=0)


def _label_key_list(label_keys) -> list[str]:
    if label_keys is None:
        return []
    return [label_keys] if isinstance(label_keys, str) else list(label_keys)


def _split_inputs_targets(arrays: dict, keys: list[str]):
    inputs = {k: arrays[k] for k in MODEL_INPUT_KEYS}
    if not keys:
        return inputs
    return inputs, (arrays[keys[0]] if len(keys) == 1 else {k: arrays[k] for k in keys})


def _bucketed_batches(attention_mask: np.ndarray, batch_size: int, rng: np.random.Generator | None,
                      drop_remainder: bool, group_by_length: bool = True) -> Iterator[np.ndarray]:
    """Index arrays of batches.

    With `rng` (training): random chunks of 50 batches, rows sorted by length within a chunk, batch
    order shuffled - similar lengths share a batch and the data is still shuffled (without
    `group_by_length`: the rows in random order, cut into batches). Without `rng`
    (evaluation): consecutive batches in feature order, so predictions line up with the features.
    """
    n = len(attention_mask)
    if rng is None:
        batches = [np.arange(b, min(b + batch_size, n)) for b in range(0, n, batch_size)]
    else:
        lengths, order, chunk = row_lengths(attention_mask), rng.permutation(n), batch_size * 50
        batches = []
        for c in range(0, n, chunk):
            part = order[c: c + chunk]
            if group_by_length:
                part = part[np.argsort(lengths[part], kind="stable")]
            batches += [part[b: b + batch_size] for b in range(0, len(part), batch_size)]
        rng.shuffle(batches)
    if drop_remainder:
        batches = [b for b in batches if len(b) == batch_size]
    return iter(batches)


def row_lengths(attention_mask: np.ndarray) -> np.ndarray:
    """Tokens of each example [N]: of its longest sequence when the mask is [N, choices, L]."""
    lengths = attention_mask.sum(axis=-1)
    return lengths.reshape(len(lengths), -1).max(axis=1) if lengths.ndim > 1 else lengths


def _rounded_width(attention_mask: np.ndarray, multiple: int) -> int:
    longest = int(row_lengths(attention_mask).max()) if len(attention_mask) else 0
    width = -(-max(longest, 1) // multiple) * multiple
    return min(width, attention_mask.shape[-1])


def _cut(array: np.ndarray, width: int) -> np.ndarray:
    """Cut the sequence axis (the last) of [N, L] / [N, choices, L] arrays; [N] arrays pass unchanged."""
    return array[..., :width] if array.ndim >= 2 else array
