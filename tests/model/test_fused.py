"""The XLA-fused GELU and residual LayerNorm against TensorFlow's autodiff of the unfused ops.

The model-level check is tests/tasks/test_training_parity.py: fine-tuning in graph mode (which takes
the fused path) matches HF transformers + torch AdamW weight for weight."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bertkit.model import fused
from bertkit.model.layers import gelu_exact

RNG = np.random.default_rng(0)


def unfused_gelu(x):
    return tf.cast(gelu_exact(tf.cast(x, tf.float32)), x.dtype)


def value_and_grad(fn, *args):
    """fn(*args) and the gradient of sum(fn * w) for a fixed random w, in a graph (the fused path).
    fn's output has the shape of its first argument."""
    weights = tf.constant(np.random.default_rng(1).standard_normal(args[0].shape), tf.float32)

    @tf.function
    def run(*xs):
        with tf.GradientTape() as tape:
            tape.watch(xs)
            y = fn(*xs)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * weights)
        return y, tape.gradient(loss, xs)

    return run(*args)


def test_fused_path_only_in_graph_training():
    assert not fused.use_fused(True)  # eager
    assert tf.function(lambda: tf.constant(fused.use_fused(True)))()
    assert not tf.function(lambda: tf.constant(fused.use_fused(False)))()


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16])
def test_gelu_and_its_gradient_match_the_unfused_ops(dtype):
    # The range a BERT feed-forward pre-activation covers, tails included.
    x = tf.cast(tf.constant(RNG.standard_normal((3, 40, 96)) * 3.0, tf.float32), dtype)
    y, (dx,) = value_and_grad(fused.gelu, x)
    y_ref, (dx_ref,) = value_and_grad(unfused_gelu, x)
    assert y.dtype == dtype and dx.dtype == dtype
    y, y_ref = y.numpy().astype(np.float32), y_ref.numpy().astype(np.float32)
    dx, dx_ref = dx.numpy().astype(np.float32), dx_ref.numpy().astype(np.float32)
    if dtype == tf.float32:
        np.testing.assert_allclose(y, y_ref, atol=3e-6, rtol=1e-6)
        np.testing.assert_allclose(dx, dx_ref, atol=3e-6, rtol=1e-5)
    else:  # both round one float32 result to bf16: equal, or one bf16 step apart
        np.testing.assert_allclose(y, y_ref, rtol=2 ** -7, atol=3e-6)
        np.testing.assert_allclose(dx, dx_ref, rtol=2 ** -7, atol=3e-6)


@pytest.mark.parametrize("x_dtype", [tf.float32, tf.bfloat16])
def test_add_layer_norm_and_its_gradients_match_keras(x_dtype):
    hidden = 64
    norm = keras.layers.LayerNormalization(epsilon=1e-12, dtype="float32")
    norm.build((None, hidden))
    norm.gamma.assign(RNG.standard_normal(hidden).astype(np.float32) * 0.2 + 1.0)
    norm.beta.assign(RNG.standard_normal(hidden).astype(np.float32) * 0.1)
    x = tf.cast(tf.constant(RNG.standard_normal((50, hidden)), tf.float32), x_dtype)
    residual = tf.constant(RNG.standard_normal((50, hidden)) * 2.0 + 0.5, tf.float32)
    gamma, beta = tf.constant(norm.gamma.numpy()), tf.constant(norm.beta.numpy())

    def keras_version(x, residual, gamma, beta):
        norm.gamma.assign(gamma)
        norm.beta.assign(beta)
        return norm(tf.cast(x, tf.float32) + residual)

    def unfused(x, residual, gamma, beta):
        s = tf.cast(x, tf.float32) + residual
        mean, var = tf.nn.moments(s, axes=[-1], keepdims=True)
        return (s - mean) * tf.math.rsqrt(var + 1e-12) * gamma + beta

    y, grads = value_and_grad(lambda *a: fused.add_layer_norm(*a, epsilon=1e-12), x, residual, gamma, beta)
    y_ref, grads_ref = value_and_grad(unfused, x, residual, gamma, beta)
    np.testing.assert_allclose(y.numpy(), keras_version(x, residual, gamma, beta).numpy(), atol=2e-6)
    np.testing.assert_allclose(y.numpy(), y_ref.numpy(), atol=2e-6)
    assert [g.dtype for g in grads] == [x_dtype, tf.float32, tf.float32, tf.float32]
    for name, g, g_ref in zip(["x", "residual", "gamma", "beta"], grads, grads_ref):
        g, g_ref = g.numpy().astype(np.float32), g_ref.numpy().astype(np.float32)
        if x_dtype == tf.bfloat16 and name == "x":  # the same float32 gradient, rounded to bf16
            np.testing.assert_allclose(g, g_ref, rtol=2 ** -7, atol=1e-6, err_msg=name)
        else:
            np.testing.assert_allclose(g, g_ref, rtol=1e-5, atol=2e-5, err_msg=name)


def test_fused_ops_inline_into_a_whole_xla_program():
    x = tf.constant(RNG.standard_normal((4, 6, 32)), tf.float32)
    gamma, beta = tf.ones([32]), tf.zeros([32])

    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fused.add_layer_norm(fused.gelu(x), x, gamma, beta, 1e-12)
            loss = tf.reduce_sum(y * y)
        return y, tape.gradient(loss, x)

    y_xla, g_xla = tf.function(step, jit_compile=True)(x)
    y_graph, g_graph = tf.function(step)(x)
    np.testing.assert_allclose(y_xla.numpy(), y_graph.numpy(), atol=1e-5)
    np.testing.assert_allclose(g_xla.numpy(), g_graph.numpy(), atol=1e-4)
