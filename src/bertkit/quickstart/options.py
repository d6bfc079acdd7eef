"""What a quickstart run does: its options (data, model, pretraining, each task's fine-tuning)
and the smoke-run variant. TensorFlow-free, so the CLI can build them before importing it."""

from __future__ import annotations

import dataclasses
import warnings

from .world import WorldConfig

TASK_NAMES = ("classify", "ner", "qa", "multilabel", "regression")
REAL_DATA_TASKS = ("classify", "ner", "qa")  # the tasks `--corpus` runs take files for (--classify-train, ...)
# The quality bars of the synthetic world (issue 7): checked and shown in the report.
TARGETS = {"classify": ("accuracy", 0.95), "ner": ("f1", 0.95), "qa": ("f1", 90.0), "multilabel": ("micro_f1", 0.9),
           "regression": ("pearson", 0.9)}


@dataclasses.dataclass
class TaskSettings:
    """Fine-tuning hyper-parameters of one task (`bertkit finetune` flags)."""

    epochs: float = 3.0
    batch_size: int = 32
    learning_rate: float = 5e-4
    max_length: int = 96
    doc_stride: int | None = None  # qa
    max_query_length: int | None = None  # qa
    extra: dict = dataclasses.field(default_factory=dict)  # other task options (the files' columns)


# The tasks the world writes beside classify / NER / QA: their files' layout and a schedule. Six
# epochs (228 steps of 32): with three, multi-label micro-F1 depended on the pretraining's dropout
# draw (0.96 with one, 0.87 with another); with six it was 1.000 from both draws and three
# fine-tuning seeds, and regression's Pearson 0.996-0.998 (from 0.988), for ~10 s more each.
SMALL_TASKS = {
    "multilabel": TaskSettings(epochs=6, learning_rate=1e-3, max_length=96, extra={"header": False}),
    "regression": TaskSettings(epochs=6, learning_rate=1e-3, max_length=96, extra={"header": False}),
}


@dataclasses.dataclass
class QuickstartOptions:
    out: str = "quickstart_out"
    # Real data instead of the synthetic world: the corpus switches the world off; each task
    # runs when its train file is given (its dev file gives the metrics).
    corpus: list[str] | None = None
    corpus_dev: list[str] | None = None  # held-out text for the MLM / NSP evaluation
    classify_train: str | None = None
    classify_dev: str | None = None
    ner_train: str | None = None
    ner_dev: str | None = None
    qa_train: str | None = None
    qa_dev: str | None = None
    vocab: str | None = None  # an existing vocab.txt or directory: no vocab training
    vocab_size: int = 2000  # the world has ~400 distinct words: its vocab stops at ~1,100 (whole words)
    world: WorldConfig = dataclasses.field(default_factory=WorldConfig)
    # model and pretraining
    config: str = "tiny"
    max_length: int = 96  # a story is at most ~75 word pieces
    pretrain_steps: int = 800
    pretrain_batch_size: int = 64
    pretrain_learning_rate: float = 3e-3
    warmup_steps: int | None = None
    seed: int = 12345
    # No XLA: on 2 CPU cores the tiny model's steps run faster without it (and fine-tuning's
    # bucketed batch widths would each compile a program).
    xla: bool = False
    tasks: dict[str, TaskSettings] = dataclasses.field(default_factory=lambda: {
        "classify": TaskSettings(epochs=3, learning_rate=1e-3, max_length=96),
        "ner": TaskSettings(epochs=1, learning_rate=1e-3, max_length=64),
        "qa": TaskSettings(epochs=3, learning_rate=1e-3, max_length=96, doc_stride=48, max_query_length=24),
        **SMALL_TASKS,
    })
    export: bool = True
    progress: bool | None = None  # None: bars when stderr is a terminal
    fast: bool = False  # set by `fast_options`: a seconds-long smoke run
    # The name before `max_length` (the CLI's --max-length): still works for one release, with a
    # DeprecationWarning.
    seq_len: dataclasses.InitVar[int | None] = None

    def __post_init__(self, seq_len):
        if seq_len is not None:
            warnings.warn("QuickstartOptions(seq_len=...) is deprecated; use max_length=", DeprecationWarning,
                          stacklevel=3)
            self.max_length = seq_len

    @property
    def synthetic(self) -> bool:
        return not self.corpus


def fast_options(**overrides) -> QuickstartOptions:
    """A smoke run (tests, `bertkit quickstart --fast`): a small world, a 1-layer model, no XLA, a
    few steps. Checks that every step runs and writes its outputs; its metrics mean nothing."""
    options = QuickstartOptions(
        world=WorldConfig(pretrain_stories=150, train_stories=64, dev_stories=16, questions_per_story=2),
        vocab_size=400, config="micro", max_length=96, pretrain_steps=8, pretrain_batch_size=16,
        xla=False, fast=True,
        tasks={"classify": TaskSettings(epochs=1, batch_size=16, learning_rate=1e-3),
               "ner": TaskSettings(epochs=1, batch_size=16, learning_rate=1e-3, max_length=64),
               "qa": TaskSettings(epochs=1, batch_size=16, learning_rate=1e-3, max_length=96, doc_stride=48,
                                  max_query_length=24),
               **{name: dataclasses.replace(s, epochs=1, batch_size=16) for name, s in SMALL_TASKS.items()}})
    return dataclasses.replace(options, **overrides)


# A 1-layer config for the smoke run (--fast): not a preset, written next to the vocab.
MICRO_CONFIG = {"hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 128,
                "max_position_embeddings": 96}
