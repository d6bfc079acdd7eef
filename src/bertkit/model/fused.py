"""Element-wise parts of the training step fused by XLA, while the matmuls stay in graph mode.

Why: a bf16 training step in TensorFlow's graph mode reaches oneDNN's AMX matmuls (XLA:CPU runs bf16
matmuls without them, several times slower), but runs every element-wise op as its own kernel and
pass over memory: the feed-forward GELU in float32 is a cast, five ops and a cast each way, and its
gradient about a dozen more; the residual add + LayerNorm and its gradient another dozen. Here each
of them is one small function compiled by XLA (`tf.function(jit_compile=True)`, an "island" in the
graph) with its gradient written out by hand, so forward and backward are one fused loop each.
A MiniLM NER step (32 x 128, bf16, 2-core Xeon with AMX) ran 1.2x faster with both
(docs/benchmarks.md, "Fused element-wise islands").

Numerics: the same formulas as the unfused ops (GELU with erf, as HF BertModel; LayerNorm with the
biased variance and epsilon inside the square root, as torch/Keras), computed in float32 from
inputs of any float dtype. float32 gradients agree with TensorFlow's autodiff of the unfused ops to
float32 rounding (tests/model/test_fused.py).

Used by the encoder's blocks when training in a graph (a `tf.function`; inside a whole-step XLA
program they are inlined); eager calls and inference keep the plain ops, so exported graphs carry no
XLA-only functions.
"""

from __future__ import annotations

import math

import tensorflow as tf

_SQRT_HALF = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def use_fused(training: bool) -> bool:
    """Whether a layer call should take the fused path: training, and inside a graph being traced."""
    return bool(training) and not tf.executing_eagerly()


# --- GELU ----------------------------------------------------------------------------------------
@tf.function(jit_compile=True, autograph=False, reduce_retracing=True)
def _gelu_forward(x):
    xf = tf.cast(x, tf.float32)
    return tf.cast(xf * 0.5 * (1.0 + tf.math.erf(xf * _SQRT_HALF)), x.dtype)


@tf.function(jit_compile=True, autograph=False, reduce_retracing=True)
def _gelu_backward(x, dy):
    # d/dx [x Phi(x)] = Phi(x) + x phi(x)
    xf = tf.cast(x, tf.float32)
    cdf = 0.5 * (1.0 + tf.math.erf(xf * _SQRT_HALF))
    pdf = tf.exp(-0.5 * xf * xf) * _INV_SQRT_2PI
    return tf.cast(tf.cast(dy, tf.float32) * (cdf + xf * pdf), x.dtype)


@tf.custom_gradient
def gelu(x):
    """Exact (erf) GELU of x, any float dtype and shape, computed in float32, returned in x's dtype.
    Forward and gradient are each one XLA-fused pass."""
    return _gelu_forward(x), lambda dy: _gelu_backward(x, dy)


# --- residual add + LayerNorm --------------------------------------------------------------------
@tf.function(jit_compile=True, autograph=False, reduce_retracing=True)
def _add_layer_norm_forward(x, residual, gamma, beta, epsilon):
    s = tf.cast(x, tf.float32) + tf.cast(residual, tf.float32)
    centered = s - tf.reduce_mean(s, axis=-1, keepdims=True)
    inv_std = tf.math.rsqrt(tf.reduce_mean(tf.square(centered), axis=-1, keepdims=True) + epsilon)
    normalized = centered * inv_std
    return normalized * gamma + beta, normalized, inv_std


@tf.function(jit_compile=True, autograph=False, reduce_retracing=True)
def _add_layer_norm_backward(dy, normalized, inv_std, gamma):
    width = tf.shape(dy)[-1]
    d_gamma = tf.reduce_sum(tf.reshape(dy * normalized, [-1, width]), axis=0)
    d_beta = tf.reduce_sum(tf.reshape(dy, [-1, width]), axis=0)
    g = dy * gamma
    ds = inv_std * (g - tf.reduce_mean(g, axis=-1, keepdims=True)
                    - normalized * tf.reduce_mean(g * normalized, axis=-1, keepdims=True))
    return ds, d_gamma, d_beta


def add_layer_norm(x, residual, gamma, beta, epsilon: float):
    """LayerNorm(x + residual) over the last axis, in float32: [..., H] float32.

    x, residual: [..., H], any float dtypes (x is typically a bf16 sub-layer output, residual the
    float32 stream); gamma, beta: [H] float32 (tensors or variables); epsilon: inside the square
    root. Gradients flow to x and residual (in their own dtypes), gamma and beta."""
    epsilon = tf.constant(epsilon, tf.float32)

    @tf.custom_gradient
    def fused(x, residual, gamma, beta):
        y, normalized, inv_std = _add_layer_norm_forward(x, residual, gamma, beta, epsilon)

        def grad(dy):
            ds, d_gamma, d_beta = _add_layer_norm_backward(tf.cast(dy, tf.float32), normalized, inv_std, gamma)
            return tf.cast(ds, x.dtype), tf.cast(ds, residual.dtype), d_gamma, d_beta

        return y, grad

    return fused(x, residual, tf.convert_to_tensor(gamma), tf.convert_to_tensor(beta))
