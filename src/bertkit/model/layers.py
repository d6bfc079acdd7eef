"""The building blocks of the BERT encoder, written from scratch as Keras 3 layers.

Shape legend used in the comments:
  B = batch size, S = sequence length, H = hidden size, N = attention heads, D = H / N (head size),
  I = intermediate (feed-forward) size, V = vocabulary size.

Numerics chosen on purpose (so parity gaps are explainable):
  * LayerNorm and the attention softmax always run in float32, also under mixed precision.
  * Padding is masked by adding -1e9 to the attention scores in float32 (google-research used
    -10000, HF uses the dtype minimum; all give exactly zero weight after the softmax).
  * "gelu" is the exact erf form (HF BertModel); "gelu_new" is the tanh approximation that
    google-research/bert uses.
"""

from __future__ import annotations

import functools

import keras
import tensorflow as tf

from ..config import BertConfig
from . import fused

MASK_ADDER = -1e9


def gelu_exact(x):
    """x * Phi(x), written with erf as HF (torch's gelu) computes it. Keras' gelu uses
    erfc(-x / sqrt 2), which TF runs as three ops (Neg, Erfc, Mul) to this form's two: on 2 CPU
    cores a MiniLM Dense(1536) + GELU ran 20-30% faster this way (docs/benchmarks.md)."""
    return x * 0.5 * (1.0 + tf.math.erf(x * 0.7071067811865476))


def fusable_dense_gelu(x, kernel, bias):
    """gelu_exact(x @ kernel + bias) for bf16 inference, [T, in] -> [T, out] bf16, written as the
    pattern TensorFlow's oneDNN graph rewrite turns into ONE matmul primitive with a GELU (erf)
    post-op (grappler remapper, "MatMul + BiasAdd + GeluExact", pattern 1: the ops, their order
    and the constants must be exactly these). oneDNN applies the GELU to the float32 accumulators
    and rounds once: on real MiniLM activations 0.0029 relative RMS error against float32, where
    the bf16 matmul rounded, then GELU in float32 gives 0.0041; and it skips the activation's six
    passes over the [T, out] tensor (32 ms against 48 for 4,096 x 384 -> 1,536 on a 2-core Xeon
    with AMX). Inference only: training needs the pre-activation for the gradient, which stops
    the rewrite."""
    y = tf.nn.bias_add(tf.matmul(x, tf.cast(kernel, x.dtype)), tf.cast(bias, x.dtype))
    return ((tf.math.erf(y * 0.7071067811865476) + 1.0) * 0.5) * y


@functools.cache
def onednn_enabled() -> bool:
    """Whether TensorFlow runs its oneDNN graph rewrites (x86 Linux builds, unless
    TF_ENABLE_ONEDNN_OPTS=0): without them `fusable_dense_gelu` would run its GELU op by op in bf16."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return False
    return bool(_pywrap_util_port.IsMklEnabled())


def get_activation(name: str):
    if name == "gelu":
        return gelu_exact
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return lambda x: keras.activations.gelu(x, approximate=True)
    if name == "relu":
        return tf.nn.relu
    if name == "tanh":
        return tf.math.tanh
    raise ValueError(f"unknown activation {name!r}")


def initializer(config: BertConfig):
    """google-research/bert's: a normal redrawn beyond two standard deviations (so its standard
    deviation is 0.88 x initializer_range). For everything a checkpoint holds."""
    return keras.initializers.TruncatedNormal(stddev=config.initializer_range)


def task_head_initializer(config: BertConfig):
    """N(0, initializer_range), as HF transformers draws the task heads (classifier, qa_outputs)
    a fine-tune starts from. The head's draw matters on short fine-tunes: HF's own one-epoch
    MiniLM/SQuAD run (benchmarks/finetune_hf.py, 40 seeds each) scores 54.08 F1 with it and 53.15
    with the truncated normal above."""
    return keras.initializers.RandomNormal(stddev=config.initializer_range)


@keras.saving.register_keras_serializable(package="bertkit")
class Dense(keras.layers.Dense):
    """keras.layers.Dense (same weights, names, config and results) whose bf16 product is an Einsum.

    Why: TensorFlow's oneDNN graph rewrite fuses a MatMul and the bias add after it into one
    inner-product primitive, and in bf16 that primitive runs oneDNN's plain JIT GEMM, not the
    AMX kernels that a MatMul alone gets (ONEDNN_VERBOSE: `inner_product,x64:gemm:jit` against
    `matmul,brg_matmul:..._amx`). An Einsum is not rewritten and runs oneDNN's matmul: [4096, 384]
    x [384, 1536] plus bias took 14.3 ms against 21.8 fused on a 2-core Xeon with AMX
    (docs/benchmarks.md). float32 keeps Keras' MatMul: there the fused primitive is as fast, and
    exported float32 models convert to TFLite's fully-connected kernels."""

    def call(self, inputs, training=None):
        if self.compute_dtype != "bfloat16":
            return super().call(inputs, training=training)
        # Rows flattened to [T, in]: with an ellipsis ("...i,io->...o") TensorFlow's Einsum
        # gradient builds a [T, in, out] tensor before summing it.
        flat = inputs if inputs.shape.rank == 2 else tf.reshape(inputs, [-1, inputs.shape[-1]])
        x = tf.einsum("ti,io->to", flat, self.kernel)
        if self.bias is not None:
            x = tf.nn.bias_add(x, self.bias)
        if inputs.shape.rank != 2:
            x = tf.reshape(x, tf.concat([tf.shape(inputs)[:-1], [self.units]], 0))
        return x if self.activation is None else self.activation(x)


KEEP_BITS = 16  # random bits drawn per element by Dropout


def dropout_mask(shape, rate: float, seed, dtype) -> tf.Tensor:
    """Inverted-dropout multiplier, `dtype` of `shape` (int32 [rank]): 0 with probability p, else 1 / (1 - p).

    Each element compares 16 random bits (half of a 32-bit Philox word) with round(rate * 2^16),
    so p = round(rate * 65536) / 65536 (0.1 -> 0.1000061) and the kept values are scaled by exactly
    1 / (1 - p): the expected output equals the input. Keras' dropout draws a whole random float per
    element, twice the random numbers, and in bfloat16 compares 8-bit-mantissa uniforms with the
    rate: at rate 0.1 it keeps 89.83% of the elements while scaling for 90%. seed: int32/int64 [2]."""
    threshold = round(rate * 2 ** KEEP_BITS)
    if threshold >= 2 ** KEEP_BITS:  # rate 1 (or within 2^-17 of it): drop everything
        return tf.zeros(shape, dtype)
    n = tf.reduce_prod(shape)
    words = tf.random.stateless_uniform([(n + 1) // 2], seed=seed, minval=None, maxval=None, dtype=tf.uint32)
    bits = tf.reshape(tf.bitcast(words, tf.uint16), [-1])[:n]
    keep = tf.reshape(bits >= threshold, shape)
    scale = 2 ** KEEP_BITS / (2 ** KEEP_BITS - threshold)
    return tf.where(keep, tf.constant(scale, dtype), tf.zeros((), dtype))


@keras.saving.register_keras_serializable(package="bertkit")
class Dropout(keras.layers.Dropout):
    """keras.layers.Dropout (same config, seed generator and checkpointed state) whose mask is
    `dropout_mask`: half the random numbers of Keras' dropout and one select instead of a compare,
    a multiply and a select. A bf16 MiniLM training step ran 1.10x faster with it, a float32 one level
    (benchmarks/step_ab.py --compare dropout, docs/benchmarks.md). A noise_shape uses Keras' dropout."""

    def call(self, inputs, training=False):
        if not training or self.rate == 0 or self.noise_shape is not None:
            return super().call(inputs, training=training)
        return inputs * dropout_mask(tf.shape(inputs), self.rate, self.seed_generator.next(), inputs.dtype)


def residual_layer_norm(norm: keras.layers.LayerNormalization, x, residual, training) -> tf.Tensor:
    """norm(x + residual) in float32, [..., H]: one XLA-fused op (and gradient) when training in a
    graph (`fused.add_layer_norm`), else Keras' LayerNormalization on the float32 sum."""
    if fused.use_fused(training):
        return fused.add_layer_norm(x, residual, norm.gamma, norm.beta, norm.epsilon)
    return norm(tf.cast(x, tf.float32) + tf.cast(residual, tf.float32))


def dense(units: int, config: BertConfig, name: str, kernel_initializer=None) -> Dense:
    return Dense(units, kernel_initializer=kernel_initializer or initializer(config), name=name)


def layer_norm(config: BertConfig, name: str) -> keras.layers.LayerNormalization:
    # dtype float32: normalisation statistics must not be computed in 16-bit precision.
    return keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, dtype="float32", name=name)


# RESIDUAL_IN_FLOAT32: under mixed precision the blocks keep their inputs as they come (Keras would
# cast a layer's float inputs to bf16/fp16), so the residual stream between LayerNorms stays float32
# and the matmuls run in 16 bits, as under PyTorch's autocast; the activation runs in float32 (TF
# rounds each step of a 16-bit GELU; PyTorch rounds once). On the real MiniLM (64 SST-2 sentences)
# this took bf16's error in the last hidden state, relative RMS against fp32, from 0.0100 to 0.0077;
# PyTorch's autocast gives 0.0063 (tests/model/test_bf16.py). float32 models are unaffected.
# bf16 inference graphs go one step further: the feed-forward GELU runs inside the matmul on its
# float32 accumulators (fusable_dense_gelu), 0.0070.


class BertEmbeddings(keras.layers.Layer):
    """Token + segment + position embeddings, then LayerNorm and dropout.

    Inputs: input_ids, token_type_ids [B, S] int32. Output: [B, S, H] (float32 from the LayerNorm).
    """

    def __init__(self, config: BertConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.layer_norm = layer_norm(config, "LayerNorm")
        self.dropout = Dropout(config.hidden_dropout_prob)

    def build(self, input_shape=None):
        c = self.config
        init = initializer(c)
        # Tables stay float32 under mixed precision; the MLM decoder reuses word_embeddings.
        self.word_embeddings = self.add_weight(
            shape=(c.vocab_size, c.hidden_size), initializer=init, name="word_embeddings",
            dtype="float32", autocast=False)
        self.position_embeddings = self.add_weight(
            shape=(c.max_position_embeddings, c.hidden_size), initializer=init,
            name="position_embeddings", dtype="float32", autocast=False)
        self.token_type_embeddings = self.add_weight(
            shape=(c.type_vocab_size, c.hidden_size), initializer=init,
            name="token_type_embeddings", dtype="float32", autocast=False)
        self.layer_norm.build((None, None, c.hidden_size))
        self.built = True

    def call(self, input_ids, token_type_ids, training=False):
        seq_len = tf.shape(input_ids)[1]
        x = tf.gather(self.word_embeddings, input_ids)  # [B, S, H]
        x += tf.gather(self.token_type_embeddings, token_type_ids)
        # [S, H], broadcast over the batch: TFLite runs a 2-D slice ~9x faster than one adding an axis.
        x += self.position_embeddings[:seq_len]
        x = self.layer_norm(x)
        return self.dropout(x, training=training)


class BertSelfAttention(keras.layers.Layer):
    """Multi-head self-attention with an additive padding mask, plus output projection,
    residual and LayerNorm (BERT's post-LN "attention" sub-block).

    Inputs: hidden [B * S, H] (rows of all sequences, see BertEncoder), mask_adder [B, 1, 1, S]
    float32 (0 for real tokens, -1e9 for pad), batch and seq (B and S, scalars). Output: [B * S, H].
    """

    def __init__(self, config: BertConfig, **kwargs):
        super().__init__(autocast=False, **kwargs)  # see RESIDUAL_IN_FLOAT32
        self.config = config
        h = config.hidden_size
        self.query = dense(h, config, "query")
        self.key = dense(h, config, "key")
        self.value = dense(h, config, "value")
        self.output_dense = dense(h, config, "output_dense")
        self.layer_norm = layer_norm(config, "LayerNorm")
        self.attention_dropout = Dropout(config.attention_probs_dropout_prob)
        self.output_dropout = Dropout(config.hidden_dropout_prob)

    def build(self, input_shape):
        h = self.config.hidden_size
        for sub in (self.query, self.key, self.value, self.output_dense):
            sub.build((None, None, h))
        self.layer_norm.build((None, None, h))
        self.built = True

    def _split_heads(self, x, batch, seq):
        c = self.config
        x = tf.reshape(x, [batch, seq, c.num_attention_heads, c.head_size])
        return tf.transpose(x, [0, 2, 1, 3])  # [B, N, S, D]

    def call(self, hidden, mask_adder, batch, seq, training=False):
        x = tf.cast(hidden, self.compute_dtype)  # once for the three projections
        q = self._split_heads(self.query(x), batch, seq)
        k = self._split_heads(self.key(x), batch, seq)
        v = self._split_heads(self.value(x), batch, seq)
        q = q * tf.cast(self.config.head_size ** -0.5, q.dtype)
        scores = tf.matmul(q, k, transpose_b=True)  # [B, N, S, S]
        scores = tf.cast(scores, tf.float32) + tf.cast(mask_adder, tf.float32)
        probs = tf.cast(tf.nn.softmax(scores, axis=-1), v.dtype)
        probs = self.attention_dropout(probs, training=training)
        context = tf.matmul(probs, v)  # [B, N, S, D]
        context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [batch * seq, self.config.hidden_size])
        out = self.output_dropout(self.output_dense(context), training=training)
        return residual_layer_norm(self.layer_norm, out, hidden, training)


class BertFeedForward(keras.layers.Layer):
    """Dense(I) + activation + Dense(H), dropout, residual and LayerNorm. [B * S, H] -> [B * S, H]."""

    def __init__(self, config: BertConfig, **kwargs):
        super().__init__(autocast=False, **kwargs)  # see RESIDUAL_IN_FLOAT32
        self.config = config
        self.intermediate = dense(config.intermediate_size, config, "intermediate")
        self.output_dense = dense(config.hidden_size, config, "output_dense")
        self.layer_norm = layer_norm(config, "LayerNorm")
        self.dropout = Dropout(config.hidden_dropout_prob)
        self.activation = get_activation(config.hidden_act)

    def build(self, input_shape):
        c = self.config
        self.intermediate.build((None, None, c.hidden_size))
        self.output_dense.build((None, None, c.intermediate_size))
        self.layer_norm.build((None, None, c.hidden_size))
        self.built = True

    def call(self, hidden, training=False):
        if not training and self.activation is gelu_exact and self.intermediate.compute_dtype == "bfloat16" \
                and not tf.executing_eagerly() and onednn_enabled():  # graph rewrites run on graphs only
            x = fusable_dense_gelu(tf.cast(hidden, tf.bfloat16), self.intermediate.kernel, self.intermediate.bias)
        else:
            x = self.intermediate(hidden)
            if self.activation is gelu_exact and fused.use_fused(training):
                x = fused.gelu(x)
            else:
                x = tf.cast(self.activation(tf.cast(x, tf.float32)), x.dtype)  # see RESIDUAL_IN_FLOAT32
        x = self.dropout(self.output_dense(x), training=training)
        return residual_layer_norm(self.layer_norm, x, hidden, training)


class BertLayer(keras.layers.Layer):
    """One post-LN transformer block: attention sub-block then feed-forward sub-block.
    [B * S, H] -> [B * S, H]; `batch` and `seq` give the attention its [B, S] layout."""

    def __init__(self, config: BertConfig, **kwargs):
        super().__init__(autocast=False, **kwargs)  # see RESIDUAL_IN_FLOAT32
        self.attention = BertSelfAttention(config, name="attention")
        self.feed_forward = BertFeedForward(config, name="feed_forward")

    def build(self, input_shape):
        self.attention.build(input_shape)
        self.feed_forward.build(input_shape)
        self.built = True

    def call(self, hidden, mask_adder, batch, seq, training=False):
        hidden = self.attention(hidden, mask_adder, batch, seq, training=training)
        return self.feed_forward(hidden, training=training)


class BertPooler(keras.layers.Layer):
    """tanh(Dense(H)) over the [CLS] vector. [B, S, H] -> [B, H]."""

    def __init__(self, config: BertConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.dense = dense(config.hidden_size, config, "dense")

    def build(self, input_shape):
        self.dense.build((None, self.config.hidden_size))
        self.built = True

    def call(self, sequence_output):
        # gather, not [:, 0, :]: TFLite has no builtin for that strided slice when the shape is dynamic.
        return tf.math.tanh(self.dense(tf.gather(sequence_output, 0, axis=1)))


def attention_mask_adder(attention_mask) -> tf.Tensor:
    """[B, S] (1 real, 0 pad) -> [B, 1, 1, S] float32 additive mask."""
    # expand_dims, not [:, None, None, :]: a strided slice with new axes has no TFLite builtin.
    mask = tf.expand_dims(tf.expand_dims(tf.cast(attention_mask, tf.float32), 1), 1)
    return (1.0 - mask) * MASK_ADDER
