"""Running a fine-tuned model over features: the path `predict`, `evaluate` and the dev pass of
`finetune` share.

Speed comes from three choices, measured on 2-core CPUs (docs/benchmarks.md):
  * rows are sorted by length before batching, so a batch is cut to the width of rows that are
    about as long as each other: an AG News file averages 45 pieces in a 128-piece window, and in
    file order nearly every batch of 64 holds one row near 128;
  * one traced graph with a `[None, None]` input signature serves every batch shape (graph mode
    takes a new shape at no extra cost, where XLA compiles each shape anew, 1-3 s on a CPU);
  * batches go to the graph as numpy slices, with no tf.data pipeline or Python per row.
Outputs are put back in feature order, so row i of the result is feature i.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import tensorflow as tf

from ..allocator import tune_malloc
from ..data.common import INFERENCE_BATCH_SIZE, MODEL_INPUT_KEYS
from ..pretrained import load_model, read_config
from ..tokenizer import load_tokenizer

# Logit given to the positions beyond a batch's width in per-token outputs ([N, L] or [N, L, C]):
# far below any real logit, so argmax and softmax ignore them.
PAD_LOGIT = -1e4
PREDICT_CHUNK_LINES = 4096  # input lines held in memory at once by `iter_predictions`


def run_model(model, features: dict, per_token: bool, batch_size: int = INFERENCE_BATCH_SIZE,
              pad_multiple: int = 8) -> dict[str, np.ndarray]:
    """Forward pass over all feature rows; returns the model's outputs as numpy arrays in feature order.

    Args:
      model: a task model (called with `training=False`).
      features: int32 arrays `input_ids`, `token_type_ids`, `attention_mask` [N, L] (other keys ignored).
      per_token: the outputs have a sequence axis ([B, w] or [B, w, C]); they are returned padded
        to [N, L, ...] with PAD_LOGIT beyond each batch's width.
      batch_size: rows per forward call.
      pad_multiple: a batch is cut to its longest row rounded up to this many positions.
    Returns: {output name: float32 [N, ...]}.
    """
    tune_malloc()  # a training pipeline in this process may have shrunk malloc's thresholds
    mask = np.asarray(features["attention_mask"])
    n, length = mask.shape
    lengths = mask.sum(axis=1)
    order = np.argsort(-lengths, kind="stable")  # longest first: the largest buffers are made once
    forward = inference_function(model)
    results: dict[str, np.ndarray] = {}
    for start in range(0, n, batch_size):
        rows = order[start: start + batch_size]
        width = min(length, -(-max(int(lengths[rows].max()), 1) // pad_multiple) * pad_multiple)
        outputs = forward({k: np.asarray(features[k])[rows, :width] for k in MODEL_INPUT_KEYS})
        for name, value in outputs.items():
            value = value.numpy()
            if name not in results:
                shape = (n, length, *value.shape[2:]) if per_token else (n, *value.shape[1:])
                results[name] = np.full(shape, PAD_LOGIT if per_token else 0, dtype=value.dtype)
            if per_token:
                results[name][rows, :width] = value
            else:
                results[name][rows] = value
    return results


def inference_function(model):
    """One traced inference graph per model, kept on the model: evaluating after every epoch
    (and every predict call) then reuses it instead of tracing the model again."""
    forward = getattr(model, "_bertkit_inference", None)
    if forward is None:
        spec = {k: tf.TensorSpec([None, None], tf.int32) for k in MODEL_INPUT_KEYS}
        forward = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        object.__setattr__(model, "_bertkit_inference", forward)  # a plain attribute, not a tracked one
    return forward


def load_for_inference(model_dir: str, tasks: dict) -> tuple[Any, Any, Any, list | None]:
    """(task, model, tokenizer, labels) of a fine-tuned model directory."""
    config, raw = read_config(model_dir)
    name = raw.get("bertkit_task")
    if name not in tasks:
        raise ValueError(f"{model_dir}: not a fine-tuned bertkit model (config.json has no bertkit_task); "
                         f"fine-tune one with `bertkit finetune`")
    task = tasks[name](**raw.get("bertkit_task_options", {}))
    task.fit_lengths(config, model_dir)
    model = load_model(model_dir)
    return task, model, load_tokenizer(model_dir), getattr(model, "labels", None)


def evaluate(model_dir: str, data_file: str, tasks: dict, **read_options) -> dict:
    """Scores a fine-tuned model on a labelled file; the task's metrics as a dict."""
    task, model, tokenizer, labels = load_for_inference(model_dir, tasks)
    given = {k: v for k, v in read_options.items() if v is not None}
    task.options.update(given)
    task.given |= set(given)
    task.fit_lengths(model.config, model_dir)
    examples = task.read(data_file, labels=labels)
    features = task.featurize(examples, tokenizer, labels)
    return task.score(examples, features, run_model(model, features, task.per_token), labels)


def iter_predictions(model_dir: str, lines: Iterable[str] | Iterable[tuple[str, str]], tasks: dict,
                     chunk_lines: int = PREDICT_CHUNK_LINES,
                     batch_size: int = INFERENCE_BATCH_SIZE) -> Iterator[dict]:
    """One prediction per input line, in input order, `chunk_lines` lines in memory at a time.

    `lines` holds the texts, or `(where, text)` pairs where `where` ("file:line") names the line in
    error messages. A blank (empty or whitespace-only) line gets the task's `blank_prediction`
    (e.g. `{"label": null, ...}`), so output row i is always input line i.
    """
    task, model, tokenizer, labels = load_for_inference(model_dir, tasks)
    chunk: list[tuple[str, str]] = []
    for i, item in enumerate(lines):
        chunk.append(item if isinstance(item, tuple) else (f"<input>:{i + 1}", item))
        if len(chunk) >= chunk_lines:
            yield from _predict_chunk(task, model, tokenizer, labels, chunk, batch_size)
            chunk = []
    if chunk:
        yield from _predict_chunk(task, model, tokenizer, labels, chunk, batch_size)


def predict(model_dir: str, lines: list[str], tasks: dict) -> list[dict]:
    """`iter_predictions` as a list: one prediction per line."""
    return list(iter_predictions(model_dir, lines, tasks))


def _predict_chunk(task, model, tokenizer, labels, chunk, batch_size) -> list[dict]:
    filled = [(where, text) for where, text in chunk if text.strip()]
    records: list[dict] = []
    if filled:
        examples = task.examples_from_lines([text for _, text in filled], [where for where, _ in filled])
        features = task.featurize(examples, tokenizer, None)
        outputs = run_model(model, features, task.per_token, batch_size=batch_size)
        records = task.format_predictions(examples, features, outputs, labels)
    answers = iter(records)
    return [next(answers) if text.strip() else dict(task.blank_prediction) for _, text in chunk]
