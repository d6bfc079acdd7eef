"""bertkit's AdamW against torch.optim.AdamW (HF transformers' optimizer): same updates, step by step."""

import numpy as np
import pytest
import tensorflow as tf

from bertkit.training.optimizer import OptimizerConfig, create_optimizer

torch = pytest.importorskip("torch")


def test_adamw_matches_torch_over_steps_with_tiny_gradients():
    rng = np.random.default_rng(0)
    w0 = (rng.normal(size=(32, 48)) * 0.02).astype(np.float32)
    # Gradient scales as after global-norm clipping (1e-6..1e-2): where the epsilon placement matters.
    grads = [(rng.normal(size=w0.shape) * s).astype(np.float32) for s in (1e-3, 1e-4, 1e-6, 1e-2, 1e-5, 3e-4)]
    ours = tf.Variable(w0.copy(), name="kernel")
    optimizer = create_optimizer(OptimizerConfig(learning_rate=1e-4, warmup_steps=0, total_steps=10 ** 9))
    ref = torch.nn.Parameter(torch.tensor(w0.copy()))
    ref_opt = torch.optim.AdamW([ref], lr=1e-4, weight_decay=0.01, eps=1e-6)
    for g in grads:
        optimizer.apply_gradients([(tf.constant(g), ours)])
        ref.grad = torch.tensor(g)
        ref_opt.step()
        np.testing.assert_allclose(ours.numpy(), ref.detach().numpy(), atol=1e-7, rtol=0)  # fp32 rounding; Keras' own placement is off by up to 1e-4 here
    assert np.abs(ours.numpy() - w0).max() > 3e-4  # it did move
