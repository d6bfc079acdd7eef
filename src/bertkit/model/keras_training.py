"""compile()/fit() with the fine-tuning engine's defaults, shared by the strings-in Keras models.

`BertTextClassifier` (text_classifier.py) and the token, span and choice models (keras_tasks.py)
mix this in before `keras.Model`. "auto" in `compile()` means what `bertkit finetune` does: AdamW
with decoupled weight decay (none on LayerNorm or biases), global-norm clipping at 1.0, linear
warmup over `warmup_ratio` of the steps then linear decay to 0. The schedule needs the number of
steps, which only `fit` knows, so each `fit` call builds the optimizer anew (fresh Adam moments, as
a new `bertkit finetune` run starts).
"""

from __future__ import annotations

import dataclasses

from ..tasks.options import FinetuneOptions

DEFAULTS = {f.name: f.default for f in dataclasses.fields(FinetuneOptions)}


class EngineTraining:
    """Mixin for a keras.Model subclass: `compile()` defaults and the per-`fit` schedule.

    Subclasses give `_default_loss()` and `_default_metrics()` (the task's loss and metrics)."""

    _auto_optimizer: dict | None = None

    def _default_loss(self):
        raise NotImplementedError

    def _default_metrics(self) -> list:
        return []

    def compile(self, optimizer="auto", loss="auto", metrics="auto", learning_rate: float | None = None,
                warmup_ratio: float | None = None, weight_decay: float | None = None, **kwargs):
        """keras.Model.compile, where "auto" is the fine-tuning engine's choice:
        optimizer: bertkit AdamW (torch's update), `learning_rate` (5e-5) warmed up linearly over
          `warmup_ratio` (0.1) of each fit call's steps, then decayed linearly to 0; `weight_decay`
          (0.01) except LayerNorm and biases; gradients clipped to global norm 1.0.
        loss, metrics: the task's (see the model class).
        Any other value is passed to keras.Model.compile as is."""
        loss = self._default_loss() if loss == "auto" else loss
        metrics = self._default_metrics() if metrics == "auto" else metrics
        self._auto_optimizer = None
        if optimizer == "auto":
            self._auto_optimizer = {
                "learning_rate": DEFAULTS["learning_rate"] if learning_rate is None else learning_rate,
                "warmup_ratio": DEFAULTS["warmup_ratio"] if warmup_ratio is None else warmup_ratio,
                "weight_decay": DEFAULTS["weight_decay"] if weight_decay is None else weight_decay}
            optimizer = self._make_optimizer(total_steps=1)
        self._compile_args = dict(loss=loss, metrics=metrics, **kwargs)
        super().compile(optimizer=optimizer, **self._compile_args)

    def get_compile_config(self):
        if self._auto_optimizer is not None:  # a `.keras` file records compile()'s own arguments
            return {"auto_optimizer": self._auto_optimizer}
        return super().get_compile_config()

    def compile_from_config(self, config):
        if "auto_optimizer" in config:
            self.compile(**config["auto_optimizer"])
            self.optimizer.build(self.trainable_variables)  # so the saved optimizer state loads into it
        else:
            super().compile_from_config(config)

    def _make_optimizer(self, total_steps: int):
        from ..training.optimizer import OptimizerConfig, create_optimizer

        auto = self._auto_optimizer
        return create_optimizer(OptimizerConfig(learning_rate=auto["learning_rate"],
                                                warmup_steps=int(auto["warmup_ratio"] * total_steps),
                                                total_steps=total_steps, weight_decay=auto["weight_decay"]),
                                clip_in_optimizer=True)

    def _ensure_compiled(self) -> None:
        """`fit` / `evaluate` on a model nobody compiled use compile()'s defaults (KerasHub's task
        models come compiled the same way)."""
        if not self.compiled:
            self.compile()

    def _schedule_fit(self, data, epochs: int, steps_per_epoch: int | None) -> None:
        """Before a fit on `data` (a batched dataset): with compile()'s "auto" optimizer, builds it
        for this fit's number of steps. ValueError when that number is unknown."""
        self._ensure_compiled()
        if self._auto_optimizer is None:
            return
        steps = int(data.cardinality())
        if steps < 0 and not steps_per_epoch:
            raise ValueError("fit with compile()'s default schedule needs a dataset of known length "
                             "(its number of steps sets the warmup and decay), or steps_per_epoch")
        steps = steps_per_epoch or steps
        super().compile(optimizer=self._make_optimizer(max(1, steps * epochs)), **self._compile_args)
