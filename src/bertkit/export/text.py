"""In-graph text helpers for the exported signatures: words with offsets, windows, packing.

Everything here is plain TensorFlow / tensorflow-text, vectorised over the batch, and mirrors a
Python function of the fine-tuning path exactly, so that an exported model predicts what
`bertkit predict` predicts:

  split_words        <- bertkit.data.ner.split_words            (NER words of raw text)
  doc_windows        <- bertkit.data.common.doc_spans           (windows over long sequences)
  max_context_owner  <- bertkit.data.common.max_context_owner   (which window owns a position)

Letters for shapes: B = batch (examples), R = window rows (>= B), W = words, T = word pieces.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_text as tf_text

# Python's `re` \w and \s for str patterns, written for RE2 (whose \w and \s are ASCII only).
# \w = str.isalnum() or "_": letters (L*) and numbers (N*); \s = str.isspace().
_WORD_CHAR = r"[\p{L}\p{N}_]"
_SPACE_CHARS = r"\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
# bertkit.data.ner.split_words: r"\w+(?:['’.\-&]\w+)*|[^\w\s]"
_WORD = _WORD_CHAR + r"+(?:['’.\-&]" + _WORD_CHAR + r"+)*"
_PUNCT = r"[^\p{L}\p{N}_" + _SPACE_CHARS + "]"
_KEEP = f"{_WORD}|{_PUNCT}"
_DELIM = f"{_KEEP}|[{_SPACE_CHARS}]+"


def split_words(texts) -> dict:
    """CoNLL-style words of raw strings [B]: runs of letters/digits (joined inside by ' ’ . - &)
    and single punctuation marks. Returns ragged [B, (W)] `words` (strings) and `starts` / `ends`
    (int32 code-point offsets into the string, end exclusive)."""
    # Every character is a delimiter (word, punctuation or space run); only words and marks are kept.
    words, byte_starts, byte_ends = tf_text.regex_split_with_offsets(texts, _DELIM, _KEEP)
    return {"words": words,
            "starts": bytes_to_chars(texts, byte_starts),
            "ends": bytes_to_chars(texts, byte_ends)}


def bytes_to_chars(texts, byte_offsets):
    """UTF-8 byte offsets (ragged [B, (N)], at character boundaries) -> code-point offsets."""
    _, char_bytes = tf.strings.unicode_decode_with_offsets(texts, "UTF-8", errors="replace")
    char_bytes = tf.cast(char_bytes, tf.int64)
    lengths = tf.strings.length(texts, unit="BYTE")
    row_byte_start = tf.cumsum(tf.cast(lengths, tf.int64), exclusive=True)      # [B]
    # Global byte positions are sorted over the whole batch, so one searchsorted does all rows.
    global_chars = char_bytes + tf.expand_dims(row_byte_start, 1)                # [B, (C)]
    global_offsets = byte_offsets + tf.expand_dims(row_byte_start, 1)            # [B, (N)]
    index = tf.searchsorted(global_chars.flat_values[None, :], global_offsets.flat_values[None, :],
                            side="left", out_type=tf.int64)[0]
    row_char_start = tf.gather(global_chars.row_starts(), global_offsets.value_rowids())
    return global_offsets.with_flat_values(tf.cast(index - row_char_start, tf.int32))


def doc_windows(lengths, window, stride) -> dict:
    """Windows of at most `window` pieces, `stride` apart, covering each example's `lengths` pieces.

    Same spans as `bertkit.data.common.doc_spans` (an empty sequence gets one empty window).
    Args: lengths int32 [B]; window int32 [B] or scalar; stride a Python int.
    Returns int32 tensors: per window row [R] `example`, `index` (k-th window of its example),
    `start`, `length`; per example [B] `count`, `first_row`, and `window`, `step` (the stride
    actually used: min(window, stride), as doc_spans advances by min(span length, stride)).
    """
    lengths = tf.cast(lengths, tf.int32)
    window = tf.broadcast_to(tf.cast(window, tf.int32), tf.shape(lengths))
    step = tf.minimum(window, stride)
    count = tf.where(lengths <= window, 1, (lengths - window + step - 1) // step + 1)
    first_row = tf.cumsum(count, exclusive=True)
    example = tf.repeat(tf.range(tf.size(lengths)), count)
    index = tf.range(tf.size(example)) - tf.gather(first_row, example)
    start = index * tf.gather(step, example)
    length = tf.minimum(tf.gather(window, example), tf.gather(lengths, example) - start)
    return {"example": example, "index": index, "start": start, "length": length, "count": count,
            "first_row": first_row, "window": window, "step": step, "lengths": lengths}


def max_context_owner(windows: dict, example, position):
    """The window (index within its example) where each position has the most context.

    Same rule as `bertkit.data.common.max_context_owner`: score = min(left, right context) +
    0.01 * window length, in float64, first window wins ties. Only the windows that can contain
    the position are scored: those starting at or before it, at most ceil(window / step) of them.
    Args: example, position int32 [M] (positions inside the example's piece sequence).
    """
    step = tf.gather(windows["step"], example)
    window = tf.gather(windows["window"], example)
    length = tf.gather(windows["lengths"], example)
    last = tf.minimum(position // step, tf.gather(windows["count"], example) - 1)
    # tf.maximum: an empty batch has no windows, and the max of nothing is the lowest int32
    k_max = tf.maximum(tf.reduce_max((windows["window"] + windows["step"] - 1) // windows["step"]), 0) + 1
    candidates = last[:, None] - k_max + 1 + tf.range(k_max)[None, :]           # [M, K] ascending
    start = candidates * step[:, None]
    end = start + tf.minimum(window[:, None], length[:, None] - start) - 1     # inclusive
    p = position[:, None]
    inside = (candidates >= 0) & (p >= start) & (p <= end)
    span = tf.cast(end - start + 1, tf.float64)
    score = tf.cast(tf.minimum(p - start, end - p), tf.float64) + 0.01 * span
    score = tf.where(inside, score, -1.0)
    best = tf.argmax(score, axis=1, output_type=tf.int32)                       # first maximum
    return tf.gather(candidates, best, batch_dims=1)


def window_slices(ragged, windows: dict):
    """The pieces of each window row: ragged [R, (length)] gathered from ragged [B, (T)]."""
    base = tf.gather(tf.cast(ragged.row_starts(), tf.int32), windows["example"]) + windows["start"]
    index = tf.ragged.range(base, base + windows["length"])
    return tf.gather(ragged.flat_values, index)


def constant_column(rows, value, dtype=tf.int32):
    """A ragged [rows, 1] column filled with `value` (for [CLS] / [SEP] in ragged concats)."""
    return tf.RaggedTensor.from_tensor(tf.fill(tf.stack([rows, 1]), tf.constant(value, dtype)))


def substrings(texts, starts, ends):
    """texts[i][starts[i]:ends[i]] in code points (Python str slicing), for [N] tensors."""
    return tf.strings.substr(texts, starts, ends - starts, unit="UTF8_CHAR")


def dense_rows(ragged, default):
    """Ragged [B, (N)] -> dense [B, max N] padded with `default` (always [B, 0+] even if empty)."""
    return ragged.to_tensor(default_value=default)


def model_inputs(ids: tf.RaggedTensor, type_ids: tf.RaggedTensor, pad_id: int) -> dict:
    """Ragged windows [R, (S)] -> the model's dense int32 inputs [R, S], padded to the longest.

    At least two columns (the [CLS] and [SEP] every window has), so an empty batch gives [0, 2]
    inputs and the encoder's [:, 0] (the pooler) stays in range.
    """
    shape = tf.stack([ids.nrows(), tf.maximum(ids.bounding_shape(axis=1), 2)])
    return {"input_ids": ids.to_tensor(pad_id, shape=shape),
            "token_type_ids": type_ids.to_tensor(0, shape=shape),
            "attention_mask": tf.ones_like(ids).to_tensor(0, shape=shape)}

