"""Classification metrics: scikit-learn's, as GLUE's official scoring computes them (accuracy; F1 of
the positive class for MRPC / QQP; Matthews correlation for CoLA).

All take integer class ids; results are fractions in [0, 1] (MCC in [-1, 1]).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np


def confusion_matrix(y_true, y_pred, labels: Sequence[int] | None = None) -> np.ndarray:
    """int64 [K, K]: C[i, j] = number of examples of true class labels[i] predicted as labels[j].

    `labels` defaults to the sorted classes present in y_true or y_pred (scikit-learn's default)."""
    from sklearn import metrics

    y_true, y_pred = _check(y_true, y_pred)
    return metrics.confusion_matrix(y_true, y_pred, labels=labels).astype(np.int64)


def accuracy(y_true, y_pred) -> float:
    y_true, y_pred = _check(y_true, y_pred)
    return float(np.mean(y_true == y_pred)) if len(y_true) else 0.0


def classification_metrics(y_true, y_pred, label_names: Sequence[str] | None = None) -> dict:
    """What `bertkit evaluate` reports for a classifier.

    Always {"accuracy", "macro_f1" (unweighted mean of the classes present), "mcc"}. With two
    label names also "f1": the F1 of the positive class, label id 1 (the second label: "1" of
    GLUE's 0/1 files, "positive" of negative/positive), as GLUE scores MRPC and QQP; and with `label_names`, "per_class": {name: {precision, recall, f1, support}}.
    A class without predictions (or without examples) scores 0 where its precision (recall) is
    undefined (scikit-learn's zero_division=0).
    """
    from sklearn import metrics

    y_true, y_pred = _check(y_true, y_pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MCC of a constant labeling is 0, as scikit-learn returns it
        scores = {"accuracy": accuracy(y_true, y_pred),
                  "macro_f1": float(metrics.f1_score(y_true, y_pred, average="macro", zero_division=0))
                  if len(y_true) else 0.0,
                  "mcc": float(metrics.matthews_corrcoef(y_true, y_pred)) if len(y_true) else 0.0}
    if label_names is None:
        return scores
    ids = list(range(len(label_names)))
    if len(label_names) == 2:
        scores["f1"] = float(metrics.f1_score(y_true, y_pred, labels=ids, pos_label=1, average="binary",
                                              zero_division=0))
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=ids, zero_division=0)
    scores["per_class"] = {name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                                  "support": int(support[i])} for i, name in enumerate(label_names)}
    return scores


def per_class_report(scores: dict) -> str:
    """The "per_class" part of classification_metrics as a text table (scikit-learn's layout)."""
    rows = scores["per_class"]
    width = max(12, *(len(name) for name in rows))
    lines = [f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>9}"]
    for name, r in rows.items():
        lines.append(f"{name:>{width}} {r['precision']:9.4f} {r['recall']:9.4f} {r['f1']:9.4f} {r['support']:9d}")
    total = sum(r["support"] for r in rows.values())
    lines.append(f"{'accuracy':>{width}} {'':>9} {'':>9} {scores['accuracy']:9.4f} {total:9d}")
    lines.append(f"{'macro f1':>{width}} {'':>9} {'':>9} {scores['macro_f1']:9.4f} {total:9d}")
    lines.append(f"{'mcc':>{width}} {'':>9} {'':>9} {scores['mcc']:9.4f} {total:9d}")
    return "\n".join(lines)


def write_confusion_matrix(report_dir: str, matrix: np.ndarray, label_names: Sequence[str]) -> list[str]:
    """confusion_matrix.json ({"labels", "matrix"}: rows true, columns predicted) and
    confusion_matrix.png (counts, rows normalised for the colour) in `report_dir`; returns the paths."""
    import json
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(report_dir, exist_ok=True)
    json_path, png_path = (os.path.join(report_dir, f"confusion_matrix.{ext}") for ext in ("json", "png"))
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump({"labels": list(label_names), "matrix": matrix.tolist()}, f, ensure_ascii=False)
        f.write("\n")
    k = len(label_names)
    size = min(2 + 0.6 * k, 16)
    fig, ax = plt.subplots(figsize=(size, size))
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set(xticks=range(k), yticks=range(k), xlabel="predicted", ylabel="true", title="confusion matrix")
    ax.set_xticklabels(label_names, rotation=45, ha="right")
    ax.set_yticklabels(label_names)
    if k <= 30:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if rates[i, j] > 0.5 else "black")
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return [json_path, png_path]


def _check(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    return y_true, y_pred
