"""bertkit's AdamW against torch.optim.AdamW (HF transformers' optimizer): same updates, step by step,
in eager, graph and XLA-compiled updates, with and without weight decay."""

import numpy as np
import pytest
import tensorflow as tf

from bertkit.training.optimizer import OptimizerConfig, create_optimizer

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
def test_adamw_matches_torch_over_steps_with_tiny_gradients(mode):
    rng = np.random.default_rng(0)
    w0 = (rng.normal(size=(32, 48)) * 0.02).astype(np.float32)
    b0 = (rng.normal(size=(48,)) * 0.02).astype(np.float32)
    # Gradient scales as after global-norm clipping (1e-6..1e-2): where the epsilon placement matters.
    scales = (1e-3, 1e-4, 1e-6, 1e-2, 1e-5, 3e-4)
    grads = [[(rng.normal(size=x.shape) * s).astype(np.float32) for x in (w0, b0)] for s in scales]
    ours = [tf.Variable(w0.copy(), name="kernel"), tf.Variable(b0.copy(), name="bias")]
    optimizer = create_optimizer(OptimizerConfig(learning_rate=1e-4, warmup_steps=0, total_steps=10 ** 9))
    optimizer.build(ours)
    ref = [torch.nn.Parameter(torch.tensor(x.copy())) for x in (w0, b0)]
    # HF's grouping: weight decay on the kernel, none on the bias.
    ref_opt = torch.optim.AdamW([{"params": [ref[0]], "weight_decay": 0.01},
                                 {"params": [ref[1]], "weight_decay": 0.0}], lr=1e-4, eps=1e-6)

    def apply(gs):
        optimizer.apply(gs, ours)

    if mode != "eager":
        apply = tf.function(apply, jit_compile=mode == "xla")
    for g in grads:
        apply([tf.constant(x) for x in g])
        for p, x in zip(ref, g):
            p.grad = torch.tensor(x)
        ref_opt.step()
        for var, p in zip(ours, ref):
            # fp32 rounding; Keras' own epsilon placement is off by up to 1e-4 here
            np.testing.assert_allclose(var.numpy(), p.detach().numpy(), atol=1e-7, rtol=0)
    assert np.abs(ours[0].numpy() - w0).max() > 3e-4  # it did move
    assert int(optimizer.iterations.numpy()) == len(grads)


def test_bias_gets_no_weight_decay():
    """With zero gradients Adam's step is zero, so only the decoupled decay moves a weight."""
    kernel, bias = tf.Variable(np.ones((4, 4), np.float32), name="kernel"), tf.Variable(np.ones(4, np.float32), name="bias")
    optimizer = create_optimizer(OptimizerConfig(learning_rate=0.1, warmup_steps=0, total_steps=10 ** 9, weight_decay=0.5))
    optimizer.apply([tf.zeros((4, 4)), tf.zeros(4)], [kernel, bias])
    np.testing.assert_allclose(kernel.numpy(), 1 - 0.1 * 0.5, rtol=1e-6)
    np.testing.assert_array_equal(bias.numpy(), 1.0)
