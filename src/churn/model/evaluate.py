"""Out-of-time metrics on the test cutoff, and the curves behind them.

Accuracy is meaningless at an 80 % churn base rate, so the report is about
ranking (ROC-AUC, PR-AUC, top-decile lift) and probability quality (Brier,
log loss), always next to the base rate and the simple baselines.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

_EPS = 1e-6


def top_decile_lift(y_true: np.ndarray, score: np.ndarray) -> float:
    """Churn rate among the 10 % highest scores over the overall churn rate."""
    n_top = max(1, int(np.ceil(0.1 * len(score))))
    top = np.argsort(-score, kind="stable")[:n_top]
    base = float(np.mean(y_true))
    return float(np.mean(y_true[top]) / base) if base > 0 else float("nan")


def classification_metrics(y_true: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """The metric set of metrics/eval.json; probability must be a probability of churn."""
    y = np.asarray(y_true, dtype=int)
    p = np.clip(np.asarray(probability, dtype=float), _EPS, 1 - _EPS)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "top_decile_lift": top_decile_lift(y, p),
        "base_rate": float(np.mean(y)),
        "n": len(y),
    }


def ranking_metrics(y_true: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """For baselines that rank but are not probabilities (e.g. days since last purchase)."""
    y = np.asarray(y_true, dtype=int)
    s = np.asarray(score, dtype=float)
    return {
        "roc_auc": float(roc_auc_score(y, s)),
        "pr_auc": float(average_precision_score(y, s)),
        "top_decile_lift": top_decile_lift(y, s),
    }


def roc_points(y_true: np.ndarray, probability: np.ndarray) -> pd.DataFrame:
    fpr, tpr, _ = roc_curve(y_true, probability, drop_intermediate=True)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr})


def pr_points(y_true: np.ndarray, probability: np.ndarray) -> pd.DataFrame:
    precision, recall, _ = precision_recall_curve(y_true, probability, drop_intermediate=True)
    return pd.DataFrame({"recall": recall, "precision": precision})


def calibration_points(y_true: np.ndarray, probability: np.ndarray, bins: int) -> pd.DataFrame:
    """Reliability diagram on equal-count bins, so every point rests on the same evidence."""
    frame = pd.DataFrame({"y": np.asarray(y_true, dtype=float), "p": probability})
    frame["bin"] = pd.qcut(frame["p"].rank(method="first"), q=bins, labels=False)
    grouped = frame.groupby("bin").agg(
        mean_predicted=("p", "mean"), observed_rate=("y", "mean"), n=("y", "size")
    )
    return grouped.reset_index(drop=True)
