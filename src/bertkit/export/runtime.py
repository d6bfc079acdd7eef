"""Running an export (or a model directory) on batches of raw inputs, for `bertkit serve`.

    predictor = Predictor.load("exports/sst2")           # highest version; or a version folder;
    predictor.run("texts", ["a fine film", "dull"])      # or a model directory (built in memory)
    -> [{"label": "pos", "probabilities": [0.1, 0.9]}, ...]

Results have the shapes `bertkit predict` prints (classify {label, probabilities}; regression {score}; multilabel {labels, probabilities};
ner {entities};
qa {answer, start, end, score}, plus the QA probability; multiple-choice {label, choice, probabilities}); encoders return {sentence_embedding}
(or {pooled_output} when exported without pooling).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

INPUT_KINDS = {"texts": ("text",), "pairs": ("text", "text_pair"), "qa": ("question", "context"),
               "choices": ("question", "choices")}
# An encoder export is not a task: its signatures and results are described here; a task's come
# from its description (Task.serving_signatures, Task.format_served).
ENCODER_SIGNATURES = {"texts": "text", "pairs": "text_pair"}
# One item per input kind: the first call of a graph (or interpreter) pays its set-up.
WARM_UP_ITEMS = {"texts": ["warm up"], "pairs": [("warm up", "warm up")], "qa": [("warm up", "warm up")],
                 "choices": [("warm up", ["warm up", "up"])]}


def _format_encoder(out: dict, n: int, labels=None) -> list[dict]:
    key = "sentence_embedding" if "sentence_embedding" in out else "pooled_output"
    values = np.asarray(out[key], dtype=np.float64)
    return [{key: [round(float(x), 7) for x in values[i]]} for i in range(n)]


def serving(kind: str | None, source: str):
    """(signatures by input kind, result formatter) of an export kind; ValueError if it is not served."""
    from ..tasks.task import all_tasks

    if kind == "encoder":
        return ENCODER_SIGNATURES, _format_encoder
    task = all_tasks().get(kind)
    if task is None or not task.serving_signatures:
        raise ValueError(f"{source}: a {kind} export has no predictions to serve (serve a task model or an encoder)")
    return task.serving_signatures, task.format_served


class Predictor:
    """Signature functions of an export plus its metadata; thread-safe (TF functions are)."""

    def __init__(self, signatures: dict, metadata: dict, source: str, keep_alive=None):
        kind = metadata.get("kind")
        served, self._format = serving(kind, source)
        self.kind, self.metadata, self.source = kind, metadata, source
        self.labels = metadata.get("labels")
        self.input_kinds = tuple(k for k, sig in served.items() if sig in signatures)
        self._functions = {k: signatures[served[k]] for k in self.input_kinds}
        self._keep_alive = keep_alive  # the loaded SavedModel / module owning the functions

    @classmethod
    def load(cls, path: str, runtime: str = "auto", precision: str = "auto", **build_options):
        """An export folder (its highest version), a version folder, or a model directory.

        A fine-tuned task model directory runs through the inference engine
        (bertkit.serve.engine.EnginePredictor: the TFLite runtime on CPUs, `bertkit predict`'s
        answers) unless `runtime` is "tensorflow" or `build_options` shape an export; anything else
        (exports, encoders) is served as a SavedModel built in memory. `precision` "int8" (dynamic-
        range int8 weights) is the engine's: it needs a task model directory, on TFLite; "auto" is
        the engine's choice for this CPU (bertkit.cpu), and fp32 for anything else.

        Raises: ValueError for int8 with anything the engine does not serve."""
        from . import build_module, resolve_export
        from .saving import read_metadata

        saved = resolve_export(path)
        if saved is None and runtime != "tensorflow" and not build_options:
            from ..serve.engine import EnginePredictor, serves_through_engine
            from ..tasks.inference import pick_runtime

            if serves_through_engine(path) and pick_runtime(runtime, precision)[0] == "tflite":
                return EnginePredictor(path, runtime, precision)
        if precision not in ("auto", "fp32"):
            raise ValueError(f"{path}: --precision {precision} runs a fine-tuned task model directory on the TFLite "
                             "runtime; exports, encoders and --runtime tensorflow run in fp32")
        if saved is not None:
            import tensorflow_text  # noqa: F401  (registers the ops of the exported graph)

            metadata = read_metadata(saved)
            serving(metadata.get("kind"), saved)  # before loading: a preprocessor export is refused
            loaded = tf.saved_model.load(saved)
            return cls(dict(loaded.signatures), metadata, saved, keep_alive=loaded)
        module = build_module(path, **build_options)
        return cls(module.signatures(), module.metadata(), path, keep_alive=module)

    @property
    def max_length(self) -> int | None:
        return self.metadata.get("options", {}).get("max_length")

    def run(self, kind: str, items: list) -> list[dict]:
        """One forward pass over `items`: strings for "texts", (a, b) pairs for "pairs",
        (question, context) pairs for "qa". Returns one result dict per item."""
        if kind not in self._functions:
            raise ValueError(f"this {self.kind} model takes {' or '.join(self.input_kinds)}, not {kind}")
        names = INPUT_KINDS[kind]
        columns = [items] if len(names) == 1 else [list(c) for c in zip(*items)]
        if kind == "choices":  # questions may have different numbers of choices: pad with "", mask after
            width = max(len(c) for c in columns[1])
            columns[1] = [list(c) + [""] * (width - len(c)) for c in columns[1]]
        inputs = {name: tf.constant(column, tf.string) for name, column in zip(names, columns)}
        outputs = {k: v.numpy() for k, v in self._functions[kind](**inputs).items()}
        if kind == "choices":
            outputs["choice_counts"] = [len(c) for _, c in items]
            outputs["choice_texts"] = [c for _, c in items]
        return self._format(outputs, len(items), self.labels)

    def warm_up(self) -> None:
        """Runs every input kind once: the first call of a graph pays its optimisation."""
        for kind in self.input_kinds:
            self.run(kind, WARM_UP_ITEMS[kind])
