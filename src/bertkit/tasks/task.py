"""The task interface: what a fine-tuning task declares, and nothing that needs TensorFlow.

A task reads its files, featurizes examples for the model, scores outputs and formats predictions;
the engines (base.finetune, inference.run_model) do the rest. Importing a task imports no
TensorFlow, so `bertkit predict` on the TFLite runtime starts without it.
"""

from __future__ import annotations

from typing import Any


class Task:
    """Interface of a task; see classify.py / ner.py / qa.py."""

    name: str
    label_keys: tuple[str, ...]
    metric: str  # the dev metric that picks the best epoch (higher is better)
    per_token: bool  # outputs have a sequence axis (NER, QA)
    defaults: dict[str, Any] = {}  # task options saved with the model (max_length, ...)
    transient: tuple[str, ...] = ()  # options about one data file, not saved with the model

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

    def read(self, path: str, labels: list[str] | None = None, train: bool = False) -> list: ...

    def labels_from(self, examples: list) -> list[str] | None: ...

    def featurize(self, examples: list, tokenizer, labels: list[str] | None) -> dict: ...

    def score(self, examples: list, features: dict, outputs: dict, labels) -> dict: ...

    def format_predictions(self, examples: list, features: dict, outputs: dict, labels) -> list[dict]: ...

    def examples_from_lines(self, lines: list[str], sources: list[str] | None = None) -> list:
        """Examples from `predict` input lines (none blank); `sources` ("file:line") name them in errors."""

    # What `predict` writes for a blank input line, so that output row i stays input line i.
    blank_prediction: dict[str, Any] = {}
