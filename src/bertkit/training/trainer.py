"""The training loop shared by pretraining and fine-tuning.

Why a loop of our own rather than keras.Model.fit: resuming after a kill -9 must give the SAME
weights as an uninterrupted run, so a checkpoint holds the model, the optimizer, the step AND the
tf.data iterator position; fit's BackupAndRestore does not save the data position. The pieces are
still Keras and TensorFlow: a Keras AdamW optimizer, tf.distribute for several devices/workers,
tf.train.CheckpointManager, tf.summary (TensorBoard) and a tqdm progress bar.

One step = one global batch, split into `accumulation_steps` micro-batches whose gradients are
averaged before a single optimizer update (gradient accumulation).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import math
import os
import time
from typing import Callable, Protocol

import keras
import tensorflow as tf

from ..allocator import tune_malloc
from ..files import write_atomically
from .optimizer import OptimizerConfig, create_optimizer

log = logging.getLogger("bertkit")

class Loss(Protocol):
    """A task's loss, normalised over the GLOBAL batch of a step so that gradient accumulation and
    data parallelism give the same update as one big batch on one device.

    normalizers(labels) -> {name: local count} (e.g. masked tokens, examples); the trainer sums them
    over micro-batches and replicas. __call__(outputs, labels, norms) -> (loss, metrics), where
    metrics maps a name to (numerator, denominator) local sums.
    """

    def normalizers(self, labels: dict) -> dict: ...

    def __call__(self, outputs: dict, labels: dict, norms: dict) -> tuple[tf.Tensor, dict]: ...


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclasses.dataclass
class TrainConfig:
    steps: int
    accumulation_steps: int = 1
    precision: str = "fp32"
    xla: bool = True
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 10
    seed: int = 0
    deterministic: bool = False
    progress: bool = True


def select_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """'auto': MultiWorkerMirrored when TF_CONFIG names a cluster, Mirrored over several local
    GPUs, else the default (one device). 'mirrored' / 'multiworker' / 'none' force a choice."""
    if name == "auto":
        if os.environ.get("TF_CONFIG"):
            name = "multiworker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "none"
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        cpus = tf.config.list_logical_devices("CPU")
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy(devices=[d.name for d in (gpus or cpus)])
    if name == "none":
        return tf.distribute.get_strategy()
    raise ValueError(f"unknown strategy {name!r}; choose auto, mirrored, multiworker or none")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    return resolver.task_type in ("chief", None) or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict())


class Trainer:
    """Builds the model and optimizer under the strategy, then trains with checkpoints and resume.

    build_model() must create (and, for a starting model, load) the model; it runs inside the strategy
    scope. The dataset yields (features, labels) dicts with GLOBAL batch size, fixed shapes.
    """

    def __init__(self, build_model: Callable[[], keras.Model], loss_fn: Loss, out_dir: str,
                 config: TrainConfig, optimizer_config: OptimizerConfig,
                 strategy: tf.distribute.Strategy | None = None):
        self.config = config
        self.loss_fn = loss_fn
        self.out_dir = out_dir
        self.strategy = strategy or tf.distribute.get_strategy()
        self.chief = is_chief(self.strategy)
        if config.deterministic:
            tf.config.experimental.enable_op_determinism()
        keras.utils.set_random_seed(config.seed)
        with self.strategy.scope():
            self.model = build_model()
            self.optimizer = create_optimizer(optimizer_config, config.precision)
            self.optimizer.build(self.model.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        ckpt_dir = os.path.join(out_dir, "checkpoints")
        if not self.chief:  # other workers write to a scratch copy, as tf.distribute requires
            ckpt_dir = os.path.join(out_dir, "checkpoints", f"worker_tmp_{self.strategy.cluster_resolver.task_id}")
        self.checkpoint_dir = ckpt_dir
        self.clip_norm = optimizer_config.clip_norm
        # XLA: on one device the whole update (forward, backward, clipping, AdamW) is one compiled
        # program (on CPU the fastest form measured from mini upwards; for the 2-layer tiny config
        # plain graph mode, --no-xla, was as fast on 2 cores); across replicas only forward+backward
        # is compiled, since the cross-replica sums must stay outside XLA.
        single = self.strategy.num_replicas_in_sync == 1
        self._grads_fn = tf.function(self._gradients, jit_compile=True) if config.xla and not single \
            else self._gradients
        self._update_fn = tf.function(self._replica_step, jit_compile=True) if config.xla and single \
            else self._replica_step
        # Embedding tables' gradients stay row slices (tf.IndexedSlices) until the optimizer on one
        # replica in graph mode: the global norm and the clipping then touch the rows a batch used,
        # not the whole [V, H] table (XLA needs static shapes; cross-replica sums take dense ones).
        self._sparse_grads = single and not config.xla
        self.history: list[dict] = []

    # --- the compiled step --------------------------------------------------------------------
    def _gradients(self, features, labels, norms):
        """Forward + backward on one micro-batch (XLA-compiled when config.xla)."""
        model, optimizer = self.model, self.optimizer
        with tf.GradientTape() as tape:
            outputs = model(features, training=True)
            loss, metrics = self.loss_fn(outputs, labels, norms)
            scaled = optimizer.scale_loss(loss)  # identity unless a LossScaleOptimizer (fp16)
        grads = tape.gradient(scaled, model.trainable_variables)
        grads = [tf.zeros_like(v) if g is None
                 else g if isinstance(g, tf.IndexedSlices) and self._sparse_grads else tf.convert_to_tensor(g)
                 for g, v in zip(grads, model.trainable_variables)]
        return loss, grads, metrics

    def _replica_step(self, features, labels):
        """One optimizer update from this replica's share of the global batch. The loss of each
        micro-batch is normalised by counts over the whole global batch, so the summed gradients
        equal those of one big batch."""
        k = self.config.accumulation_steps
        ctx = tf.distribute.get_replica_context()
        norms = {n: ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(v, tf.float32))
                 for n, v in self.loss_fn.normalizers(labels).items()}
        total_loss, total_grads, total_metrics = 0.0, None, {}
        for i in range(k):
            micro_f = {n: _micro(t, i, k) for n, t in features.items()}
            micro_l = {n: _micro(t, i, k) for n, t in labels.items()}
            loss, grads, metrics = self._grads_fn(micro_f, micro_l, norms)
            total_loss += loss
            total_grads = grads if total_grads is None else [_add(a, b) for a, b in zip(total_grads, grads)]
            for name, (num, den) in metrics.items():
                pn, pd = total_metrics.get(name, (0.0, 0.0))
                total_metrics[name] = (pn + num, pd + den)
        norm = self._apply(total_grads)
        if norm is not None:  # logged as HF's Trainer logs it: the global norm before clipping
            total_metrics["grad_norm"] = (norm, tf.constant(1.0))
        return total_loss, total_metrics

    def _apply(self, grads):
        """Clipping and the optimizer update; returns the gradient's global norm before clipping
        (None when clip_norm is off)."""
        grads, norm = self._clip(grads, tf.distribute.get_replica_context())
        grads = [tf.convert_to_tensor(g) for g in grads]  # the fused AdamW kernel takes dense gradients
        self.optimizer.apply(grads, self.model.trainable_variables)
        return norm

    def _clip(self, grads, ctx):
        """Global-norm clipping of the GLOBAL gradient; returns (grads, norm before clipping).
        Keras clips before its cross-replica sum, i.e. each replica's partial gradient, which would
        make N devices train differently from one; so the sum is taken here, clipped, and divided
        by N (Keras sums it again)."""
        clip = self.clip_norm
        n = ctx.num_replicas_in_sync
        if n > 1:
            grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        norm = None
        if clip:
            # A row used twice in the batch has two slices: sum them, or the norm would count
            # g1^2 + g2^2 instead of (g1 + g2)^2 (torch's clip_grad_norm_ sees the summed row).
            grads = [_merge_rows(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]
            loss_scale = 1.0
            if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):  # fp16: still loss-scaled
                loss_scale = tf.cast(self.optimizer.dynamic_scale, tf.float32)
            grads, norm = tf.clip_by_global_norm(grads, clip * loss_scale)
            norm = norm / loss_scale
        return ([g / n for g in grads] if n > 1 else grads), norm

    def _build_step(self, iterator):
        # No AutoGraph: the step has no tensor-dependent Python control flow, and converting the
        # model, loss and optimizer code was a quarter of the step's one-time tracing cost.
        @tf.function(autograph=False)
        def step_fn():
            features, labels = next(iterator)
            loss, metrics = self.strategy.run(self._update_fn, args=(features, labels))
            reduce = lambda x: self.strategy.reduce(tf.distribute.ReduceOp.SUM, x, axis=None)  # noqa: E731
            self.step.assign_add(1)
            return reduce(loss), {n: (reduce(a), reduce(b)) for n, (a, b) in metrics.items()}
        return step_fn

    # --- the loop -----------------------------------------------------------------------------
    def fit(self, dataset: tf.data.Dataset, resume: bool = True,
            on_step: Callable[[int, "Trainer"], bool] | None = None,
            batch_size: int | None = None, checkpoint_iterator: bool = True) -> list[dict]:
        """Trains until config.steps; resumes from the last checkpoint in out_dir when present.

        on_step(step, trainer), called after each step (after that step's checkpoint), may evaluate
        and append records to trainer.history; returning True stops training (early stopping).
        A resumed run calls it once more for the step it restored, before training on: a kill
        between a checkpoint and the end of on_step (an evaluation, a model save) then redoes that
        work, so on_step must recognise a step it already finished (from trainer.history).
        batch_size: the global batch (for throughput), when the dataset's shape does not say it.
        checkpoint_iterator=False for datasets whose iterator cannot be saved (from_generator):
        the data position is then restored by replaying the deterministic dataset."""
        cfg = self.config
        state = dict(model=model_variables(self.model), optimizer=self.optimizer, step=self.step)
        # One device: the tf.data iterator is checkpointed, so resuming continues at the exact
        # element. Distributed iterators cannot be checkpointed; there the (deterministic) dataset
        # is replayed past the batches already consumed.
        single = self.strategy.num_replicas_in_sync == 1 and not _is_multi_worker(self.strategy)
        saved_iterator = single and checkpoint_iterator
        iterator = iter(dataset) if saved_iterator else None
        if saved_iterator:
            state["iterator"] = iterator
        ckpt = tf.train.Checkpoint(**state)
        manager = tf.train.CheckpointManager(ckpt, self.checkpoint_dir, max_to_keep=cfg.keep_checkpoints)
        self.resumed_from = None
        if resume and manager.latest_checkpoint:
            ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
            self.resumed_from = int(self.step.numpy())
            self._load_history()
            log.info("resumed from %s (step %d)", manager.latest_checkpoint, self.resumed_from)
        if any(r.get("stopped_early") for r in self.history):
            log.info("this run already stopped early at step %d", int(self.step.numpy()))
            return self.history
        if self.resumed_from is not None and on_step is not None and on_step(self.resumed_from, self):
            log.info("stopped early at step %d", self.resumed_from)
            self.history.append({"step": self.resumed_from, "stopped_early": True})
            self._save_history()
            return self.history
        if not saved_iterator:
            replay = dataset.skip(int(self.step.numpy()))
            iterator = iter(replay if single else self.strategy.experimental_distribute_dataset(replay))
        step_fn = self._build_step(iterator)
        try:
            self._loop(step_fn, manager, on_step, batch_size or _global_batch_size(dataset))
        finally:
            # Free the iterator (held by the compiled step and the checkpoint) now, while the
            # interpreter is alive: freed at exit, an iterator over a Python generator can deadlock.
            del step_fn, iterator, ckpt, manager, state
            gc.collect()
        self._save_history()
        return self.history

    def _loop(self, step_fn, manager, on_step, batch_size: int) -> None:
        cfg = self.config
        writer = tf.summary.create_file_writer(os.path.join(self.out_dir, "logs")) if self.chief else None
        bar = _progress(cfg, int(self.step.numpy()))
        sums, t0, seen = {}, time.time(), 0
        first = True
        while int(self.step.numpy()) < cfg.steps:
            loss, metrics = step_fn()
            if first:  # after the first step: the input pipeline has started (bertkit.allocator)
                tune_malloc()
                first = False
            step = int(self.step.numpy())
            loss = float(loss.numpy())
            if not math.isfinite(loss):
                raise TrainingDiverged(
                    f"loss became {loss} at step {step}; training stopped. The last good checkpoint is "
                    f"{manager.latest_checkpoint or '(none yet)'}: lower the learning rate or use fp32/bf16.")
            _accumulate(sums, loss, metrics)
            seen += batch_size
            if step % cfg.log_every == 0 or step == cfg.steps:
                record = _summarise(sums, step, seen / max(time.time() - t0, 1e-9), self.optimizer)
                self.history.append(record)
                self._save_history()  # cheap, and a crash between checkpoints keeps the curve
                _write_summary(writer, record)
                if bar is not None:
                    bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k not in ("step",)})
                sums, t0, seen = {}, time.time(), 0
            if bar is not None:
                bar.update(1)
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                manager.save(checkpoint_number=step)
                self._save_history()
            if on_step is not None and on_step(step, self):
                log.info("stopped early at step %d", step)
                manager.save(checkpoint_number=step)
                self.history.append({"step": step, "stopped_early": True})
                break
        if bar is not None:
            bar.close()

    def _history_path(self) -> str:
        return os.path.join(self.out_dir, "history.json")

    def _save_history(self) -> None:
        """Written to a side file, then renamed over history.json: a run killed mid-write leaves
        the previous complete file, never a truncated one that a resumed run could not read."""
        if self.chief:
            os.makedirs(self.out_dir, exist_ok=True)

            def write(path):
                with open(path, "w") as f:
                    json.dump(self.history, f, indent=1)

            write_atomically(self._history_path(), write)

    def _load_history(self) -> None:
        if os.path.exists(self._history_path()):
            with open(self._history_path()) as f:
                step = int(self.step.numpy())
                self.history = [r for r in json.load(f) if r["step"] <= step]


def _is_multi_worker(strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def model_variables(model: keras.Model) -> dict:
    """Every variable of the model (weights and dropout seed-generator states), keyed by position.

    Checkpointing them explicitly matters: TF's object tracking does not see the dropout layers'
    seed-generator states, which must be restored for a resumed run to equal an uninterrupted one. Keys are positions, not Keras paths, because paths
    carry process-wide counters (seed_generator_9) that differ between two runs in one process."""
    return {f"{i:05d}": v.value for i, v in enumerate(model.variables)}


def _add(a, b):
    """a + b for dense gradients or row slices (tf.IndexedSlices: the slices of both)."""
    if isinstance(a, tf.IndexedSlices):
        return tf.IndexedSlices(tf.concat([a.values, b.values], 0), tf.concat([a.indices, b.indices], 0),
                                a.dense_shape)
    return a + b


def _merge_rows(g: tf.IndexedSlices) -> tf.IndexedSlices:
    """The same gradient with one slice per row: repeated rows' slices summed."""
    rows, position = tf.unique(g.indices)
    return tf.IndexedSlices(tf.math.unsorted_segment_sum(g.values, position, tf.shape(rows)[0]), rows,
                            g.dense_shape)


def _micro(tensor, i: int, k: int):
    if k == 1:
        return tensor
    size = tf.shape(tensor)[0] // k
    return tensor[i * size:(i + 1) * size]


def _global_batch_size(dataset: tf.data.Dataset) -> int:
    spec = tf.nest.flatten(dataset.element_spec)[0]
    return int(spec.shape[0]) if spec.shape[0] is not None else 0


def _accumulate(sums: dict, loss: float, metrics: dict) -> None:
    sums["loss"] = sums.get("loss", (0.0, 0))
    sums["loss"] = (sums["loss"][0] + loss, sums["loss"][1] + 1)
    for name, (num, den) in metrics.items():
        pn, pd = sums.get(name, (0.0, 0.0))
        sums[name] = (pn + float(num.numpy()), pd + float(den.numpy()))


def _summarise(sums: dict, step: int, throughput: float, optimizer) -> dict:
    record = {"step": step}
    for name, (num, den) in sums.items():
        record[name] = num / den if den else float("nan")
    record["seq_per_s"] = throughput
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    record["learning_rate"] = float(keras.ops.convert_to_numpy(inner.learning_rate))
    return record


def _write_summary(writer, record: dict) -> None:
    if writer is None:
        return
    with writer.as_default():
        for name, value in record.items():
            if name != "step":
                tf.summary.scalar(name, value, step=record["step"])
    writer.flush()


def _progress(cfg: TrainConfig, start: int):
    if not cfg.progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=cfg.steps, initial=start, desc="train", unit="step", dynamic_ncols=True)
