"""Per-feature contributions behind each churn score, for plain-word reasons.

Exact TreeSHAP (LightGBM ``pred_contrib=True``) costs about 200x a bare
predict, too slow for every customer every night; this module is the one
place that decides how contributions are computed, so reasons, reports and
benchmarks all get the same numbers.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd


def contributions(booster: lgb.Booster, matrix: pd.DataFrame) -> np.ndarray:
    """Raw-score contributions, shape (rows, features + 1); the last column is the bias.

    Each row sums to the booster's raw (log-odds) score for that row.
    """
    if matrix.empty:
        return np.zeros((0, matrix.shape[1] + 1))
    return np.asarray(booster.predict(matrix, pred_contrib=True), dtype="float64")
