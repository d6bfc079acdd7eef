"""Sentence embeddings from the encoder: sentence-transformers' pooling modes, in the graph.

    mean           mean of the token vectors under the attention mask ([CLS] and [SEP] included,
                   as sentence-transformers' Pooling does)
    cls            the [CLS] vector (the sequence output, not the pooler's tanh layer)
    max            element-wise max over the unmasked tokens
    mean_sqrt_len  the masked sum divided by sqrt(number of tokens)
then projected by sentence-transformers' Dense modules (`SentenceDense`, if the folder has any)
and optionally L2-normalised (its Normalize module: x / max(||x||, 1e-12)), in that order.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from ..embeddings import POOLING_MODES, DenseConfig

# sentence-transformers' Dense activations (bertkit.embeddings.DENSE_ACTIVATIONS) in TensorFlow;
# torch's GELU is the exact (erf) one.
ACTIVATIONS = {"identity": tf.identity, "tanh": tf.tanh, "relu": tf.nn.relu, "sigmoid": tf.sigmoid,
               "gelu": lambda x: tf.nn.gelu(x, approximate=False), "silu": tf.nn.silu}


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


def unit_length(x):
    """sentence-transformers' Normalize: x / max(||x||, 1e-12) over the last axis."""
    return x / tf.maximum(tf.norm(x, axis=-1, keepdims=True), 1e-12)


class SentenceDense(keras.layers.Layer):
    """sentence-transformers' Dense module: [B, in] -> activation(x W + b) [B, out], plus x (or
    x R when the widths differ) with `use_residual` (bertkit.embeddings.DenseConfig)."""

    def __init__(self, config: DenseConfig, **kwargs):
        super().__init__(**kwargs)
        self.dense_config = config
        self.activation_fn = ACTIVATIONS[_activation_name(config.activation)]

    def build(self, input_shape=None):
        c = self.dense_config
        self.kernel = self.add_weight(shape=(c.in_features, c.out_features), initializer="glorot_uniform",
                                      name="kernel")
        self.bias = self.add_weight(shape=(c.out_features,), initializer="zeros", name="bias") if c.bias else None
        self.residual_kernel = (self.add_weight(shape=(c.in_features, c.out_features), initializer="glorot_uniform",
                                                name="residual_kernel")
                                if c.use_residual and c.in_features != c.out_features else None)
        self.built = True

    def call(self, x):
        y = tf.matmul(x, self.kernel)
        if self.bias is not None:
            y = y + self.bias
        y = self.activation_fn(y)
        if self.dense_config.use_residual:
            y = y + (x if self.residual_kernel is None else tf.matmul(x, self.residual_kernel))
        return y

    def load_st_weights(self, tensors: dict) -> None:
        """From sentence-transformers' tensors (torch Linear layout: weight [out, in])."""
        if not self.built:
            self.build()
        self.kernel.assign(tensors["linear.weight"].T)
        if self.bias is not None:
            self.bias.assign(tensors["linear.bias"])
        if self.residual_kernel is not None:
            self.residual_kernel.assign(tensors["residual.weight"].T)

    def st_weights(self) -> dict:
        """The tensors sentence-transformers saves for this module (numpy, torch Linear layout)."""
        out = {"linear.weight": self.kernel.numpy().T}
        if self.bias is not None:
            out["linear.bias"] = self.bias.numpy()
        if self.residual_kernel is not None:
            out["residual.weight"] = self.residual_kernel.numpy().T
        return out


def dense_layers_of(dense: tuple[DenseConfig, ...]) -> list[SentenceDense]:
    """Keras layers of sentence-transformers' Dense modules, with the weights of their folders."""
    layers = []
    for i, config in enumerate(dense):
        layer = SentenceDense(config, name=f"dense_{i}")
        layer.load_st_weights(config.weights())
        layers.append(layer)
    return layers


def _activation_name(torch_name: str) -> str:
    from ..embeddings import DENSE_ACTIVATIONS

    return DENSE_ACTIVATIONS[torch_name]


class SentenceEmbedder(keras.Model):
    """Encoder + pooling (+ Dense projections, + L2 normalisation). Input: the encoder's dict
    ([B, S] int32 each). Output: {"sentence_embedding": [B, D] float32}, D the last Dense module's
    width, else the encoder's hidden size.

    `dense`: the folder's Dense modules (DenseConfig), loaded with their weights."""

    def __init__(self, encoder, pooling: str = "mean", normalize: bool = False,
                 dense: tuple[DenseConfig, ...] = (), **kwargs):
        super().__init__(**kwargs)
        if pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {', '.join(POOLING_MODES)}, got {pooling!r}")
        self.encoder, self.pooling, self.normalize = encoder, pooling, normalize
        self.config = encoder.config
        # One attribute per Dense layer, as the encoder's blocks: TF's object tracking misses Keras
        # 3 layers held in a list.
        for i, layer in enumerate(dense_layers_of(dense)):
            setattr(self, f"dense_{i}", layer)
        self.dense_count = len(dense)

    @property
    def dense_layers(self) -> list[SentenceDense]:
        return [getattr(self, f"dense_{i}") for i in range(self.dense_count)]

    def call(self, inputs, training=False):
        outputs = self.encoder(inputs, training=training)
        return {"sentence_embedding": sentence_vectors(outputs["sequence_output"], inputs["attention_mask"],
                                                       self.pooling, self.dense_layers, self.normalize)}


def sentence_vectors(sequence_output, attention_mask, pooling: str, dense_layers=(), normalize: bool = False):
    """[B, S, H] token vectors and their [B, S] mask -> [B, D]: pooled, projected by each Dense
    layer in turn, L2-normalised if `normalize` (sentence-transformers' module order)."""
    embedding = pool(sequence_output, attention_mask, pooling)
    for layer in dense_layers:
        embedding = layer(embedding)
    return unit_length(embedding) if normalize else embedding


class BertForSentenceEmbedding(SentenceEmbedder):
    """The embedding task's model: inputs [B, K, S] (K texts per example, each `[CLS] text [SEP]`
    encoded on its own: an (anchor, positive) or scored pair has K = 2); outputs
    {"embeddings": [B, K, H] float32}, each text's pooled vector as SentenceEmbedder computes it.

    The pooler is kept (saved as HF's BertModel has it) but frozen: no pooling mode reads it."""

    input_rank = 3

    def __init__(self, config, num_labels: int | None = None, encoder=None, pooling: str = "mean",
                 normalize: bool = False, dense: tuple[DenseConfig, ...] = (), **kwargs):
        from .encoder import BertEncoder

        encoder = encoder or BertEncoder(config)
        encoder.build_weights()
        encoder.pooler.trainable = False
        super().__init__(encoder, pooling, normalize, dense, **kwargs)

    def build(self, input_shape=None):
        self.encoder.build_weights()
        self.built = True

    def call(self, inputs, training=False):
        shape = tf.shape(inputs["input_ids"])
        flat = {k: tf.reshape(v, [-1, tf.shape(v)[-1]]) for k, v in inputs.items()}  # [B*K, S]
        embedding = super().call(flat, training=training)["sentence_embedding"]  # [B*K, H]
        return {"embeddings": tf.reshape(embedding, [shape[0], shape[1], tf.shape(embedding)[-1]])}
