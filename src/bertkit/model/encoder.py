"""BertEncoder: embeddings, a stack of transformer blocks, and the [CLS] pooler."""

from __future__ import annotations

import keras
import tensorflow as tf

from ..config import BertConfig
from .layers import BertEmbeddings, BertLayer, BertPooler, attention_mask_adder

INPUT_NAMES = ("input_ids", "token_type_ids", "attention_mask")


def standardize_inputs(inputs) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """A dict with `input_ids` and optional `token_type_ids` / `attention_mask` -> three int32 [B, S]."""
    if not isinstance(inputs, dict) or "input_ids" not in inputs:
        raise ValueError(
            "BERT models take a dict with 'input_ids' (and optionally 'token_type_ids', "
            f"'attention_mask'), got {type(inputs).__name__}"
        )
    unknown = set(inputs) - set(INPUT_NAMES) - {"masked_lm_positions"}
    if unknown:
        raise ValueError(f"unknown input name(s) {sorted(unknown)}; expected {INPUT_NAMES}")
    input_ids = tf.cast(inputs["input_ids"], tf.int32)
    token_type_ids = inputs.get("token_type_ids")
    token_type_ids = tf.zeros_like(input_ids) if token_type_ids is None else tf.cast(token_type_ids, tf.int32)
    attention_mask = inputs.get("attention_mask")
    attention_mask = tf.ones_like(input_ids) if attention_mask is None else tf.cast(attention_mask, tf.int32)
    return input_ids, token_type_ids, attention_mask


@keras.saving.register_keras_serializable(package="bertkit")
class BertEncoder(keras.Model):
    """The BERT encoder.

    Call it on a dict of `input_ids`, `token_type_ids`, `attention_mask` (int32 [B, S]). Returns a dict:
      sequence_output [B, S, H], pooled_output [B, H] and, with output_hidden_states=True,
      hidden_states: a list of L + 1 tensors [B, S, H] (embeddings, then each block's output).
    """

    def __init__(self, config: BertConfig, **kwargs):
        kwargs.setdefault("name", "bert_encoder")
        super().__init__(**kwargs)
        self.config = config
        self.embeddings = BertEmbeddings(config, name="embeddings")
        # One attribute per block, not a list: TensorFlow's object tracking (checkpoints,
        # SavedModels, the TFLite converter) does not see Keras 3 layers held in a Python list.
        for i in range(config.num_hidden_layers):
            setattr(self, f"layer_{i}", BertLayer(config, name=f"layer_{i}"))
        self.pooler = BertPooler(config, name="pooler")

    @property
    def blocks(self) -> list[BertLayer]:
        """The transformer blocks, bottom first."""
        return [getattr(self, f"layer_{i}") for i in range(self.config.num_hidden_layers)]

    def build(self, input_shape=None):
        shape = (None, None, self.config.hidden_size)
        self.embeddings.build(None)
        for block in self.blocks:
            block.build(shape)
        self.pooler.build(shape)
        self.built = True

    def call(self, inputs, training=False, output_hidden_states=False):
        input_ids, token_type_ids, attention_mask = standardize_inputs(inputs)
        seq_len = input_ids.shape[1]
        if seq_len is not None and seq_len > self.config.max_position_embeddings:
            raise ValueError(
                f"sequence length {seq_len} exceeds max_position_embeddings "
                f"({self.config.max_position_embeddings})"
            )
        mask_adder = attention_mask_adder(attention_mask)
        hidden = self.embeddings(input_ids, token_type_ids, training=training)  # [B, S, H]
        batch, seq = tf.shape(input_ids)[0], tf.shape(input_ids)[1]
        shape = tf.shape(hidden)
        # The blocks work on the rows of all sequences, [B * S, H], as google-research/bert does
        # (reshape_to_matrix): every Dense is then one 2-D MatMul that graph mode fuses with its
        # bias add, instead of a Tensordot whose reshapes keep them apart.
        rows = tf.reshape(hidden, [-1, self.config.hidden_size])
        all_hidden = [hidden]
        for block in self.blocks:
            rows = block(rows, mask_adder, batch, seq, training=training)
            all_hidden.append(tf.reshape(rows, shape))
        hidden = all_hidden[-1]
        outputs = {"sequence_output": hidden, "pooled_output": self.pooler(hidden)}
        if output_hidden_states:
            outputs["hidden_states"] = all_hidden
        return outputs

    def get_config(self):
        return {"config": self.config.to_dict(), "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(BertConfig.from_dict(config["config"]), name=config.get("name"))

    @classmethod
    def from_pretrained(cls, name_or_path: str, revision: str | None = None) -> "BertEncoder":
        """The encoder of a checkpoint directory or Hub name (bertkit.load_pretrained)."""
        from ..pretrained import load_pretrained

        return load_pretrained(name_or_path, revision=revision)

    def save_pretrained(self, out_dir: str, tokenizer=None, tokenizer_dir: str | None = None) -> str:
        """Writes a HF BertModel directory (bertkit.save_model)."""
        from ..pretrained import save_model

        return save_model(self, out_dir, tokenizer=tokenizer, tokenizer_dir=tokenizer_dir)

    def build_weights(self) -> "BertEncoder":
        """Creates every variable (by a call on a tiny dummy batch) and returns self."""
        if not self.built:
            self.build()
        return self
