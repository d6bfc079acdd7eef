"""Multi-label classification (a text or a pair -> a set of labels, e.g. GoEmotions' 28 emotions):
the classify readers with comma-separated label cells, sigmoid + binary cross-entropy on one logit
per label, micro/macro F1 and per-label P/R/F1 out.

A label is predicted when its probability reaches the decision threshold. After training,
finetune tunes the threshold on the dev set (the one maximising micro-F1 over 0.05..0.95; with
`per_label_threshold`, each label's own, maximising its F1) and saves it with the model; without a
dev set it stays at 0.5. Saved as HF's BertForSequenceClassification with
`problem_type: "multi_label_classification"`. GoEmotions (`goemotions/*.tsv`, CSV-quoted texts,
ids naming the lines of `emotions.txt`):

    bertkit finetune multilabel --model MODEL --train train.tsv --dev dev.tsv --out emotions \
        --quoting csv --no-header --label-column 1 --label-names emotions.txt
"""

from __future__ import annotations

import numpy as np

from ..data.multilabel import (encode_multilabels, infer_multilabel_list, name_labels, read_label_names,
                               split_labels)
from ..metrics.multilabel import multilabel_metrics, tune_label_thresholds, tune_threshold
from .classify import FILE_FLAGS, WINDOW_FLAGS, ClassifyTask
from .task import MAX_LENGTH_FLAG, TaskFlag, register


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


@register
class MultiLabelTask(ClassifyTask):
    name = "multilabel"
    hf_problem_type = "multi_label_classification"
    metric = "micro_f1"
    report_metrics = ("micro_f1", "macro_f1", "exact_match")
    defaults = {**ClassifyTask.defaults, "label_names": None, "threshold": 0.5,
                "thresholds": None, "per_label_threshold": False}
    transient = ("delimiter", "quoting", "label_names")
    blank_prediction = {"labels": None, "probabilities": None}
    has_confusion_matrix = False
    flags = (*FILE_FLAGS, MAX_LENGTH_FLAG, *WINDOW_FLAGS,
             TaskFlag("label_names", "label names, line i naming label id i (GoEmotions' emotions.txt)",
                      metavar="FILE"),
             TaskFlag("per_label_threshold", "tune a decision threshold per label on the dev set (default: one "
                                             "for all)", kind="switch"))

    @classmethod
    def hf_config(cls, labels):
        return {**super().hf_config(labels), "problem_type": "multi_label_classification"}

    @classmethod
    def build_loss(cls):
        from ..training.losses import MultiLabelLoss

        return MultiLabelLoss()

    def thresholds(self, labels) -> np.ndarray:
        """float32 [C]: each label's decision threshold (the tuned per-label ones, else the global one)."""
        per_label = self.options.get("thresholds")
        if per_label is not None:
            return np.asarray(per_label, dtype=np.float32)
        return np.full(len(labels), self.options["threshold"], dtype=np.float32)

    def export_module(self, model, tokenizer, labels, pair):
        from ..export.modules import MultiLabelModule

        return MultiLabelModule(model, tokenizer, labels, self.thresholds(labels).tolist(),
                                max_length=self.options["max_length"], pair=self.pair(pair),
                                **self.window_options())

    def row_labels(self, labels):
        return None

    def checked(self, examples, labels):
        # Ids in the cells name labels: by the --label-names file, else (evaluating) the model's own list.
        names = read_label_names(self.options["label_names"]) if self.options["label_names"] else labels
        if examples[0].label is not None:
            for e in examples:
                split_labels(e)  # an empty cell or item stops here, naming its line
            if names:
                examples = name_labels(examples, names)  # so does an unknown id or name
        return examples

    def metric_names(self, labels):
        return ("micro_f1", "macro_f1", "exact_match")

    def labels_from(self, examples):
        if self.options["label_names"]:  # every named label, also those the training set lacks
            return read_label_names(self.options["label_names"])
        return infer_multilabel_list(examples)

    def targets(self, examples, labels):
        return encode_multilabels(examples, labels)

    def score_rows(self, rows, labels):
        predicted = sigmoid(rows["logits"]) >= self.thresholds(labels)
        return multilabel_metrics(rows["targets"], predicted, label_names=labels)

    def calibrate(self, examples, features, outputs, labels) -> dict:
        """Decision thresholds tuned on the dev outputs: {"threshold": t, "thresholds": [..] or None}."""
        probabilities = sigmoid(self.document_logits(examples, features, outputs))
        truth = self.targets(examples, labels)
        threshold = tune_threshold(truth, probabilities)
        per_label = (tune_label_thresholds(truth, probabilities, threshold)
                     if self.options["per_label_threshold"] else None)
        return {"threshold": threshold, "thresholds": per_label}

    def format_predictions(self, examples, features, outputs, labels):
        probabilities = sigmoid(self.document_logits(examples, features, outputs))
        on = probabilities >= self.thresholds(labels)
        return [{"labels": [name for name, yes in zip(labels, row) if yes],
                 "probabilities": [round(float(p), 6) for p in probs]} for row, probs in zip(on, probabilities)]

    @classmethod
    def format_served(cls, outputs, n, labels):
        return [{"labels": [name for name, on in zip(labels, outputs["predicted"][i]) if on],
                 "probabilities": [round(float(p), 6) for p in outputs["probabilities"][i]]} for i in range(n)]
