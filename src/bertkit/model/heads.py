"""Heads that sit on the encoder: pretraining (masked LM, next sentence) and the three task heads.

Every head returns float32 logits, also under mixed precision, so losses and softmaxes are stable.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from ..config import BertConfig
from .layers import Dropout, dense, get_activation, layer_norm, task_head_initializer


def gather_positions(sequence, positions):
    """[B, S, H] gathered at positions [B, P] -> [B, P, H]."""
    return tf.gather(sequence, tf.cast(positions, tf.int32), batch_dims=1)


class MaskedLMHead(keras.layers.Layer):
    """Dense + activation + LayerNorm, then the decoder tied to the word embedding table plus an
    output bias. Only the hidden states at the masked positions are decoded: the full
    [B, S, V] logits tensor is never built.

    Call: (sequence_output [B, S, H], positions [B, P]) -> logits [B, P, V] float32.
    """

    def __init__(self, config: BertConfig, embedding_table, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.embedding_table = embedding_table  # the encoder's word_embeddings variable [V, H]
        self.transform = dense(config.hidden_size, config, "transform")
        self.activation = get_activation(config.hidden_act)
        self.layer_norm = layer_norm(config, "LayerNorm")

    def build(self, input_shape=None):
        h = self.config.hidden_size
        self.transform.build((None, None, h))
        self.layer_norm.build((None, None, h))
        self.output_bias = self.add_weight(
            shape=(self.config.vocab_size,), initializer="zeros", name="output_bias", dtype="float32",
            autocast=False)
        self.built = True

    def call(self, sequence_output, positions):
        x = gather_positions(sequence_output, positions)
        x = self.layer_norm(self.activation(self.transform(x)))  # float32 [B, P, H]
        table = tf.cast(self.embedding_table, self.compute_dtype)
        logits = tf.matmul(tf.cast(x, self.compute_dtype), table, transpose_b=True)
        return tf.cast(logits, tf.float32) + self.output_bias


class ClassifierHead(keras.layers.Layer):
    """Dropout + Dense(num_outputs) with float32 logits. Used for NSP (2 outputs, no dropout),
    sequence classification (on pooled_output), token classification and QA (on sequence_output).
    `task_head`: draw the kernel as HF draws task heads (see task_head_initializer)."""

    def __init__(self, config: BertConfig, num_outputs: int, dropout: float | None = None,
                 task_head: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.num_outputs = num_outputs
        rate = config.hidden_dropout_prob if dropout is None else dropout
        self.dropout = Dropout(rate)
        self.dense = dense(num_outputs, config, "dense",
                           kernel_initializer=task_head_initializer(config) if task_head else None)

    def build(self, input_shape=None):
        self.dense.build((None, self.config.hidden_size))
        self.built = True

    def call(self, features, training=False):
        return tf.cast(self.dense(self.dropout(features, training=training)), tf.float32)
