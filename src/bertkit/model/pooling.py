"""Sentence embeddings from the encoder: sentence-transformers' pooling modes, in the graph.

    mean           mean of the token vectors under the attention mask ([CLS] and [SEP] included,
                   as sentence-transformers' Pooling does)
    cls            the [CLS] vector (the sequence output, not the pooler's tanh layer)
    max            element-wise max over the unmasked tokens
    mean_sqrt_len  the masked sum divided by sqrt(number of tokens)
optionally L2-normalised (sentence-transformers' Normalize module: x / max(||x||, 1e-12)).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from ..embeddings import POOLING_MODES


def pool(sequence_output, attention_mask, mode: str):
    """[B, S, H] float, [B, S] int (1 real, 0 pad) -> [B, H] float32."""
    mask = tf.expand_dims(tf.cast(attention_mask, sequence_output.dtype), -1)  # [B, S, 1]
    if mode == "cls":
        return tf.gather(sequence_output, 0, axis=1)
    if mode == "max":
        return tf.reduce_max(sequence_output + (1.0 - mask) * -1e9, axis=1)
    total = tf.reduce_sum(sequence_output * mask, axis=1)
    count = tf.maximum(tf.reduce_sum(mask, axis=1), 1e-9)
    if mode == "mean":
        return total / count
    if mode == "mean_sqrt_len":
        return total / tf.sqrt(count)
    raise ValueError(f"pooling must be one of {', '.join(POOLING_MODES)}, got {mode!r}")


class SentenceEmbedder(keras.Model):
    """Encoder + pooling (+ L2 normalisation). Input: the encoder's dict ([B, S] int32 each).
    Output: {"sentence_embedding": [B, H] float32}."""

    def __init__(self, encoder, pooling: str = "mean", normalize: bool = False, **kwargs):
        super().__init__(**kwargs)
        if pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {', '.join(POOLING_MODES)}, got {pooling!r}")
        self.encoder, self.pooling, self.normalize = encoder, pooling, normalize
        self.config = encoder.config

    def call(self, inputs, training=False):
        outputs = self.encoder(inputs, training=training)
        embedding = pool(outputs["sequence_output"], inputs["attention_mask"], self.pooling)
        if self.normalize:
            embedding = embedding / tf.maximum(tf.norm(embedding, axis=-1, keepdims=True), 1e-12)
        return {"sentence_embedding": embedding}


class BertForSentenceEmbedding(SentenceEmbedder):
    """The embedding task's model: inputs [B, K, S] (K texts per example, each `[CLS] text [SEP]`
    encoded on its own: an (anchor, positive) or scored pair has K = 2); outputs
    {"embeddings": [B, K, H] float32}, each text's pooled vector as SentenceEmbedder computes it.

    The pooler is kept (saved as HF's BertModel has it) but frozen: no pooling mode reads it."""

    input_rank = 3

    def __init__(self, config, num_labels: int | None = None, encoder=None, pooling: str = "mean",
                 normalize: bool = False, **kwargs):
        from .encoder import BertEncoder

        encoder = encoder or BertEncoder(config)
        encoder.build_weights()
        encoder.pooler.trainable = False
        super().__init__(encoder, pooling, normalize, **kwargs)

    def build(self, input_shape=None):
        self.encoder.build_weights()
        self.built = True

    def call(self, inputs, training=False):
        shape = tf.shape(inputs["input_ids"])
        flat = {k: tf.reshape(v, [-1, tf.shape(v)[-1]]) for k, v in inputs.items()}  # [B*K, S]
        embedding = super().call(flat, training=training)["sentence_embedding"]  # [B*K, H]
        return {"embeddings": tf.reshape(embedding, [shape[0], shape[1], tf.shape(embedding)[-1]])}
