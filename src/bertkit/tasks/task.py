"""The task description: everything about a fine-tuning task, declared once, in its own module.

A task (classify.py, ner.py, qa.py) says how to read its files, featurize examples, score outputs
and format predictions, and which model, head tensors, loss and export module it uses. Everything
else looks tasks up here (`get_task`, `TASKS`): the CLI's choices, the fine-tuning engine, the
checkpoint name map, saving and loading, export and serving, the quickstart report. Adding a task
is one new module that defines a `Task` subclass decorated with `@register`, plus its tests.

The shape follows Model Garden's `official/nlp/tasks` (a Task with build_model / build_losses /
metrics, registered once) and KerasHub's task classes (`backbone_cls` / `preprocessor_cls`).
Importing a task imports no TensorFlow: the builders import the model and loss modules when
called, so `bertkit predict` on the TFLite runtime starts without TensorFlow.
"""

from __future__ import annotations

import abc
import dataclasses
import itertools
from collections.abc import Callable
from typing import Any

TASKS: dict[str, type[Task]] = {}  # name -> Task subclass, in registration order


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: makes a Task subclass known by its `name` everywhere."""
    if cls.name in TASKS and TASKS[cls.name] is not cls:
        raise ValueError(f"two tasks are named {cls.name!r}: {TASKS[cls.name].__name__} and {cls.__name__}")
    TASKS[cls.name] = cls
    return cls


def get_task(name: str) -> type[Task]:
    """The Task subclass registered as `name`; ValueError listing the known names otherwise."""
    _load_builtin_tasks()
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    return TASKS[name]


def all_tasks() -> dict[str, type[Task]]:
    """The registry, with the built-in tasks loaded: {name: Task subclass} in registration order."""
    _load_builtin_tasks()
    return TASKS


def task_names() -> tuple[str, ...]:
    return tuple(all_tasks())


def chunks_of(items, size: int):
    """Lists of at most `size` consecutive items of an iterable, taken as they are needed."""
    items = iter(items)
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def join_rows(parts: list[dict]) -> dict:
    """One `evaluation_rows` dict from those of consecutive chunks: arrays concatenated on axis 0,
    lists chained."""
    import numpy as np

    return {key: np.concatenate([p[key] for p in parts]) if isinstance(parts[0][key], np.ndarray)
            else [x for p in parts for x in p[key]] for key in parts[0]}


@dataclasses.dataclass(frozen=True)
class TaskFlag:
    """A command-line flag of `bertkit finetune` and `evaluate` that sets the task option `option`
    (`--option-name`). A task lists the flags it reads in `Task.flags`; the CLI makes one flag per
    option from all registered tasks, its help naming the tasks that read it (bertkit.cli.options).

    kind: "value" (one value of `type`, or one of `choices`), "switch" (no value: True when given),
    "toggle" (--x / --no-x) or "repeat" (may be given several times: a list of values). The
    default shown in the help is each task's own, from `Task.defaults`.
    """

    option: str
    help: str
    type: Callable = str
    kind: str = "value"
    choices: tuple[str, ...] | None = None
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.option.replace("_", "-")


MAX_LENGTH_FLAG = TaskFlag("max_length", "max tokens per feature", int)


def _load_builtin_tasks() -> None:
    from .. import tasks  # noqa: F401  (its __init__ imports and so registers the built-in tasks)


class Task(abc.ABC):
    """One fine-tuning task. Class attributes describe it; an instance holds its options.

    Attributes:
      name: the task's name on the CLI, in config.json (`bertkit_task`) and in this registry.
      architecture: the Hugging Face class that loads the saved model (config.json `architectures`).
      hf_problem_type: HF's `problem_type` for tasks that share an architecture (regression).
      head_prefix: the HF name prefix of the head's tensors ("classifier." gives
        classifier.weight [num_outputs, H] and classifier.bias [num_outputs]); "" for a task
        without a head (embedding), whose weights are saved under HF BertModel's names.
      uses_pooler: the head reads the pooled [CLS] output; token-level heads do not (the pooler
        is then neither trained nor saved, as in HF).
      has_labels: the model's outputs are named by a label list (config.json id2label).
      label_keys: the keys of the featurized targets the loss reads.
      metric: the dev metric that picks the best epoch (higher is better).
      report_metrics: the metrics a summary shows, first the headline one.
      per_token: outputs have a sequence axis ([B, S] or [B, S, C]).
      group_by_length: training batches hold rows of similar length (less padding); False for
        losses that compare the rows of a batch with each other.
      defaults: task options saved with the model (max_length, ...), each default declared here.
      transient: options about one data file, not saved with the model.
      blank_prediction: what `predict` writes for a blank input line, so output row i stays line i.
      whole_file_scoring: `score` needs every example at once (QA: the official SQuAD evaluation
        and its no-answer threshold search take all questions), so `evaluate` runs the file in one
        piece; other tasks score from per-chunk `evaluation_rows`.
      serving_signatures: {input kind: export signature} for `bertkit serve` ("texts", "pairs",
        "qa", "choices"); empty for a task whose export is not served as a task (embedding: as an
        encoder).
      flags: the command-line flags (TaskFlag) that set this task's options.
    Files a model directory carries besides config.json and the weights: `model_options` reads them
    (before the model is built), `write_model_files` writes them.
    """

    name: str
    architecture: str
    hf_problem_type: str | None = None  # config.json `problem_type` that marks an HF model of this task
    head_prefix: str
    uses_pooler: bool = True
    has_labels: bool = True
    label_keys: tuple[str, ...]
    metric: str
    report_metrics: tuple[str, ...]
    per_token: bool
    group_by_length: bool = True
    defaults: dict[str, Any] = {}
    transient: tuple[str, ...] = ()
    blank_prediction: dict[str, Any] = {}
    serving_signatures: dict[str, str] = {}
    whole_file_scoring: bool = False
    flags: tuple[TaskFlag, ...] = (MAX_LENGTH_FLAG,)

    def __init__(self, **options):
        given = {k: v for k, v in options.items() if v is not None}
        self.options = {**self.defaults, **given}
        self.given = set(given)  # options the user (or the saved model) set, not defaults

    def fit_lengths(self, config, where: str = "") -> None:
        """Checks the length options against the model before any work: a given `max_length` above
        the model's max_position_embeddings is a ValueError naming both numbers; a default one is
        lowered to it (a model with 64 positions gets 64-token windows, not an error)."""
        if "max_length" in self.options:
            given = self.options["max_length"] if "max_length" in self.given else None
            self.options["max_length"] = config.fit_length(given, self.options["max_length"], "--max-length", where)

    # === Model, loss, export (import TensorFlow when called) ===

    @classmethod
    @abc.abstractmethod
    def model_class(cls) -> type:
        """The Keras model class of this task (bertkit.model.models)."""

    @classmethod
    def build_model(cls, config, num_labels: int = 2, encoder=None, **model_options):
        """The task model with its variables created: encoder (given, else new) + a fresh head;
        `model_options` (from `model_options`) go to the model class. Subclasses that build
        differently call `cls.mark(model)` on the result."""
        model = cls.model_class()(config, num_labels=num_labels, encoder=encoder, **model_options)
        model.build()
        return cls.mark(model)

    @classmethod
    def mark(cls, model):
        """Records the task on the model, for tasks that share a model class (saving reads it)."""
        object.__setattr__(model, "bertkit_task", cls.name)  # a plain attribute, not a tracked one
        return model

    @classmethod
    def num_outputs(cls, labels: list[str] | None) -> int:
        """Width of the head: one logit per label (2 when there is no label list)."""
        return len(labels) if labels else 2

    @classmethod
    def hf_config(cls, labels: list[str] | None) -> dict:
        """Fields written to config.json so that the HF class loads the model as this task:
        id2label/label2id for a labelled task (their count is HF's num_labels)."""
        if not (cls.has_labels and labels):
            return {}
        return {"id2label": {str(i): label for i, label in enumerate(labels)},
                "label2id": {label: i for i, label in enumerate(labels)}}

    @classmethod
    def model_options(cls, path: str) -> dict:
        """Model-class arguments a model directory gives in files besides config.json and the
        weights (the embedding task's sentence-transformers pooling and Dense modules), read
        before the model is built. Default: none."""
        return {}

    @classmethod
    def write_model_files(cls, model, out_dir: str, raw_config: dict) -> None:
        """Files a saved model carries besides config.json (`raw_config`), the weights and the
        tokenizer (the embedding task's sentence-transformers files). Default: none."""

    @classmethod
    @abc.abstractmethod
    def build_loss(cls):
        """The loss object the Trainer calls (bertkit.training.losses)."""

    @abc.abstractmethod
    def export_module(self, model, tokenizer, labels: list[str] | None, pair: bool | None):
        """The tf.Module that `bertkit export` saves (raw strings in, predictions out), built with
        this instance's options."""

    # === Data and predictions (numpy and Python only) ===

    @abc.abstractmethod
    def read(self, path: str, labels: list[str] | None = None, train: bool = False) -> list:
        """Examples of a data file; errors name the file and line."""

    def read_chunks(self, path: str, labels: list[str] | None, size: int):
        """The examples of a data file (as `read` gives them) in lists of at most `size`. Default:
        the file read whole, then cut; the classify family, NER and multiple choice read as they go
        (bounded memory)."""
        return chunks_of(self.read(path, labels=labels), size)

    @abc.abstractmethod
    def labels_from(self, examples: list) -> list[str] | None:
        """The label list of a training set (None for a task without labels)."""

    @abc.abstractmethod
    def featurize(self, examples: list, tokenizer, labels: list[str] | None) -> dict:
        """Model inputs (int32 [N, L]) plus, for labelled examples, the targets under `label_keys`."""

    def score(self, examples: list, features: dict, outputs: dict, labels) -> dict:
        """The task's metrics of the model outputs (numpy, in feature order) against the examples.
        Default: `score_rows` of `evaluation_rows`; a task with `whole_file_scoring` overrides this
        instead."""
        return self.score_rows(self.evaluation_rows(examples, features, outputs, labels), labels)

    def evaluation_rows(self, examples: list, features: dict, outputs: dict, labels) -> dict:
        """What scoring keeps of a chunk of examples: {name: one entry per example} (numpy arrays
        on axis 0, or lists), e.g. the gold and the predicted label ids. `evaluate` runs a file in
        chunks, joins their rows (`join_rows`) and scores once, so memory does not grow with the
        features of the whole file."""
        raise NotImplementedError(f"{self.name} scores whole files (whole_file_scoring)")

    def score_rows(self, rows: dict, labels) -> dict:
        """The metrics of the joined `evaluation_rows` of a whole file."""
        raise NotImplementedError(f"{self.name} scores whole files (whole_file_scoring)")

    def metric_names(self, labels: list[str] | None) -> tuple[str, ...]:
        """The dev metrics that may pick the best epoch (`--metric`; higher is better)."""
        return tuple(dict.fromkeys((self.metric, *self.report_metrics)))

    def write_report(self, report_dir: str, rows: dict | None, labels, metrics: dict) -> list[str]:
        """Writes what `bertkit evaluate --report-dir` keeps (metrics.json here; tasks add more from
        the file's `evaluation_rows`, e.g. classify's confusion matrix); returns the paths written."""
        import json
        import os

        os.makedirs(report_dir, exist_ok=True)
        path = os.path.join(report_dir, "metrics.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(metrics, f, indent=2, ensure_ascii=False)
            f.write("\n")
        return [path]

    def examples_from_items(self, kind: str, items: list) -> list:
        """Examples of the items of one served request batch, of an input kind in
        `serving_signatures` ("texts": strings; "pairs" / "qa": 2-tuples; "choices": (question,
        choices)). Default: texts read as `predict` reads lines."""
        if kind != "texts":
            raise ValueError(f"{self.name} takes texts, not {kind}")
        return self.examples_from_lines([str(t) for t in items])

    def format_served_predictions(self, examples: list, features: dict, outputs: dict, labels) -> list[dict]:
        """What `bertkit serve` answers for a model directory it runs through this engine: the
        records an export of the task gives (`format_served`). Default: `format_predictions`'."""
        return self.format_predictions(examples, features, outputs, labels)

    def calibrate(self, examples: list, features: dict, outputs: dict, labels) -> dict:
        """Options tuned on the dev outputs of the best model after training (e.g. decision
        thresholds); finetune saves them with the model. Default: none."""
        return {}

    @abc.abstractmethod
    def format_predictions(self, examples: list, features: dict, outputs: dict, labels) -> list[dict]:
        """One JSON-ready prediction per example."""

    @classmethod
    def format_served(cls, outputs: dict, n: int, labels: list[str] | None) -> list[dict]:
        """The `predict`-shaped result of each of the `n` items of one call of an export signature
        (`outputs`: numpy arrays by output name), for `bertkit serve`."""
        raise NotImplementedError(f"{cls.name} exports are not served as a task")

    @abc.abstractmethod
    def examples_from_lines(self, lines: list[str], sources: list[str] | None = None) -> list:
        """Examples from `predict` input lines (none blank); `sources` ("file:line") name them in errors."""
