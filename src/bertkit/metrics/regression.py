"""Regression metrics: Pearson and Spearman correlation (scipy.stats, as GLUE's STS-B scoring) and
the mean squared error."""

from __future__ import annotations

import numpy as np


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    """{"pearson", "spearman", "mse"} of float predictions [N] against float targets [N].

    Correlations are in [-1, 1]; they are 0.0 where undefined (fewer than 2 rows, or a constant
    side), instead of scipy's nan, so a dev score can always be compared.
    """
    from scipy import stats

    y_true = np.asarray(y_true, dtype=np.float64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_true.shape[0]} targets but {y_pred.shape[0]} predictions")
    defined = len(y_true) > 1 and np.ptp(y_true) > 0 and np.ptp(y_pred) > 0
    return {
        "pearson": float(stats.pearsonr(y_true, y_pred).statistic) if defined else 0.0,
        "spearman": float(stats.spearmanr(y_true, y_pred).statistic) if defined else 0.0,
        "mse": float(np.mean((y_true - y_pred) ** 2)) if len(y_true) else 0.0,
    }
