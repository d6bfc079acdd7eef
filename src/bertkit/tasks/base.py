"""The fine-tuning engine every task shares, and its options.

A task (task.py; classify.py, ner.py, qa.py) supplies how to read its files, featurize, score and
format predictions; this module trains its model with the common Trainer, evaluates on the dev set
after every epoch (inference.run_model) and keeps the best model (early stopping on the dev metric).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import warnings

import tensorflow as tf

from ..data.common import make_dataset
from ..hub import resolve_model_path
from ..pretrained import load_model, override_config, read_config, save_model
from ..tokenizer import load_tokenizer
from ..training.optimizer import OptimizerConfig, precision_policy, resolve_training_precision
from ..training.trainer import TrainConfig, Trainer
from .inference import run_model
from .options import FinetuneOptions
from .task import Task

log = logging.getLogger("bertkit")


def targets_as_dict(dataset: tf.data.Dataset, label_keys) -> tf.data.Dataset:
    """make_dataset yields a bare array for one label key; the losses take a dict."""
    if len(label_keys) == 1:
        return dataset.map(lambda x, y: (x, {label_keys[0]: y}))
    return dataset


def freeze(model, options: FinetuneOptions) -> None:
    encoder = model.encoder
    if options.freeze_encoder:
        encoder.trainable = False
        return
    if options.freeze_layers:
        if options.freeze_layers > len(encoder.blocks):
            raise ValueError(f"--freeze-layers {options.freeze_layers} exceeds the model's "
                             f"{len(encoder.blocks)} layers")
        encoder.embeddings.trainable = False
        for block in encoder.blocks[: options.freeze_layers]:
            block.trainable = False


def finetune(task: Task, model: str | None = None, train_file: str | None = None, out_dir: str | None = None,
             dev_file: str | None = None, options: FinetuneOptions | None = None, *, init: str | None = None) -> dict:
    """Fine-tunes a checkpoint on a data file: the engine behind `bertkit finetune TASK`.

    Args:
      task: a task instance with its options, e.g. `TASKS["classify"](max_length=64)`.
      model: the checkpoint to start from (bertkit / HF / Google directory, or a Hub name), as
        the CLI's --model; `init=` is its former name (still works for one release, and warns).
      train_file / dev_file: data files in the task's format (docs/tasks.md); with a dev file the
        model is scored after every epoch and the best epoch is what is kept (early stopping with
        `options.patience`).
      out_dir: where the model (HF layout), `history.json` and checkpoints go; running the same
        call again after an interruption resumes from the last epoch's checkpoint.
      options: hyper-parameters (FinetuneOptions: epochs, batch size, learning rate, ...).

    Returns:
      The dev metrics of the saved model ({} without a dev file), e.g. {"accuracy", "macro_f1"}.

    Raises:
      ValueError naming the file and line for bad data, FileNotFoundError / HubError for a missing
      model, CheckpointError for a checkpoint that does not fit.

    Example:
      >>> from bertkit.tasks import TASKS, FinetuneOptions, finetune
      >>> finetune(TASKS["classify"](), "google-bert/bert-base-uncased", "train.tsv", "out",
      ...          dev_file="dev.tsv", options=FinetuneOptions(epochs=3))  # doctest: +SKIP
    """
    if init is not None:
        warnings.warn("finetune(init=...) is deprecated; use model=", DeprecationWarning, stacklevel=2)
        model = init
    if model is None or train_file is None or out_dir is None:
        raise TypeError("finetune() needs a model, a train_file and an out_dir")
    options = options or FinetuneOptions()
    init = resolve_model_path(model)  # the start checkpoint's directory
    overrides = {"hidden_dropout_prob": options.dropout, "attention_probs_dropout_prob": options.attention_dropout}
    config = override_config(read_config(init)[0], overrides)  # bad rates fail now, not after featurizing
    task.fit_lengths(config, init)
    tokenizer = load_tokenizer(init)
    train_examples = task.read(train_file, train=True)
    labels = task.labels_from(train_examples)
    dev_examples = task.read(dev_file, labels=labels) if dev_file else None
    metric = _selection_metric(task, options, labels, dev_examples is not None)
    train_features = task.featurize(train_examples, tokenizer, labels)
    dev_features = task.featurize(dev_examples, tokenizer, labels) if dev_examples else None
    n = len(train_features["input_ids"])
    step_batch = options.batch_size * options.accumulation_steps
    steps_per_epoch = max(1, n // step_batch)
    steps = options.max_steps or max(1, math.ceil(options.epochs * steps_per_epoch))
    log.info("%s: %d training features, %d steps (%d per epoch)", task.name, n, steps, steps_per_epoch)

    precision = resolve_training_precision(options.precision)
    if precision != options.precision:
        log.info("precision %s: %s on this machine", options.precision, precision)
    options = dataclasses.replace(options, precision=precision)
    if options.xla is None:
        options = dataclasses.replace(options, xla=bool(tf.config.list_physical_devices("GPU")))
    dataset = make_dataset(train_features, step_batch, label_keys=task.label_keys, shuffle=True,
                           seed=options.seed, bucket=True, drop_remainder=True, sequence_labels=task.per_token,
                           group_by_length=task.group_by_length,
                           pad_multiple=options.pad_multiple or (32 if options.xla else 1))
    dataset = targets_as_dict(dataset.repeat(), task.label_keys)

    def build():
        if options.random_init:
            model = task.build_model(config, num_labels=task.num_outputs(labels))
            model.labels = labels
        else:
            model = load_model(init, task=task.name, labels=labels, num_labels=task.num_outputs(labels),
                               config_overrides=overrides)
        freeze(model, options)
        return model

    # The trained model's layers take the precision; the final scores and tuning are those of the
    # best epoch in fp32, as `bertkit evaluate` scores the saved model (see the end).
    with precision_policy(precision):
        trainer = Trainer(
            build, task.build_loss(), out_dir,
            TrainConfig(steps=steps, accumulation_steps=options.accumulation_steps, precision=precision,
                        xla=options.xla, checkpoint_every=steps_per_epoch,
                        log_every=min(50, steps_per_epoch),
                        seed=options.seed, progress=options.progress),
            OptimizerConfig(learning_rate=options.learning_rate, warmup_steps=int(options.warmup_ratio * steps),
                            total_steps=steps, weight_decay=options.weight_decay))
    extra = {"bertkit_task_options": saved_options(task)}
    timing = {"since": time.perf_counter(), "first": None}
    # The dev outputs of the best epoch, kept when they are what the saved model gives in fp32
    # (an fp32 run), so the final scores need no second pass over the dev set.
    best_outputs = {}

    def on_step(step, trainer):
        if timing["first"] is None:  # the step before the first one this process trains
            timing["first"] = step if step == trainer.resumed_from else step - 1
        if step % steps_per_epoch and step != steps:
            return False
        if any(r["step"] == step and r.get("epoch_end") for r in trainer.history):
            return False  # resumed after this epoch's evaluation and save were done
        record = {"step": step, "epoch_end": True}
        if step > timing["first"]:  # not the redo of an epoch end that a kill interrupted
            # Training time of this epoch (tracing/compilation included, the dev evaluation excluded).
            seconds = time.perf_counter() - timing["since"]
            record["epoch_seconds"] = round(seconds * steps_per_epoch / (step - timing["first"]), 2)
        timing["first"] = step
        if dev_features:
            outputs = run_model(trainer.model, dev_features, task.per_token)
            metrics = task.score(dev_examples, dev_features, outputs, labels)
            record.update({f"eval_{k}": v for k, v in metrics.items()})
            log.info("step %d: %s s per epoch of training; dev %s", step, record.get("epoch_seconds", "?"), metrics)
        # In memory only until the Trainer next writes history.json: a kill before then, even
        # after the save below, makes the resumed run redo this epoch end.
        trainer.history.append(record)
        if dev_features and f"eval_{metric}" not in record:
            raise ValueError(f"--metric {metric}: the dev metrics of {task.name} here are {sorted(metrics)}")
        epochs_without_gain = _epochs_since_best(trainer.history, metric)
        if dev_features and epochs_without_gain == 0:  # this epoch is the best so far
            save_model(trainer.model, out_dir, tokenizer=tokenizer, labels=labels, extra_config=extra)
            best_outputs.clear()
            if precision == "fp32":
                best_outputs["dev"] = outputs
        timing["since"] = time.perf_counter()
        return options.patience is not None and epochs_without_gain >= options.patience

    trainer.fit(dataset, on_step=on_step, batch_size=step_batch, checkpoint_iterator=False)
    if not dev_features:
        save_model(trainer.model, out_dir, tokenizer=tokenizer, labels=labels, extra_config=extra)
        return {}
    # Final scores and tuning come from the saved best model in fp32, as `bertkit evaluate` scores
    # it: an fp32 run kept that epoch's outputs; a bf16 run (or a resumed one whose best epoch
    # was evaluated by an earlier process) scores the reloaded model once more.
    if "dev" in best_outputs:
        best, outputs = None, best_outputs["dev"]
    else:
        best = load_model(out_dir)
        outputs = run_model(best, dev_features, task.per_token)
    tuned = task.calibrate(dev_examples, dev_features, outputs, labels)
    if tuned:  # e.g. decision thresholds: saved with the best model, used by evaluate/predict/export
        task.options.update(tuned)
        log.info("tuned on the dev set: %s", tuned)
        save_model(best or load_model(out_dir), out_dir, tokenizer=tokenizer, labels=labels,
                   extra_config={"bertkit_task_options": saved_options(task)})
    return task.score(dev_examples, dev_features, outputs, labels)


def saved_options(task: Task) -> dict:
    """The task options config.json keeps (`bertkit_task_options`): all but the data-file ones."""
    return {k: v for k, v in task.options.items() if k not in task.transient}


def _selection_metric(task: Task, options: FinetuneOptions, labels, has_dev: bool) -> str:
    """The dev metric that keeps the best epoch: options.metric, checked against the task's, else
    the task's own."""
    if options.metric is None:
        return task.metric
    if not has_dev:
        raise ValueError(f"--metric {options.metric} needs a dev file (--dev) to score")
    allowed = task.metric_names(labels)
    if options.metric not in allowed:
        raise ValueError(f"--metric {options.metric}: {task.name} picks the best epoch by one of {', '.join(allowed)}")
    return options.metric


def _epochs_since_best(history: list[dict], metric: str) -> int:
    """Dev evaluations since the best one (0: the latest is the best), from the epoch records in
    history, so a resumed run keeps the best model and the early-stopping count of the killed one."""
    best, since = None, 0
    for record in history:
        value = record.get(f"eval_{metric}")
        if value is None:
            continue
        if best is None or value > best:
            best, since = value, 0
        else:
            since += 1
    return since
