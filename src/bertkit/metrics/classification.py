"""Classification metrics in numpy, with scikit-learn's definitions (checked against it in tests).

All take integer class ids; results are fractions in [0, 1] (MCC in [-1, 1]).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion_matrix(y_true, y_pred, labels: Sequence[int] | None = None) -> np.ndarray:
    """C[i, j] = number of examples of true class labels[i] predicted as labels[j].

    `labels` defaults to the sorted classes present in y_true or y_pred (sklearn's default)."""
    y_true, y_pred = _check(y_true, y_pred)
    labels = np.unique(np.concatenate([y_true, y_pred])) if labels is None else np.asarray(labels)
    index = {int(label): i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        if int(t) in index and int(p) in index:
            matrix[index[int(t)], index[int(p)]] += 1
    return matrix


def accuracy(y_true, y_pred) -> float:
    y_true, y_pred = _check(y_true, y_pred)
    return float(np.mean(y_true == y_pred)) if len(y_true) else 0.0


def macro_f1(y_true, y_pred, labels: Sequence[int] | None = None) -> float:
    """Unweighted mean of per-class F1 (a class never true nor predicted is not counted unless
    in `labels`; F1 of a class with no true and no predicted examples is 0, sklearn's zero_division)."""
    matrix = confusion_matrix(y_true, y_pred, labels)
    if not len(matrix):
        return 0.0
    tp = np.diag(matrix).astype(np.float64)
    denom = matrix.sum(axis=0) + matrix.sum(axis=1)  # 2TP + FP + FN = predicted + true
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(f1.mean())


def matthews_corrcoef(y_true, y_pred) -> float:
    """Multiclass MCC (Gorodkin's R_K), as sklearn: 0.0 when either marginal is constant."""
    matrix = confusion_matrix(y_true, y_pred).astype(np.float64)
    true_sum, pred_sum = matrix.sum(axis=1), matrix.sum(axis=0)
    n, correct = matrix.sum(), np.trace(matrix)
    cov_true_pred = correct * n - true_sum @ pred_sum
    cov_pred_pred = n * n - pred_sum @ pred_sum
    cov_true_true = n * n - true_sum @ true_sum
    if cov_pred_pred * cov_true_true == 0:
        return 0.0
    return float(cov_true_pred / np.sqrt(cov_true_true * cov_pred_pred))


def classification_metrics(y_true, y_pred) -> dict[str, float]:
    """{"accuracy", "macro_f1", "mcc"}: what `bertkit evaluate` prints for classification."""
    return {"accuracy": accuracy(y_true, y_pred), "macro_f1": macro_f1(y_true, y_pred),
            "mcc": matthews_corrcoef(y_true, y_pred)}


def _check(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    return y_true, y_pred
