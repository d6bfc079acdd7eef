"""Token classification (NER) in the graph: raw strings -> word tags and entity spans.

The same steps as the Python path (`bertkit.tasks.ner` / `bertkit.data.ner`):
  1. words of the raw text with character offsets (`split_words`, CoNLL-like);
  2. each word tokenized on its own (a word with no pieces becomes [UNK]);
  3. windows of max_length - 2 pieces, `stride` apart, `[CLS] pieces [SEP]`;
  4. each word's tag is the argmax at its first piece, read from the window where that piece
     has the most context;
  5. entities from the IOB2 tags as seqeval's default mode reads them (`tag_spans`).

Outputs of `serving_default(text)` (W = most words in the batch, E = most entities):
  words [B, W] string, word_starts / word_ends [B, W] int32 (character offsets, -1 padding),
  tags [B, W] string ("" padding), tag_scores [B, W] (softmax probability of the tag),
  num_words [B]; entity_types / entity_texts [B, E] string, entity_starts / entity_ends [B, E]
  int32, num_entities [B].
"""

from __future__ import annotations

import tensorflow as tf

from .modules import IDS, TEXT, ServingModule
from .text import (constant_column, doc_windows, max_context_owner, model_inputs, split_words, substrings,
                   window_slices)

_NONE, _BEGIN, _INSIDE = 0, 1, 2


def tag_tables(labels: list[str]) -> tuple[list[int], list[int], list[str]]:
    """Per tag id: kind (0 outside, 1 B-, 2 I-), entity type id; and the entity type names.
    Parsed like `bertkit.data.ner.tag_spans`: `kind, _, type = tag.partition("-")`."""
    kinds, type_ids, types = [], [], []
    for tag in labels:
        kind, _, etype = tag.partition("-")
        if kind not in ("B", "I"):
            kinds.append(_NONE)
            type_ids.append(-1)
            continue
        if etype not in types:
            types.append(etype)
        kinds.append(_BEGIN if kind == "B" else _INSIDE)
        type_ids.append(types.index(etype))
    return kinds, type_ids, types or [""]


class NerModule(ServingModule):
    kind = "ner"

    def __init__(self, model, tokenizer, labels: list[str], max_length: int = 128, stride: int | None = None):
        window = max_length - 2
        stride = max(1, window // 2) if stride is None else stride
        super().__init__(model, tokenizer, max_length, {"stride": stride})
        self.labels_list = list(labels)
        self.window, self.stride = window, stride
        kinds, type_ids, types = tag_tables(self.labels_list)
        self.tag_names = tf.constant(self.labels_list)
        self.tag_kinds = tf.constant(kinds, tf.int32)
        self.tag_types = tf.constant(type_ids, tf.int32)
        self.type_names = tf.constant(types)

    @tf.function(input_signature=[TEXT], autograph=False)
    def predict_text(self, text):
        words = split_words(text)
        word_example = tf.cast(words["words"].value_rowids(), tf.int32)               # [W]
        pieces = self._word_pieces(words["words"].flat_values)                         # [W, (P)]
        sentence = tf.RaggedTensor.from_nested_row_splits(
            pieces.flat_values, [words["words"].row_splits, pieces.row_splits]).merge_dims(1, 2)  # [B, (T)]
        windows = doc_windows(tf.cast(sentence.row_lengths(), tf.int32), self.window, self.stride)
        rows = tf.size(windows["example"])
        ids = tf.concat([constant_column(rows, self.cls_id), window_slices(sentence, windows),
                         constant_column(rows, self.sep_id)], axis=1)
        logits = self.forward(model_inputs(ids, tf.zeros_like(ids), self.pad_id))["logits"]  # [R, S, C]
        # Each word is read at its first piece, in the window that owns that piece.
        first = tf.cast(pieces.row_starts(), tf.int32) - tf.gather(tf.cast(sentence.row_starts(), tf.int32),
                                                                   word_example)
        owner = max_context_owner(windows, word_example, first)
        row = tf.gather(windows["first_row"], word_example) + owner
        column = first - owner * tf.gather(windows["step"], word_example) + 1          # +1: [CLS]
        word_logits = tf.gather_nd(logits, tf.stack([row, column], axis=1))             # [W, C]
        tag = tf.argmax(word_logits, axis=-1, output_type=tf.int32)
        score = tf.reduce_max(tf.nn.softmax(word_logits, axis=-1), axis=-1)
        outputs = self._word_outputs(words, tag, score)
        outputs.update(self._entities(text, words, word_example, tag))
        return outputs

    @tf.function(input_signature=IDS, autograph=False)
    def predict_ids(self, input_ids, token_type_ids, attention_mask):
        logits = self._forward(input_ids, token_type_ids, attention_mask)["logits"]
        return {"logits": logits, "tag_ids": tf.argmax(logits, axis=-1, output_type=tf.int32)}

    def signatures(self) -> dict:
        return {"serving_default": self.predict_text, "token_ids": self.predict_ids}

    # ---- helpers --------------------------------------------------------------------------

    def _word_pieces(self, word_strings):
        """Piece ids of each word, tokenized alone; a word without pieces gets [UNK]."""
        pieces = self.tokenizer.tokenize(word_strings)["ids"]
        n = pieces.row_lengths()
        padded = tf.concat([pieces, constant_column(pieces.nrows(), self.unk_id)], axis=1)
        keep = tf.ragged.range(n + 1) < tf.expand_dims(tf.maximum(n, 1), 1)
        return tf.ragged.boolean_mask(padded, keep)

    def _word_outputs(self, words, tag, score) -> dict:
        def like_words(values):
            return words["words"].with_flat_values(values)

        return {"words": words["words"].to_tensor(""),
                "word_starts": words["starts"].to_tensor(-1), "word_ends": words["ends"].to_tensor(-1),
                "tags": like_words(tf.gather(self.tag_names, tag)).to_tensor(""),
                "tag_scores": like_words(score).to_tensor(0.0),
                "num_words": tf.cast(words["words"].row_lengths(), tf.int32)}

    def _entities(self, text, words, word_example, tag) -> dict:
        first_word, last_word = entity_spans(tf.gather(self.tag_kinds, tag), tf.gather(self.tag_types, tag),
                                             word_example)
        example = tf.gather(word_example, first_word)
        start = tf.gather(words["starts"].flat_values, first_word)
        end = tf.gather(words["ends"].flat_values, last_word)
        batch = tf.size(text)

        def per_example(values, default):
            return tf.RaggedTensor.from_value_rowids(values, example, nrows=batch).to_tensor(default)

        entity_type = tf.gather(self.tag_types, tf.gather(tag, first_word))
        return {"entity_types": per_example(tf.gather(self.type_names, entity_type), ""),
                "entity_starts": per_example(start, -1), "entity_ends": per_example(end, -1),
                "entity_texts": per_example(substrings(tf.gather(text, example), start, end), ""),
                "num_entities": tf.math.bincount(example, minlength=batch, maxlength=batch, dtype=tf.int32)}


def entity_spans(kind, etype, word_example):
    """(first word, last word) [E] of each entity, from per-word tag kinds and types [W] of a
    flattened batch (`word_example` [W]: the example of each word, sorted).

    As `bertkit.data.ner.tag_spans`: B-X starts an entity; I-X continues an X entity that ends at
    the previous word of the same example, else starts one; O (and tags without B-/I-) end them.
    """
    def previous(x, fill):  # x shifted right by one word (works for zero words too)
        return tf.concat([tf.fill([1], fill), x], axis=0)[:-1]

    same_example = previous(word_example, -1) == word_example
    continues = ((kind == _INSIDE) & same_example & (previous(kind, _NONE) != _NONE)
                 & (previous(etype, -1) == etype))
    in_entity = kind != _NONE
    starts = in_entity & ~continues
    entity_of_word = tf.cumsum(tf.cast(starts, tf.int32)) - 1
    word_index = tf.range(tf.size(kind))
    last_word = tf.math.unsorted_segment_max(tf.boolean_mask(word_index, in_entity),
                                             tf.boolean_mask(entity_of_word, in_entity),
                                             tf.reduce_sum(tf.cast(starts, tf.int32)))
    return tf.boolean_mask(word_index, starts), last_word
