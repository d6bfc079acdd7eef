"""Sequence classification (single sentence or pair): TSV/CSV/JSONL in, accuracy / macro-F1 / MCC out."""

from __future__ import annotations

import dataclasses

import numpy as np

from ..data.classification import (ClassificationExample, featurize_classification, infer_label_list,
                                   read_classification_file)
from ..metrics.classification import classification_metrics
from .task import Task, register


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


@register
class ClassifyTask(Task):
    name = "classify"
    architecture = "BertForSequenceClassification"
    head_prefix = "classifier."
    label_keys = ("labels",)
    metric = "accuracy"
    report_metrics = ("accuracy", "macro_f1")
    per_token = False
    defaults = {"max_length": 128, "text_column": None, "text_pair_column": None, "label_column": None,
                "header": None, "delimiter": None}
    transient = ("delimiter",)
    blank_prediction = {"label": None, "probabilities": None}

    @classmethod
    def model_class(cls):
        from ..model.models import BertForSequenceClassification

        return BertForSequenceClassification

    @classmethod
    def build_loss(cls):
        from ..training.losses import ClassificationLoss

        return ClassificationLoss()

    def export_module(self, model, tokenizer, labels, pair):
        from ..export.modules import ClassifyModule

        return ClassifyModule(model, tokenizer, labels, max_length=self.options["max_length"], pair=self.pair(pair))

    def pair(self, pair: bool | None) -> bool:
        """Whether the export takes text pairs: as asked, else as the model was trained."""
        return self.options.get("text_pair_column") is not None if pair is None else pair

    def read_rows(self, path, **extra):
        """The file's examples by this task's column options (the classify-family readers share it)."""
        o = self.options
        return read_classification_file(path, text_column=o["text_column"], text_pair_column=o["text_pair_column"],
                                        label_column=o["label_column"], header=o["header"],
                                        delimiter=o["delimiter"], **extra)

    def featurize_texts(self, examples, tokenizer) -> dict:
        """Model inputs of the examples' texts, labels left out (for tasks whose targets are not ids)."""
        return featurize_classification([dataclasses.replace(e, label=None) for e in examples], tokenizer,
                                        max_length=self.options["max_length"])

    def read(self, path, labels=None, train=False):
        return self.read_rows(path, label_list=labels)

    def labels_from(self, examples):
        return infer_label_list(examples)

    def featurize(self, examples, tokenizer, labels):
        return featurize_classification(examples, tokenizer, label_list=labels if examples[0].label is not None
                                        else None, max_length=self.options["max_length"])

    def score(self, examples, features, outputs, labels):
        return classification_metrics(features["labels"], outputs["logits"].argmax(-1))

    def format_predictions(self, examples, features, outputs, labels):
        probs = softmax(outputs["logits"])
        return [{"label": labels[int(p.argmax())], "probabilities": [round(float(x), 6) for x in p]}
                for p in probs]

    def examples_from_lines(self, lines, sources=None):
        sources = sources or [f"<input>:{i + 1}" for i in range(len(lines))]
        examples = []
        for line, where in zip(lines, sources):
            text, tab, pair = line.partition("\t")
            examples.append(ClassificationExample(text=text, text_pair=pair if tab else None, source=where))
        kinds = {e.text_pair is None for e in examples}
        if len(kinds) > 1:
            single = next(e for e in examples if e.text_pair is None)
            pair = next(e for e in examples if e.text_pair is not None)
            raise ValueError(f"{single.source}: a single text, but {pair.source} is a tab-separated pair; "
                             "give every line the same form")
        return examples
