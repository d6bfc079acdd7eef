"""A fine-tuned model directory served through the inference engine (`bertkit predict`'s path).

On a CPU the engine runs the model on the TFLite runtime (XNNPACK), which is faster than the
TensorFlow graph an export runs (docs/benchmarks.md, "Serving"); tokenization and post-processing
are the task's own Python code, so the answers are `bertkit predict`'s, in the records an export
of the task serves (`Task.format_served_predictions`). Exports (SavedModels) keep running as
SavedModels: they are what TF Serving and apps without bertkit run.
"""

from __future__ import annotations

import threading

from ..tasks.base import saved_options
from ..tasks.inference import load_for_inference
from ..tasks.task import all_tasks


def serves_through_engine(path: str) -> bool:
    """Whether `path` is a model directory of a task that `bertkit serve` answers for (not an
    export, an encoder or an embedding model: those are served as SavedModels)."""
    import os

    from ..pretrained import read_config

    if not os.path.isfile(os.path.join(path, "config.json")):
        return False
    task = all_tasks().get(read_config(path)[1].get("bertkit_task"))
    return bool(task and task.serving_signatures)


class EnginePredictor:
    """`Predictor`'s interface (run, warm_up, kind, labels, input_kinds, metadata, max_length) over a
    task model directory loaded by `load_for_inference`. One batch runs at a time (a lock): the
    task objects keep per-call state, and the interpreter is not re-entrant."""

    def __init__(self, model_dir: str, runtime: str = "auto", precision: str = "auto"):
        loaded = load_for_inference(model_dir, all_tasks(), runtime, precision)
        task = loaded.task
        self._loaded, self._lock = loaded, threading.Lock()
        self.kind, self.labels, self.source = task.name, loaded.labels, model_dir
        self.input_kinds = tuple(task.serving_signatures)
        self.metadata = {"kind": task.name, "task": task.name, "labels": loaded.labels,
                         "options": saved_options(task), "runtime": loaded.runtime,
                         "precision": loaded.precision}

    @property
    def runtime(self) -> str:
        return self._loaded.runtime

    @property
    def max_length(self) -> int | None:
        return self.metadata["options"].get("max_length")

    def run(self, kind: str, items: list) -> list[dict]:
        """As `Predictor.run`: one result dict per item."""
        if kind not in self.input_kinds:
            raise ValueError(f"this {self.kind} model takes {' or '.join(self.input_kinds)}, not {kind}")
        loaded, task = self._loaded, self._loaded.task
        with self._lock:
            examples = task.examples_from_items(kind, items)
            features, outputs = loaded.outputs(examples)
            return task.format_served_predictions(examples, features, outputs, loaded.labels)

    def warm_up(self) -> None:
        """Runs every input kind once (the interpreter allocates its buffers on the first call)."""
        from ..export.runtime import WARM_UP_ITEMS

        for kind in self.input_kinds:
            self.run(kind, WARM_UP_ITEMS[kind])
