"""AdamW with BERT's recipe: weight decay 0.01 except LayerNorm and biases, global-norm clipping 1.0,
linear warmup then linear decay to zero."""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

# Keras 3 matches these against each variable's short name: LayerNorm gamma/beta and every bias are
# excluded, as google-research's exclude_from_weight_decay=["LayerNorm", "layer_norm", "bias"].
NO_DECAY_NAMES = ["gamma", "beta", "bias"]


@keras.saving.register_keras_serializable(package="bertkit")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr(step) = peak * step / warmup for step < warmup, then linear decay to 0 at total_steps."""

    def __init__(self, peak_learning_rate: float, warmup_steps: int, total_steps: int):
        if total_steps <= 0:
            raise ValueError(f"total_steps must be positive, got {total_steps}")
        if not 0 <= warmup_steps <= total_steps:
            raise ValueError(f"warmup_steps must be in [0, total_steps={total_steps}], got {warmup_steps}")
        self.peak_learning_rate = peak_learning_rate
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        peak = tf.constant(self.peak_learning_rate, tf.float32)
        warmup = tf.constant(max(self.warmup_steps, 1), tf.float32)
        decay_span = tf.constant(max(self.total_steps - self.warmup_steps, 1), tf.float32)
        warm = peak * step / warmup  # as google-research and HF: 0 at step 0
        decay = peak * tf.maximum(0.0, 1.0 - (step - self.warmup_steps) / decay_span)
        return tf.where(step < self.warmup_steps, warm, decay)

    def get_config(self):
        return {"peak_learning_rate": self.peak_learning_rate, "warmup_steps": self.warmup_steps,
                "total_steps": self.total_steps}


class AdamW(keras.optimizers.AdamW):
    """Keras AdamW with epsilon added after bias correction, as torch.optim.AdamW (so HF
    transformers) does: update = lr * m_hat / (sqrt(v_hat) + epsilon).

    Keras adds epsilon to sqrt(v) before the correction, an effective epsilon of
    epsilon / sqrt(1 - beta_2^t): 30x larger at step 1, still 3x at step 100. With clipped
    gradients many elements are that small, so the first few hundred updates were damped against
    the reference; short fine-tuning runs (a few hundred steps) feel it most."""

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = keras.ops.cast(learning_rate, dtype)
        gradient = keras.ops.cast(gradient, dtype)
        step = keras.ops.cast(self.iterations + 1, dtype)
        correction_1 = 1 - keras.ops.power(keras.ops.cast(self.beta_1, dtype), step)
        correction_2 = 1 - keras.ops.power(keras.ops.cast(self.beta_2, dtype), step)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        self.assign_add(m, (gradient - m) * (1 - self.beta_1))
        self.assign_add(v, (keras.ops.square(gradient) - v) * (1 - self.beta_2))
        denominator = keras.ops.sqrt(v / correction_2) + self.epsilon
        self.assign_sub(variable, m * (lr / correction_1) / denominator)


@dataclasses.dataclass
class OptimizerConfig:
    learning_rate: float = 1e-4
    warmup_steps: int = 0
    total_steps: int = 1000
    weight_decay: float = 0.01
    clip_norm: float | None = 1.0
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-6


def create_optimizer(cfg: OptimizerConfig, precision: str = "fp32") -> keras.optimizers.Optimizer:
    """AdamW (Keras) with the BERT schedule; wrapped in a LossScaleOptimizer for fp16.

    cfg.clip_norm is applied by the Trainer to the global gradient (see Trainer._clip), not here."""
    schedule = WarmupLinearDecay(cfg.learning_rate, cfg.warmup_steps, cfg.total_steps)
    optimizer = AdamW(
        learning_rate=schedule, weight_decay=cfg.weight_decay, beta_1=cfg.beta_1, beta_2=cfg.beta_2,
        epsilon=cfg.epsilon)
    optimizer.exclude_from_weight_decay(var_names=NO_DECAY_NAMES)
    if precision == "fp16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


PRECISIONS = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def set_precision(precision: str) -> None:
    """Sets the global Keras dtype policy; call before building the model."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    keras.mixed_precision.set_global_policy(PRECISIONS[precision])
