"""Pretraining from raw text: corpus -> NSP/MLM instances -> MLM + NSP training -> a model directory.

Everything that can be wrong with the inputs is checked before any training starts: the corpus
(empty, a single document, undecodable bytes), the vocab against the config, the sequence length
against max_position_embeddings. Re-running the same command resumes from OUT/checkpoints;
`model` (a pretrained model to continue from) only applies to a fresh run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os

import tensorflow as tf

from ..config import BertConfig, resolve_config
from ..data.corpus import check_corpus
from ..data.pretraining import PretrainingDataConfig
from ..data.records import METADATA_FILE, load_pretraining_dataset, read_metadata, write_pretraining_data
from ..hub import resolve_model_path
from .options import PretrainOptions
from ..pretrained import load_model, save_model
from ..tokenizer import load_tokenizer
from ..training.losses import PretrainingLoss
from ..training.optimizer import OptimizerConfig, precision_policy, resolve_training_precision
from ..training.trainer import TrainConfig, Trainer, select_strategy

log = logging.getLogger("bertkit")


def model_config(options: PretrainOptions, vocab_size: int) -> BertConfig:
    """The model config, with the vocab size taken from the vocab for presets; a config file must agree."""
    if options.model:
        config = resolve_config(options.model)
    elif os.path.exists(str(options.config)):
        config = resolve_config(options.config)
    else:
        config = resolve_config(options.config, vocab_size=vocab_size)
    if config.vocab_size != vocab_size:
        raise ValueError(f"the vocab has {vocab_size} entries but the config's vocab_size is {config.vocab_size}")
    if options.max_length > config.max_position_embeddings:
        raise ValueError(f"--max-length {options.max_length} exceeds the config's max_position_embeddings "
                         f"({config.max_position_embeddings})")
    return config


def prepare_data(corpus: list[str], tokenizer, data_dir: str, options: PretrainOptions) -> dict:
    """Writes the TFRecord shards once; a later (resumed) run reuses them when they match."""
    wanted = PretrainingDataConfig(
        max_length=options.max_length, max_predictions=options.max_predictions,
        dupe_factor=options.dupe_factor or (1 if options.dynamic_mask else 5),
        whole_word_mask=options.whole_word_mask, static_mask=not options.dynamic_mask,
        masked_lm_prob=options.masked_lm_prob, short_seq_prob=options.short_seq_prob)
    if os.path.exists(os.path.join(data_dir, METADATA_FILE)):
        meta = read_metadata(data_dir)
        same = (meta["max_length"] == options.max_length and meta["max_predictions"] == options.max_predictions
                and (meta["masking"] == "dynamic") == options.dynamic_mask
                and meta["vocab_size"] == tokenizer.vocab_size
                and meta.get("masked_lm_prob", 0.15) == options.masked_lm_prob
                and meta.get("short_seq_prob", 0.1) == options.short_seq_prob)
        if not same:
            raise ValueError(f"{data_dir} holds pretraining data made with other settings "
                             f"({meta['max_length']=}, {meta['masking']=}); use a new --out")
        log.info("reusing the pretraining data in %s", data_dir)
        return meta
    check_corpus(corpus, fmt=options.input_format, errors=options.errors)
    return write_pretraining_data(corpus, tokenizer, data_dir, wanted, num_shards=8, seed=options.seed,
                                  fmt=options.input_format, errors=options.errors, progress=options.progress)


def _resolve_speed_options(options: PretrainOptions) -> PretrainOptions:
    """Resolve precision "auto" and xla None for this machine. XLA compiles the whole step where it
    is fastest: on GPUs, and for fp32 on CPUs; XLA:CPU runs bf16 matmuls no faster than fp32 ones,
    while graph mode sends them to oneDNN, which uses AMX units (a BERT-base step on an Intel Xeon
    with AMX: 3.5 sequences/s in bf16 graph mode, 1.9 with fp32 XLA; docs/benchmarks.md)."""
    precision = resolve_training_precision(options.precision)
    xla = options.xla
    if xla is None:
        xla = bool(tf.config.list_physical_devices("GPU")) or precision == "fp32"
    if (precision, xla) != (options.precision, options.xla):
        log.info("precision %s, %s on this machine", precision, "XLA" if xla else "graph mode")
    return dataclasses.replace(options, precision=precision, xla=xla)


def pretrain(corpus: list[str] | None, vocab: str, out_dir: str, options: PretrainOptions | None = None,
             data_dir: str | None = None) -> dict:
    """Pretrains a BERT with MLM + NSP; writes the model (with heads) to out_dir. Returns the last record.

    The instances come from `corpus` (written once to OUT/data) or from `data_dir`, a directory made
    by `bertkit pretrain-data`."""
    options = options or PretrainOptions()
    if options.model:
        options = dataclasses.replace(options, model=resolve_model_path(options.model))
    strategy = select_strategy(options.strategy)  # first: multi-worker needs it before other ops
    tokenizer = load_tokenizer(vocab)
    config = model_config(options, tokenizer.vocab_size)
    if data_dir is None:
        if not corpus:
            raise ValueError("give --corpus FILES (or --data DIR from `bertkit pretrain-data`)")
        data_dir = os.path.join(out_dir, "data")
        meta = prepare_data(corpus, tokenizer, data_dir, options)
    else:
        meta = read_metadata(data_dir)
        if meta["max_length"] > config.max_position_embeddings:
            raise ValueError(f"{data_dir}: max_length {meta['max_length']} exceeds max_position_embeddings")
    if meta["vocab_size"] != config.vocab_size:
        raise ValueError(f"pretraining data vocab ({meta['vocab_size']}) != config vocab_size ({config.vocab_size})")

    options = _resolve_speed_options(options)
    step_batch = options.batch_size * options.accumulation_steps
    dataset = load_pretraining_dataset(data_dir, step_batch, seed=options.seed, repeat=True)
    warmup = options.warmup_steps if options.warmup_steps is not None else options.steps // 10

    def build():
        if options.model:
            model = load_model(options.model, task="pretraining")
            log.info("initialised from %s (a fresh run; resume from %s/checkpoints beats it)",
                     options.model, out_dir)
            return model
        from ..model.models import build_task_model

        return build_task_model("pretraining", config)

    with precision_policy(options.precision):  # the model's layers take it when they are built
        trainer = Trainer(
            build, PretrainingLoss(), out_dir,
            TrainConfig(steps=options.steps, accumulation_steps=options.accumulation_steps,
                        precision=options.precision, xla=options.xla, checkpoint_every=options.checkpoint_every,
                        keep_checkpoints=options.keep_checkpoints, log_every=max(1, min(50, options.steps // 20)),
                        seed=options.seed, progress=options.progress),
            OptimizerConfig(learning_rate=options.learning_rate, warmup_steps=warmup, total_steps=options.steps),
            strategy=strategy)
    history = trainer.fit(dataset)
    if trainer.resumed_from is not None:
        print(f"resumed from checkpoint at step {trainer.resumed_from}"
              + (" (--model ignored: resuming beats it)" if options.model else ""))
    elif options.model:
        print(f"initialised from {options.model}")
    if trainer.chief:
        save_model(trainer.model, out_dir, tokenizer=tokenizer,
                   extra_config={"bertkit_pretraining": {**dataclasses.asdict(options), "corpus": corpus}})
        plot_history(history, os.path.join(out_dir, "training.png"))
    return history[-1] if history else {}


def plot_history(history: list[dict], path: str) -> None:
    """Loss and MLM/NSP accuracy over steps, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in history if "loss" in r]
    if not rows:
        return
    steps = [r["step"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("loss", "mlm_loss", "nsp_loss"):
        left.plot(steps, [r[key] for r in rows], label=key)
    left.set_xlabel("step")
    left.set_title("loss")
    left.legend()
    for key in ("mlm_accuracy", "nsp_accuracy"):
        right.plot(steps, [r[key] for r in rows], label=key)
    right.set_xlabel("step")
    right.set_title("accuracy")
    right.set_ylim(0, 1)
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def summary_line(record: dict) -> str:
    keys = ("step", "loss", "mlm_accuracy", "nsp_accuracy", "seq_per_s")
    return json.dumps({k: round(record[k], 4) if isinstance(record.get(k), float) else record.get(k) for k in keys})
