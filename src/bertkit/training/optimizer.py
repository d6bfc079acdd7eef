"""AdamW with BERT's recipe: weight decay 0.01 except LayerNorm and biases, global-norm clipping 1.0,
linear warmup then linear decay to zero."""

from __future__ import annotations

import contextlib
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
    """Keras AdamW computing torch.optim.AdamW's update (so HF transformers'), one fused kernel per
    weight:

        w <- w * (1 - lr * weight_decay)         (decoupled decay; not LayerNorm or biases)
        m <- m + (1 - beta_1) * (g - m);  v <- v + (1 - beta_2) * (g^2 - v)
        w <- w - lr * m_hat / (sqrt(v_hat) + epsilon),  m_hat = m / (1 - beta_1^t), v_hat likewise

    Keras adds epsilon to sqrt(v) before the bias correction, an effective epsilon of
    epsilon / sqrt(1 - beta_2^t): 30x larger at step 1, still 3x at step 100; with clipped
    gradients many elements are that small, and short fine-tuning runs drift from the reference.

    Why a fused kernel: TensorFlow's ResourceApplyAdam updates w, m and v in one pass over memory,
    where the same update written with Keras ops is about a dozen passes per weight and a dozen
    graph nodes to trace (MiniLM: 103 weights). It places epsilon as Keras does, so it is given
    epsilon * sqrt(1 - beta_2^t), which is exactly torch's placement:
        lr * m_hat / (sqrt(v_hat) + eps) = lr_t * m / (sqrt(v) + eps * sqrt(1 - beta_2^t)),
        lr_t = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)   (what the kernel computes).
    The per-step scalars (beta powers, epsilon, decay factor) are computed once per update, not
    once per weight."""

    def _apply_weight_decay(self, variables):
        pass  # folded into the update, with the step's scalars

    def _clip_gradients(self, grads):
        """Keras' clipping, on dense gradients. The embedding tables' gradients come from the tape
        as IndexedSlices with one slice per token occurrence; Keras' global norm squares those
        slices one by one, so a token seen twice in a batch counts as g1^2 + g2^2 instead of
        (g1 + g2)^2, and `fit` clipped by a different norm than torch's clip_grad_norm_ and the
        Trainer (which densifies first). Only `global_clipnorm` reads them (clip_in_optimizer)."""
        if self.global_clipnorm:
            grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]
        return super()._clip_gradients(grads)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        """Keras' TensorFlow update step, with the step's scalars computed once (in each replica's
        context, where the learning rate lives) instead of once per weight."""
        grads_and_vars = [(g, v.value if isinstance(v, keras.Variable) else v) for g, v in zip(grads, trainable_variables)]
        grads_and_vars = self._all_reduce_sum_gradients(grads_and_vars)
        step = tf.cast(self.iterations + 1, tf.float32)
        beta_1, beta_2 = tf.constant(self.beta_1, tf.float32), tf.constant(self.beta_2, tf.float32)
        lr = tf.cast(learning_rate, tf.float32)
        beta_2_power = tf.pow(beta_2, step)
        scalars = dict(lr=lr, beta1=beta_1, beta2=beta_2, beta1_power=tf.pow(beta_1, step), beta2_power=beta_2_power,
                       epsilon=self.epsilon * tf.sqrt(1.0 - beta_2_power),
                       decay=1.0 - lr * tf.cast(self.weight_decay or 0.0, tf.float32))
        tf.__internal__.distribute.interim.maybe_merge_call(
            self._fused_update, self._distribution_strategy, grads_and_vars, scalars)

    def _fused_update(self, distribution, grads_and_vars, scalars):
        for gradient, variable in grads_and_vars:
            distribution.extended.update(variable, self._update_one, args=(gradient, scalars), group=False)

    def _update_one(self, variable, gradient, scalars):
        scalars = {name: tf.cast(value, variable.dtype) for name, value in scalars.items()}
        decay = scalars.pop("decay")
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        if self.weight_decay and self._use_weight_decay(variable):
            variable.assign(variable * decay)
        tf.raw_ops.ResourceApplyAdam(var=_handle(variable), m=_handle(m), v=_handle(v),
                                     grad=tf.cast(gradient, variable.dtype), **scalars)


def _handle(variable):
    """The resource handle of a Keras or TF variable (what TF's fused training kernels take)."""
    return (variable.value if isinstance(variable, keras.Variable) else variable).handle


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


def create_optimizer(cfg: OptimizerConfig, precision: str = "fp32", clip_in_optimizer: bool = False
                     ) -> keras.optimizers.Optimizer:
    """AdamW (Keras) with the BERT schedule; wrapped in a LossScaleOptimizer for fp16.

    cfg.clip_norm is applied by the Trainer to the global gradient (see Trainer._clip); for Keras'
    own `fit` (one replica) `clip_in_optimizer` makes the optimizer clip the same global norm."""
    schedule = WarmupLinearDecay(cfg.learning_rate, cfg.warmup_steps, cfg.total_steps)
    optimizer = AdamW(
        learning_rate=schedule, weight_decay=cfg.weight_decay, beta_1=cfg.beta_1, beta_2=cfg.beta_2,
        epsilon=cfg.epsilon, global_clipnorm=cfg.clip_norm if clip_in_optimizer else None)
    optimizer.exclude_from_weight_decay(var_names=NO_DECAY_NAMES)
    if precision == "fp16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


PRECISIONS = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def resolve_training_precision(precision: str) -> str:
    """The precision a training run uses: `precision` itself (checked), or for "auto" fp32 on a
    GPU and otherwise the CPU's choice (`bertkit.cpu.auto_training_precision`: bf16 where it has
    AMX-BF16 units, else fp32, or $BERTKIT_PRECISION).

    Raises ValueError for a name that is not "auto" or one of PRECISIONS."""
    if precision == "auto":
        from ..cpu import auto_training_precision

        return "fp32" if tf.config.list_physical_devices("GPU") else auto_training_precision()
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be auto or one of {sorted(PRECISIONS)}, got {precision!r}")
    return precision


def set_precision(precision: str) -> None:
    """Sets the global Keras dtype policy; call before building the model."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    keras.mixed_precision.set_global_policy(PRECISIONS[precision])


@contextlib.contextmanager
def precision_policy(precision: str):
    """Keras' global dtype policy set to `precision` ("fp32", "bf16", "fp16") inside the block and
    restored after it: layers take the policy when they are built, so build the model inside; a
    model built later (the best checkpoint reloaded for scoring) runs in the caller's policy."""
    previous = keras.mixed_precision.global_policy()
    set_precision(precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
