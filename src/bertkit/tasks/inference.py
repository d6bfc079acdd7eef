"""Running a fine-tuned model over features: the path `predict`, `evaluate` and the dev pass of
`finetune` share.

Speed comes from four choices, measured on 2-core CPUs (docs/benchmarks.md):
  * rows are sorted by length before batching, so a batch is cut to the width of rows that are
    about as long as each other: an AG News file averages 45 pieces in a 128-piece window, and in
    file order nearly every batch of 64 holds one row near 128;
  * one traced graph with a `[None, None]` input signature serves every batch shape (graph mode
    takes a new shape at no extra cost, where XLA compiles each shape anew, 1-3 s on a CPU);
  * batches go to the graph as numpy slices, with no tf.data pipeline or Python per row;
  * a saved model runs on TFLite's XNNPACK kernels on CPUs (runtime "tflite", lite.py), 1.3-1.4x
    faster than TensorFlow's; training's dev pass keeps the Keras model, whose weights change.
Outputs are put back in feature order, so row i of the result is feature i.

TensorFlow is imported only when the model runs on it or must be converted: a cached TFLite
model starts without it (TensorFlow's import alone takes 7 s on a 2-core CPU).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from ..allocator import tune_malloc
from ..data.common import INFERENCE_BATCH_SIZE, MODEL_INPUT_KEYS, row_lengths
from ..pretrained import read_config, saved_labels
from ..tf_start import quiet_tensorflow_start
from ..tokenizer import load_tokenizer

log = logging.getLogger("bertkit")
RUNTIMES = ("auto", "tensorflow", "tflite")
Forward = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]

# Logit given to the positions beyond a batch's width in per-token outputs ([N, L] or [N, L, C]):
# far below any real logit, so argmax and softmax ignore them.
PAD_LOGIT = -1e4
PREDICT_CHUNK_LINES = 4096  # input lines held in memory at once by `iter_predictions`
EVALUATE_CHUNK_EXAMPLES = 4096  # examples featurized and run at once by `evaluate`


def run_model(model: Any, features: dict, per_token: bool,
              batch_size: int = INFERENCE_BATCH_SIZE, pad_multiple: int = 8) -> dict[str, np.ndarray]:
    """Forward pass over all feature rows; returns the model's outputs as numpy arrays in feature order.

    Args:
      model: a task model (run as one traced graph, `training=False`), or a forward function
        {input name: int32 [B, S]} -> {output name: float32 [B, ...]} such as `LoadedModel.forward`.
      features: int32 arrays `input_ids`, `token_type_ids`, `attention_mask` [N, L] (or
        [N, choices, L] for multiple choice; other keys ignored).
      per_token: the outputs have a sequence axis ([B, w] or [B, w, C]); they are returned padded
        to [N, L, ...] with PAD_LOGIT beyond each batch's width.
      batch_size: rows per forward call.
      pad_multiple: a batch is cut to its longest row rounded up to this many positions.
    Returns: {output name: float32 [N, ...]}.
    """
    tune_malloc()  # a training pipeline in this process may have shrunk malloc's thresholds
    mask = np.asarray(features["attention_mask"])
    n, length = len(mask), mask.shape[-1]
    lengths = row_lengths(mask)
    order = np.argsort(-lengths, kind="stable")  # longest first: the largest buffers are made once
    forward = graph_forward(model) if hasattr(model, "trainable_variables") else model  # Keras model or not
    results: dict[str, np.ndarray] = {}
    for start in range(0, n, batch_size):
        rows = order[start: start + batch_size]
        width = min(length, -(-max(int(lengths[rows].max()), 1) // pad_multiple) * pad_multiple)
        outputs = forward({k: np.asarray(features[k])[rows, ..., :width] for k in MODEL_INPUT_KEYS})
        for name, value in outputs.items():
            if name not in results:
                shape = (n, length, *value.shape[2:]) if per_token else (n, *value.shape[1:])
                results[name] = np.full(shape, PAD_LOGIT if per_token else 0, dtype=value.dtype)
            if per_token:
                results[name][rows, :width] = value
            else:
                results[name][rows] = value
    return results


def graph_forward(model) -> Forward:
    """The Keras model as one traced graph taking any [B, S], kept on the model: evaluating after
    every epoch (and every predict call) then reuses it instead of tracing the model again."""
    forward = getattr(model, "_bertkit_inference", None)
    if forward is None:
        import tensorflow as tf

        spec = {k: tf.TensorSpec([None] * input_rank(model), tf.int32) for k in MODEL_INPUT_KEYS}
        graph = tf.function(lambda x: model(x, training=False), input_signature=[spec])

        def forward(inputs):
            return {name: value.numpy() for name, value in graph(inputs).items()}

        object.__setattr__(model, "_bertkit_inference", forward)  # a plain attribute, not a tracked one
    return forward


def input_rank(model) -> int:
    """Rank of the model's inputs: 2 ([B, S]), or 3 for multiple choice ([B, choices, S])."""
    return getattr(model, "input_rank", 2)


@dataclasses.dataclass
class LoadedModel:
    """A fine-tuned model directory, ready for inference.

    `forward` runs the model ({input name: int32 [B, S]} -> {output name: float32 [B, ...]}) on
    `runtime` in `precision` ("fp32", or "int8" weights on TFLite: never "auto", which loading
    resolves); `model` is the Keras model, or
    None when the TFLite runtime found the converted model in its cache and never needed it.
    """

    task: Any
    tokenizer: Any
    labels: list[str] | None
    config: Any
    forward: Forward
    runtime: str
    model: Any = None
    precision: str = "fp32"

    def outputs(self, examples: list, batch_size: int = INFERENCE_BATCH_SIZE) -> tuple[dict, dict]:
        """(features, outputs) of unlabelled examples: featurized by the task, run on `forward`."""
        features = self.task.featurize(examples, self.tokenizer, None)
        return features, run_model(self.forward, features, self.task.per_token, batch_size=batch_size)


def pick_runtime(runtime: str, precision: str = "auto") -> tuple[str, str]:
    """The (runtime, precision) a saved model runs on.

    runtime "auto" -> "tensorflow" where TensorFlow sees a GPU, else "tflite"; without an NVIDIA
    driver on the machine (and TensorFlow not loaded yet) the answer is "tflite" without importing
    it. precision "auto" -> bertkit.cpu.auto_precision() on TFLite ("int8" where the CPU has int8
    dot-product units, else "fp32"), "fp32" on TensorFlow. "int8" (bertkit.export.tflite) runs on
    TFLite only: runtime "auto" then means "tflite".

    Raises ValueError for an unknown runtime or precision, or int8 with runtime "tensorflow"."""
    from ..cpu import auto_precision
    from .lite import check_precision

    if runtime not in RUNTIMES:
        raise ValueError(f"--runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if precision == "auto":
        chosen = _float_runtime(runtime)
        return chosen, auto_precision() if chosen == "tflite" else "fp32"
    if check_precision(precision) != "fp32":
        if runtime == "tensorflow":
            raise ValueError(f"--precision {precision} runs on the TFLite runtime, not --runtime tensorflow")
        return "tflite", precision
    return _float_runtime(runtime), "fp32"


def _float_runtime(runtime: str) -> str:
    if runtime != "auto":
        return runtime
    if "tensorflow" not in sys.modules and not os.path.exists("/proc/driver/nvidia/version"):
        return "tflite"
    quiet_tensorflow_start()
    import tensorflow as tf

    return "tensorflow" if tf.config.list_physical_devices("GPU") else "tflite"


def load_for_inference(model_dir: str, tasks: dict, runtime: str = "auto", precision: str = "auto") -> LoadedModel:
    """Loads a fine-tuned model directory for `predict`/`evaluate` on `runtime` (RUNTIMES).

    `precision`: "fp32"; "int8", dynamic-range int8 weights (bertkit.export.tflite) on the TFLite
    runtime only (runtime "auto" then means TFLite, also where TensorFlow sees a GPU); or "auto",
    the CPU's choice (`pick_runtime`, bertkit.cpu). `LoadedModel.precision` says what was chosen.
    Raises ValueError for a directory that `bertkit finetune` did not write, or as `pick_runtime`.
    With runtime and precision "auto", a model TFLite cannot convert runs on TensorFlow in fp32
    (with a warning); with runtime "tflite" or precision "int8" it is an error.
    """
    asked = precision
    chosen, precision = pick_runtime(runtime, precision)
    log.info("%s: runtime %s, precision %s%s", model_dir, chosen, precision,
             " (chosen for this CPU: --precision auto)" if asked == "auto" else "")
    config, raw = read_config(model_dir)
    name = raw.get("bertkit_task")
    if name not in tasks:
        raise ValueError(f"{model_dir}: not a fine-tuned bertkit model (config.json has no bertkit_task); "
                         f"fine-tune one with `bertkit finetune`")
    task = tasks[name](**raw.get("bertkit_task_options", {}))
    task.fit_lengths(config, model_dir)
    tokenizer = load_tokenizer(model_dir)
    keras_model = []  # loaded at most once, only if needed

    def get_model():
        if not keras_model:
            quiet_tensorflow_start()
            from ..pretrained import load_model

            keras_model.append(load_model(model_dir))
        return keras_model[0]

    if chosen == "tflite":
        from .lite import lite_forward

        try:
            forward = lite_forward(model_dir, get_model, precision=precision)
            return LoadedModel(task, tokenizer, saved_labels(raw), config, forward, "tflite",
                               keras_model[0] if keras_model else None, precision)
        except Exception as e:  # the converter's errors have no common base class
            if runtime == "tflite" or asked not in ("auto", "fp32"):
                raise
            log.warning("%s: running on TensorFlow, TFLite could not convert the model: %s", model_dir,
                        str(e).splitlines()[0] if str(e) else type(e).__name__)
    model = get_model()
    return LoadedModel(task, tokenizer, model.labels, config, graph_forward(model), "tensorflow", model, "fp32")


def evaluate(model_dir: str, data_file: str, tasks: dict, runtime: str = "auto", report_dir: str | None = None,
             precision: str = "fp32", batch_size: int = INFERENCE_BATCH_SIZE, progress: bool = False,
             chunk_examples: int = EVALUATE_CHUNK_EXAMPLES, **read_options) -> dict:
    """Scores a fine-tuned model on a labelled file; the task's metrics as a dict. With
    `report_dir`, also writes them there (metrics.json) with the task's extras (classify: the
    confusion matrix as JSON and PNG). `runtime`, `precision`: as `load_for_inference`; precision
    defaults to "fp32" here, so the metrics are the trained model's on every machine (those of the
    dev pass of `finetune`); "auto" or "int8" measure the faster deployment.

    The file is read, featurized and run `chunk_examples` examples at a time, and only what
    scoring needs of each is kept (`Task.evaluation_rows`: e.g. gold and predicted label ids), so
    memory does not grow with the texts or features of the whole file (the classify family, NER
    and multiple choice read their files as they go; embedding reads the file whole, then cuts
    it). A task that scores whole files only (QA) is run in one piece. `progress`: a bar counting
    examples on stderr, when stderr is a terminal.
    """
    from tqdm.auto import tqdm

    from .task import join_rows

    loaded = load_for_inference(model_dir, tasks, runtime, precision)
    task = loaded.task
    given = {k: v for k, v in read_options.items() if v is not None}
    task.options.update(given)
    task.given |= set(given)
    task.fit_lengths(loaded.config, model_dir)
    labels = loaded.labels
    if task.whole_file_scoring:
        examples = task.read(data_file, labels=labels)
        features = task.featurize(examples, loaded.tokenizer, labels)
        outputs = run_model(loaded.forward, features, task.per_token, batch_size=batch_size)
        metrics, rows = task.score(examples, features, outputs, labels), None
    else:
        parts = []
        with tqdm(unit="ex", desc="evaluate", leave=False, file=sys.stderr,
                  disable=not (progress and sys.stderr.isatty())) as bar:
            for chunk in task.read_chunks(data_file, labels, chunk_examples):
                features = task.featurize(chunk, loaded.tokenizer, labels)
                outputs = run_model(loaded.forward, features, task.per_token, batch_size=batch_size)
                parts.append(task.evaluation_rows(chunk, features, outputs, labels))
                bar.update(len(chunk))
        rows = join_rows(parts)
        metrics = task.score_rows(rows, labels)
    if report_dir:
        task.write_report(report_dir, rows, labels, metrics)
    return metrics


def iter_predictions(model_dir: str, lines: Iterable[str] | Iterable[tuple[str, str]], tasks: dict,
                     chunk_lines: int = PREDICT_CHUNK_LINES,
                     batch_size: int = INFERENCE_BATCH_SIZE, runtime: str = "auto",
                     precision: str = "auto") -> Iterator[dict]:
    """One prediction per input line, in input order, `chunk_lines` lines in memory at a time.

    `lines` holds the texts, or `(where, text)` pairs where `where` ("file:line") names the line in
    error messages. A blank (empty or whitespace-only) line gets the task's `blank_prediction`
    (e.g. `{"label": null, ...}`), so output row i is always input line i. `runtime`, `precision`:
    as `load_for_inference`.
    """
    loaded = load_for_inference(model_dir, tasks, runtime, precision)
    chunk: list[tuple[str, str]] = []
    for i, item in enumerate(lines):
        chunk.append(item if isinstance(item, tuple) else (f"<input>:{i + 1}", item))
        if len(chunk) >= chunk_lines:
            yield from _predict_chunk(loaded, chunk, batch_size)
            chunk = []
    if chunk:
        yield from _predict_chunk(loaded, chunk, batch_size)


def predict(model_dir: str, lines: list[str], tasks: dict, runtime: str = "auto", precision: str = "auto") -> list[dict]:
    """`iter_predictions` as a list: one prediction per line."""
    return list(iter_predictions(model_dir, lines, tasks, runtime=runtime, precision=precision))


def _predict_chunk(loaded: LoadedModel, chunk, batch_size) -> list[dict]:
    task = loaded.task
    filled = [(where, text) for where, text in chunk if text.strip()]
    records: list[dict] = []
    if filled:
        examples = task.examples_from_lines([text for _, text in filled], [where for where, _ in filled])
        features, outputs = loaded.outputs(examples, batch_size)
        records = task.format_predictions(examples, features, outputs, loaded.labels)
    answers = iter(records)
    return [next(answers) if text.strip() else dict(task.blank_prediction) for _, text in chunk]
