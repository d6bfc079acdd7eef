"""BertPreprocessor: a Keras layer from raw strings to the encoder's inputs, in the graph.

It wraps bertkit's in-graph WordPiece tokenizer (tensorflow-text; ids equal `BertTokenizer` and HF
`tokenizers`), so it runs inside `tf.data` pipelines, `tf.function`s and SavedModels. Its config holds
the vocabulary and the tokenizer settings, so a `.keras` file carries everything it needs.
KerasHub's `BertTextClassifierPreprocessor` is the model for the interface.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from ..data.common import MODEL_INPUT_KEYS

_SETTINGS = ("lower_case", "strip_accents", "tokenize_chinese_chars", "max_input_chars_per_word")


@keras.saving.register_keras_serializable(package="bertkit")
class BertPreprocessor(keras.layers.Layer):
    """Strings -> {"input_ids", "token_type_ids", "attention_mask"}, each int32 [batch, seq].

    Call it on a string tensor / list [batch] (single texts) or a pair `(texts, text_pairs)` for
    `[CLS] a [SEP] b [SEP]` inputs. Sequences are cut to `max_length` word pieces, [CLS] and [SEP]
    included (pairs: the longer one first, HF's "longest_first"), then padded with [PAD] to the
    longest row of the batch (`padding="longest"`) or to `max_length` (`padding="max_length"`).

    Args:
      tokenizer: a `bertkit.BertTokenizer` (e.g. `bertkit.load_tokenizer(path)`).
      max_length: word pieces per sequence (default 128).
      padding: "longest" or "max_length".

    Example:
      >>> pre = BertPreprocessor.from_pretrained("sentence-transformers/all-MiniLM-L6-v2")  # doctest: +SKIP
      >>> pre(["a cat", "a dog sat"])["input_ids"].shape  # doctest: +SKIP
      TensorShape([2, 5])
    """

    def __init__(self, tokenizer, max_length: int = 128, padding: str = "longest", **kwargs):
        super().__init__(**kwargs)
        if max_length < 2:
            raise ValueError(f"max_length must be at least 2 ([CLS] and [SEP]), got {max_length}")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.padding = padding
        self._fast = tokenizer.in_graph(max_length=max_length, padding=padding, truncation="longest_first")
        # Strings pass through as they are (no float conversion or autocasting of the inputs).
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

    @classmethod
    def from_pretrained(cls, name_or_path: str, revision: str | None = None, **kwargs) -> "BertPreprocessor":
        """The preprocessor of a model directory or Hub name (its vocab.txt and tokenizer settings)."""
        from ..tokenizer import load_tokenizer

        return cls(load_tokenizer(name_or_path, revision=revision), **kwargs)

    def call(self, inputs):
        if isinstance(inputs, (tuple, list)) and len(inputs) == 2 and not isinstance(inputs[0], str):
            texts, pairs = (tf.convert_to_tensor(x, tf.string) for x in inputs)
        else:
            texts, pairs = tf.convert_to_tensor(inputs, tf.string), None
        encoded = self._fast(texts, pairs)
        return {key: encoded[key] for key in MODEL_INPUT_KEYS}

    def compute_output_spec(self, inputs):
        spec = keras.KerasTensor((None, None), dtype="int32")
        return {key: spec for key in MODEL_INPUT_KEYS}

    def get_config(self):
        tok = self.tokenizer
        return {**super().get_config(), "max_length": self.max_length, "padding": self.padding,
                "vocabulary": list(tok.inv_vocab), **{k: getattr(tok, k) for k in _SETTINGS},
                **tok.special_tokens}

    @classmethod
    def from_config(cls, config):
        from ..tokenizer import BertTokenizer

        config = dict(config)
        vocabulary = config.pop("vocabulary")
        settings = {k: config.pop(k) for k in (*_SETTINGS, "pad_token", "unk_token", "cls_token", "sep_token",
                                               "mask_token") if k in config}
        return cls(BertTokenizer(vocabulary, check_casing=False, **settings), **config)
