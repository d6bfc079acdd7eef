"""Sequence classification (single sentence or pair): TSV/CSV/JSONL in, accuracy / macro-F1 / MCC
(and the positive class's F1 for two labels, GLUE's MRPC/QQP metric) out. `class_weights`
("balanced" or a file) weights each training example's cross-entropy by its class, as PyTorch's
`CrossEntropyLoss(weight=...)`."""

from __future__ import annotations

import dataclasses

import numpy as np

from ..data.classification import (ClassificationExample, encode_labels, featurize_classification,
                                   featurize_windows, infer_label_list, iter_classification_file, pool_windows,
                                   read_class_weights)
from ..metrics.classification import classification_metrics, confusion_matrix, write_confusion_matrix
from .task import MAX_LENGTH_FLAG, Task, TaskFlag, chunks_of, register

# The flags of every task that reads the classification files (classify, regression, multilabel;
# the embedding task reads the same layouts).
FILE_FLAGS = (
    TaskFlag("text_column", "text column (name or index; default 0 / 'text')"),
    TaskFlag("text_pair_column", "second-segment column for sentence pairs"),
    TaskFlag("label_column", "label (score) column (default: last / 'label')"),
    TaskFlag("delimiter", "field separator (default: by suffix, .csv comma, else tab)", choices=("tab", "comma")),
    TaskFlag("quoting", "fields wrapped in quotes (csv) or not (none; default csv for commas, none for tabs)",
             choices=("csv", "none")),
    TaskFlag("header", "the first row is a header (default: guessed from the label column)", kind="toggle"),
)
# Long documents in windows (classify, regression, multilabel).
WINDOW_FLAGS = (
    TaskFlag("doc_stride", "read a text longer than --max-length in windows this many pieces apart (default: "
                           "cut it)", int),
    TaskFlag("window_pool", "with --doc-stride, a document's logits are the mean or the max of its windows' "
                            "logits", choices=("mean", "max")),
)


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
    # doc_stride None: a text longer than max_length is cut at its end (head truncation); else it is
    # read in windows doc_stride pieces apart, and the document's logits pool its windows' logits.
    defaults = {"max_length": 128, "text_column": None, "text_pair_column": None, "label_column": None,
                "header": None, "delimiter": None, "quoting": None, "doc_stride": None, "window_pool": "mean",
                "class_weights": None}
    transient = ("delimiter", "quoting", "class_weights")
    blank_prediction = {"label": None, "probabilities": None}
    has_confusion_matrix = True  # one label per example (not regression's scores, multilabel's sets)
    flags = (*FILE_FLAGS, MAX_LENGTH_FLAG, *WINDOW_FLAGS,
             TaskFlag("class_weights", "weight each training example's loss by its class: balanced (n / (classes "
                                       "x count)) or a file of 'label<TAB>weight' lines or a JSON object",
                      metavar="balanced|FILE"))
    serving_signatures = {"texts": "text", "pairs": "text_pair"}

    def __init__(self, **options):
        super().__init__(**options)
        self.class_weight: dict[str, float] | None = None  # {label: weight}, set by read(train=True)
        if self.options.get("class_weights") and self.name != "classify":
            raise ValueError(f"--class-weights applies to classify (one label per text), not {self.name}")

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

        return ClassifyModule(model, tokenizer, labels, max_length=self.options["max_length"], pair=self.pair(pair),
                              **self.window_options())

    def window_options(self) -> dict:
        """doc_stride / window_pool for an export module, when the model reads documents in windows."""
        o = self.options
        return {"doc_stride": o["doc_stride"], "window_pool": o["window_pool"]} if o.get("doc_stride") else {}

    def pair(self, pair: bool | None) -> bool:
        """Whether the export takes text pairs: as asked, else as the model was trained."""
        return self.options.get("text_pair_column") is not None if pair is None else pair

    def iter_rows(self, path, **extra):
        """The file's examples by this task's column options, read as they are taken (the
        classify-family readers share it)."""
        o = self.options
        return iter_classification_file(path, text_column=o["text_column"], text_pair_column=o["text_pair_column"],
                                        label_column=o["label_column"], header=o["header"],
                                        delimiter=o["delimiter"], quoting=o["quoting"], **extra)

    def read_rows(self, path, **extra):
        """The file's examples as a list (`read_classification_file`)."""
        return list(self.iter_rows(path, **extra))

    def row_labels(self, labels):
        """The label list the reader checks each row's label cell against: the model's labels
        here; None for the tasks whose cells are scores or label sets."""
        return labels

    def checked(self, examples: list, labels) -> list:
        """Examples as read, checked and converted for this task (here: labels the model knows;
        scores parsed, label sets split in the subclasses); runs per chunk when `evaluate` reads a
        file in chunks. Raises ValueError naming the file and line of the first bad cell."""
        if labels is not None and examples[0].label is not None:
            encode_labels(examples, labels)  # raises on the first unknown label, counting them all
        return examples

    def read_chunks(self, path, labels, size):
        """Lists of at most `size` examples, the file read as they are taken (bounded memory)."""
        for chunk in chunks_of(self.iter_rows(path, label_list=self.row_labels(labels)), size):
            yield self.checked(chunk, labels)

    def featurize_texts(self, examples, tokenizer) -> dict:
        """Model inputs of the examples' texts, targets left out: one row per example, or with
        `doc_stride` one per window plus `example_index` [W] (see `featurize_windows`)."""
        if self.options.get("doc_stride"):
            return featurize_windows(examples, tokenizer, max_length=self.options["max_length"],
                                     doc_stride=self.options["doc_stride"])
        return featurize_classification([dataclasses.replace(e, label=None) for e in examples], tokenizer,
                                        max_length=self.options["max_length"])

    def targets(self, examples, labels) -> np.ndarray:
        """The examples' targets, one per example (label ids here; scores, label sets in subclasses)."""
        return encode_labels(examples, labels)

    def featurize_targets(self, examples, tokenizer, labels) -> dict:
        """Inputs plus `labels` (and with class weights `weight`, float32 [rows]), per row: each
        window of a document gets the document's target."""
        features = self.featurize_texts(examples, tokenizer)
        if examples[0].label is not None:
            rows = features.get("example_index", np.arange(len(examples)))
            features["labels"] = self.targets(examples, labels)[rows]
            if self.class_weight:
                features["weight"] = np.array([self.class_weight[examples[i].label] for i in rows], np.float32)
        return features

    def document_logits(self, examples, features, outputs) -> np.ndarray:
        """Logits per example [N, ...]: the rows' own, or their windows' pooled by `window_pool`."""
        if "example_index" not in features:
            return outputs["logits"]
        return pool_windows(outputs["logits"], features["example_index"], len(examples), self.options["window_pool"])

    def read(self, path, labels=None, train=False):
        examples = self.checked(self.read_rows(path, label_list=self.row_labels(labels)), labels)
        if train and self.options.get("class_weights"):
            self.use_class_weights(examples, self.options["class_weights"])
        return examples

    def use_class_weights(self, examples, spec: str) -> None:
        """Weights each training example's loss by its class: "balanced" (n / (classes x count), scikit-
        learn's `compute_class_weight`) or a file of `label<TAB>weight` lines / a JSON object."""
        names = infer_label_list(examples)
        if spec == "balanced":
            from sklearn.utils.class_weight import compute_class_weight

            values = compute_class_weight("balanced", classes=np.array(names), y=np.array([e.label for e in examples]))
            self.class_weight = dict(zip(names, (float(v) for v in values)))
        else:
            self.class_weight = read_class_weights(spec, names)
        self.label_keys = ("labels", "weight")  # the loss reads `weight` (ClassificationLoss)

    def labels_from(self, examples):
        return infer_label_list(examples)

    def featurize(self, examples, tokenizer, labels):
        return self.featurize_targets(examples, tokenizer, labels)

    def metric_names(self, labels):
        return ("accuracy", "macro_f1", "mcc") + (("f1",) if labels is not None and len(labels) == 2 else ())

    def evaluation_rows(self, examples, features, outputs, labels):
        """{"targets": per example, "logits": [N, outputs]} (windows pooled per document)."""
        return {"targets": self.targets(examples, labels), "logits": self.document_logits(examples, features, outputs)}

    def score_rows(self, rows, labels):
        return classification_metrics(rows["targets"], rows["logits"].argmax(-1), label_names=labels)

    def write_report(self, report_dir, rows, labels, metrics) -> list[str]:
        """Also the confusion matrix (rows: true labels, columns: predicted), as JSON and PNG, for a
        task with one label per example (`has_confusion_matrix`)."""
        written = super().write_report(report_dir, rows, labels, metrics)
        if not self.has_confusion_matrix:
            return written
        matrix = confusion_matrix(rows["targets"], rows["logits"].argmax(-1), labels=list(range(len(labels))))
        return written + write_confusion_matrix(report_dir, matrix, labels)

    def format_predictions(self, examples, features, outputs, labels):
        probs = softmax(self.document_logits(examples, features, outputs))
        return [{"label": labels[int(p.argmax())], "probabilities": [round(float(x), 6) for x in p]}
                for p in probs]

    @classmethod
    def format_served(cls, outputs, n, labels):
        return [{"label": outputs["label"][i].decode("utf-8"),
                 "probabilities": [round(float(p), 6) for p in outputs["probabilities"][i]]} for i in range(n)]

    def examples_from_items(self, kind, items):
        # Built directly, not as lines: a TAB inside a served text is part of the text.
        if kind == "pairs":
            return [ClassificationExample(text=a, text_pair=b, source=f"<request>:{i + 1}")
                    for i, (a, b) in enumerate(items)]
        return [ClassificationExample(text=t, source=f"<request>:{i + 1}") for i, t in enumerate(items)]

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
