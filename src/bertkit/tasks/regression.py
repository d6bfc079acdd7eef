"""Sequence regression (one text or a pair -> a real number, e.g. STS-B similarity 0-5): the
classify readers with a numeric label column, MSE loss on a 1-unit head, Pearson/Spearman out.

Saved as HF's BertForSequenceClassification with `problem_type: "regression"` and one label, so
transformers loads it with the same outputs. STS-B (`stsb/sts-*.csv`, TAB-separated despite the
suffix, 7 or 9 fields):

    bertkit finetune regression --model MODEL --train sts-train.csv --dev sts-dev.csv --out stsb \
        --delimiter tab --no-header --text-column 5 --text-pair-column 6 --label-column 4
"""

from __future__ import annotations

from ..data.classification import parse_scores
from ..metrics.regression import regression_metrics
from .classify import FILE_FLAGS, WINDOW_FLAGS, ClassifyTask
from .task import MAX_LENGTH_FLAG, register


@register
class RegressionTask(ClassifyTask):
    name = "regression"
    hf_problem_type = "regression"
    has_labels = False
    metric = "pearson"
    report_metrics = ("pearson", "spearman", "mse")
    blank_prediction = {"score": None}
    has_confusion_matrix = False
    flags = (*FILE_FLAGS, MAX_LENGTH_FLAG, *WINDOW_FLAGS)

    @classmethod
    def num_outputs(cls, labels):
        return 1

    def metric_names(self, labels):
        return ("pearson", "spearman")  # not mse: lower is better

    @classmethod
    def hf_config(cls, labels):
        # HF reads num_labels from id2label: one output, named as HF names it.
        return {"id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}, "problem_type": "regression"}

    @classmethod
    def build_loss(cls):
        from ..training.losses import RegressionLoss

        return RegressionLoss()

    def export_module(self, model, tokenizer, labels, pair):
        from ..export.modules import RegressionModule

        return RegressionModule(model, tokenizer, max_length=self.options["max_length"], pair=self.pair(pair),
                                **self.window_options())

    def row_labels(self, labels):
        return None

    def checked(self, examples, labels):
        if examples[0].label is not None:
            parse_scores(examples)  # a cell that is not a number stops here, naming its line
        return examples

    def labels_from(self, examples):
        return None

    def targets(self, examples, labels):
        return parse_scores(examples)

    def score_rows(self, rows, labels):
        return regression_metrics(rows["targets"], rows["logits"][:, 0])

    def format_predictions(self, examples, features, outputs, labels):
        return [{"score": round(float(x), 6)} for x in self.document_logits(examples, features, outputs)[:, 0]]

    @classmethod
    def format_served(cls, outputs, n, labels):
        return [{"score": round(float(outputs["score"][i]), 6)} for i in range(n)]
