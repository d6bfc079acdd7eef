"""Multi-label metrics (scikit-learn's definitions) and the decision-threshold search."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)  # candidate thresholds, 0.05 .. 0.95


def multilabel_metrics(y_true, y_pred, label_names: Sequence[str] | None = None) -> dict:
    """Metrics of multi-hot predictions [N, C] against multi-hot targets [N, C].

    Returns {"micro_f1", "macro_f1", "micro_precision", "micro_recall", "exact_match"} (fractions;
    exact_match is sklearn's subset accuracy) and, with `label_names`, "per_label":
    {name: {"precision", "recall", "f1", "support"}}. A label never true nor predicted scores 0
    (sklearn's zero_division=0).
    """
    from sklearn import metrics

    y_true = np.asarray(y_true) > 0.5
    y_pred = np.asarray(y_pred) > 0.5
    if y_true.shape != y_pred.shape:
        raise ValueError(f"targets {y_true.shape} and predictions {y_pred.shape} differ in shape")
    p, r, f, _ = metrics.precision_recall_fscore_support(y_true, y_pred, average="micro", zero_division=0)
    out = {"micro_f1": float(f), "micro_precision": float(p), "micro_recall": float(r),
           "macro_f1": float(metrics.f1_score(y_true, y_pred, average="macro", zero_division=0)),
           "exact_match": float(metrics.accuracy_score(y_true, y_pred))}
    if label_names is not None:
        p, r, f, support = metrics.precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
        out["per_label"] = {name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                                   "support": int(support[i])} for i, name in enumerate(label_names)}
    return out


def tune_threshold(y_true, probabilities) -> float:
    """The threshold on THRESHOLD_GRID whose decisions (p >= t) give the best micro-F1; ties go to
    the threshold closest to 0.5."""
    y_true = np.asarray(y_true) > 0.5
    scores = [_micro_f1(y_true, probabilities >= t) for t in THRESHOLD_GRID]
    best = max(scores)
    return float(min((t for t, s in zip(THRESHOLD_GRID, scores) if s == best), key=lambda t: abs(t - 0.5)))


def tune_label_thresholds(y_true, probabilities, fallback: float) -> list[float]:
    """Per label, the threshold on THRESHOLD_GRID with the best F1 of that label; `fallback` for a
    label with no positive example in y_true (nothing to tune on)."""
    y_true = np.asarray(y_true) > 0.5
    thresholds = []
    for j in range(y_true.shape[1]):
        if not y_true[:, j].any():
            thresholds.append(float(fallback))
            continue
        scores = [_micro_f1(y_true[:, j:j + 1], probabilities[:, j:j + 1] >= t) for t in THRESHOLD_GRID]
        best = max(scores)
        thresholds.append(float(min((t for t, s in zip(THRESHOLD_GRID, scores) if s == best),
                                    key=lambda t: abs(t - fallback))))
    return thresholds


def _micro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    tp = np.sum(y_true & y_pred)
    denom = np.sum(y_true) + np.sum(y_pred)
    return float(2 * tp / denom) if denom else 0.0
