"""The tokenizer alone, in the TF Hub BERT-preprocess convention (strings in, encoder inputs out).

Code written for TF Hub's `bert_en_uncased_preprocess` works unchanged:

    preprocess = tf.saved_model.load(export_dir)            # after `import tensorflow_text`
    inputs = preprocess(tf.constant(["hello world"]))         # input_word_ids, input_mask,
                                                              # input_type_ids: int32 [B, seq_length]
    tokens = preprocess.tokenize(tf.constant(["a", "b c"]))   # ragged [B, (words), (pieces)]
    packed = preprocess.bert_pack_inputs([tokens, tokens2], seq_length=tf.constant(64))
    preprocess.tokenize.get_special_tokens_dict()             # ids of [CLS], [SEP], [PAD], [MASK]

The root call and the `text` / `text_pair` signatures truncate as bertkit does everywhere
(HF longest_first), so their ids equal `BertTokenizer.encode_batch`. `bert_pack_inputs` follows
the Hub model instead: pairs are trimmed round-robin (tensorflow_text.RoundRobinTrimmer); the two
rules differ only in which segment keeps the odd token when both must be cut.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_text as tf_text

from .modules import TEXT, TEXT_PAIR


def _hub_names(encoded: dict) -> dict:
    return {"input_word_ids": encoded["input_ids"], "input_mask": encoded["attention_mask"],
            "input_type_ids": encoded["token_type_ids"]}


class PreprocessorModule(tf.Module):
    kind = "preprocessor"

    def __init__(self, tokenizer, seq_length: int = 128):
        super().__init__(name="bertkit_preprocessor")
        self.seq_length = seq_length
        self.tokenizer = tokenizer.in_graph(max_length=seq_length, padding="max_length",
                                            truncation="longest_first")
        specials = {"vocab_size": tokenizer.vocab_size, "start_of_sequence_id": tokenizer.cls_id,
                    "end_of_segment_id": tokenizer.sep_id, "padding_id": tokenizer.pad_id,
                    "mask_id": tokenizer.mask_id}
        self.tokenize = _Tokenize(self.tokenizer, specials)
        self.bert_pack_inputs = _BertPackInputs(specials, seq_length)

    @tf.function(input_signature=[TEXT], autograph=False)
    def __call__(self, text):
        return _hub_names(self.tokenizer(text))

    @tf.function(input_signature=[TEXT, TEXT_PAIR], autograph=False)
    def pack_pair(self, text, text_pair):
        return _hub_names(self.tokenizer(text, text_pair))

    def signatures(self) -> dict:
        return {"serving_default": self.__call__, "text": self.__call__, "text_pair": self.pack_pair}

    def sample_inputs(self, texts) -> dict:
        return {"serving_default": {"text": texts}, "text_pair": {"text": texts, "text_pair": texts[::-1]}}

    def metadata(self) -> dict:
        return {"kind": self.kind, "task": None, "labels": None, "options": {"seq_length": self.seq_length}}


class _Tokenize(tf.Module):
    """`preprocess.tokenize(strings)`: ragged int32 [B, (words), (pieces)]."""

    def __init__(self, fast_tokenizer, specials: dict):
        super().__init__(name="tokenize")
        self._fast = fast_tokenizer
        self._specials = {k: tf.constant(v, tf.int32) for k, v in specials.items()}

    @tf.function(input_signature=[TEXT], autograph=False)
    def __call__(self, text):
        pieces = self._fast.tokenize(text)
        ids, word_ids = pieces["ids"], pieces["word_ids"]
        # Words are numbered 0.. within a row and every word has at least one piece ([UNK]).
        n_words = tf.maximum(tf.reduce_max(word_ids, axis=1) + 1, 0)
        global_word = word_ids.flat_values + tf.gather(tf.cumsum(n_words, exclusive=True), ids.value_rowids())
        words = tf.RaggedTensor.from_value_rowids(ids.flat_values, tf.cast(global_word, tf.int64),
                                                  nrows=tf.cast(tf.reduce_sum(n_words), tf.int64))
        return tf.RaggedTensor.from_row_lengths(words, tf.cast(n_words, tf.int64))

    @tf.function(input_signature=[], autograph=False)
    def get_special_tokens_dict(self):
        return dict(self._specials)


class _BertPackInputs(tf.Module):
    """`preprocess.bert_pack_inputs([seg_a(, seg_b)], seq_length=...)` as in TF Hub's models:
    segments ragged [B, (T)] or [B, (words), (pieces)], round-robin trimmed, then
    [CLS] a [SEP] (b [SEP]) padded to seq_length. Traced for 1-2 segments of ragged rank 1-2."""

    def __init__(self, specials: dict, default_seq_length: int):
        super().__init__(name="bert_pack_inputs")
        cls, sep, pad = (specials[k] for k in ("start_of_sequence_id", "end_of_segment_id", "padding_id"))

        @tf.function(autograph=False)
        def call(inputs, seq_length=default_seq_length):
            segments = [tf.cast(s.merge_dims(1, -1) if s.ragged_rank > 1 else s, tf.int32) for s in inputs]
            seq_length = tf.cast(seq_length, tf.int32)
            trimmed = tf_text.RoundRobinTrimmer(max_seq_length=seq_length - len(segments) - 1).trim(segments)
            ids, type_ids = tf_text.combine_segments(trimmed, start_of_sequence_id=cls, end_of_segment_id=sep)
            word_ids, mask = tf_text.pad_model_inputs(ids, max_seq_length=seq_length, pad_value=pad)
            type_ids, _ = tf_text.pad_model_inputs(type_ids, max_seq_length=seq_length, pad_value=0)
            return {"input_word_ids": word_ids, "input_mask": mask, "input_type_ids": type_ids}

        self.__call__ = call
        for ragged_rank in (1, 2):
            for num_segments in (1, 2):
                call.get_concrete_function(
                    [tf.RaggedTensorSpec([None] * (ragged_rank + 1), tf.int32) for _ in range(num_segments)],
                    seq_length=tf.TensorSpec([], tf.int32))
