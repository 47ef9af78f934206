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

from churn.progress import SILENT, Progress

_EPS = 1e-6


def top_decile_lift(y_true: np.ndarray, score: np.ndarray) -> float:
    """Churn rate among the 10 % highest scores over the overall churn rate."""
    n_top = max(1, int(np.ceil(0.1 * len(score))))
    top = np.argsort(-score, kind="stable")[:n_top]
    base = float(np.mean(y_true))
    return float(np.mean(y_true[top]) / base) if base > 0 else float("nan")


def expected_calibration_error(
    y_true: np.ndarray, probability: np.ndarray, bins: int = 10
) -> float:
    """Mean |observed rate - mean prediction| over equal-count bins, weighted by bin size."""
    table = calibration_points(y_true, probability, bins)
    weights = table["n"] / table["n"].sum()
    return float((weights * (table["observed_rate"] - table["mean_predicted"]).abs()).sum())


def classification_metrics(y_true: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """The metric set of metrics/eval.json; probability must be a probability of churn.

    Rankings (ROC-AUC, PR-AUC) come from the unclipped scores: clipping ties every
    probability beyond 1e-15 of 0 or 1, which hid a saturated model's ranking."""
    y = np.asarray(y_true, dtype=int)
    raw = np.asarray(probability, dtype=float)
    p = np.clip(raw, _EPS, 1 - _EPS)
    return {
        "roc_auc": float(roc_auc_score(y, raw)),
        "pr_auc": float(average_precision_score(y, raw)),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "top_decile_lift": top_decile_lift(y, p),
        "ece": expected_calibration_error(y, p),
        "base_rate": float(np.mean(y)),
        "n": len(y),
    }


def budget_metrics(y_true: np.ndarray, score: np.ndarray, contacts: int) -> dict[str, float]:
    """Precision and recall when marketing can contact only the ``contacts`` riskiest."""
    y = np.asarray(y_true, dtype=int)
    k = max(1, min(contacts, len(y)))
    top = np.argsort(-np.asarray(score, dtype=float), kind="stable")[:k]
    churners = max(int(y.sum()), 1)
    return {
        "precision_at_budget": float(y[top].mean()),
        "recall_at_budget": float(y[top].sum() / churners),
        "budget_contacts": k,
    }


def _bootstrap_samples(y: np.ndarray, n_boot: int, seed: int) -> list[np.ndarray]:
    """Row indices of ``n_boot`` resamples of the test customers, each holding both classes."""
    rng = np.random.default_rng(seed)
    samples = [rng.integers(0, len(y), len(y)) for _ in range(n_boot)]
    return [idx for idx in samples if y[idx].min() != y[idx].max()]


def bootstrap_intervals(
    y_true: np.ndarray,
    probability: np.ndarray,
    n_boot: int,
    seed: int,
    shown: Progress = SILENT,
) -> dict[str, float]:
    """95 % percentile intervals for AUC and Brier, resampling test customers.

    Without them a 0.003 AUC "gain" between experiments looks like progress.
    ``shown`` counts the resamples (the slow part of `churn evaluate`).
    """
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(probability, dtype=float)
    samples = _bootstrap_samples(y, n_boot, seed)
    aucs = [roc_auc_score(y[idx], p[idx]) for idx in shown.track(samples)]
    briers = [np.mean((p[idx] - y[idx]) ** 2) for idx in samples]
    auc_low, auc_high = np.percentile(aucs, [2.5, 97.5])
    brier_low, brier_high = np.percentile(briers, [2.5, 97.5])
    return {
        "roc_auc_ci_low": float(auc_low),
        "roc_auc_ci_high": float(auc_high),
        "brier_ci_low": float(brier_low),
        "brier_ci_high": float(brier_high),
    }


def paired_margins(
    y_true: np.ndarray,
    probability: np.ndarray,
    baseline: np.ndarray,
    n_boot: int,
    seed: int,
    shown: Progress = SILENT,
) -> dict[str, float]:
    """How much the model beats a baseline, with 95 % intervals from paired resamples.

    Both scores are judged on the same resampled customers, so the interval is
    about the difference itself; two overlapping marginal intervals can still
    hide a margin that is consistently above zero. Positive means the model is
    better: AUC margin = model - baseline, Brier margin = baseline - model.
    """
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(probability, dtype=float)
    b = np.asarray(baseline, dtype=float)
    out = {
        "roc_auc_margin": float(roc_auc_score(y, p) - roc_auc_score(y, b)),
        "brier_margin": float(np.mean((b - y) ** 2) - np.mean((p - y) ** 2)),
    }
    samples = _bootstrap_samples(y, n_boot, seed)
    if not samples:
        return out
    auc = [roc_auc_score(y[i], p[i]) - roc_auc_score(y[i], b[i]) for i in shown.track(samples)]
    brier = [np.mean((b[i] - y[i]) ** 2) - np.mean((p[i] - y[i]) ** 2) for i in samples]
    for name, values in (("roc_auc_margin", auc), ("brier_margin", brier)):
        low, high = np.percentile(values, [2.5, 97.5])
        out[f"{name}_ci_low"] = float(low)
        out[f"{name}_ci_high"] = float(high)
    return out


def gains_points(y_true: np.ndarray, score: np.ndarray, steps: int = 20) -> pd.DataFrame:
    """Cumulative gains: share of all churners found when contacting the top x % by score."""
    y = np.asarray(y_true, dtype=float)[np.argsort(-np.asarray(score, dtype=float), kind="stable")]
    share = np.linspace(0, 1, steps + 1)
    counts = np.round(share * len(y)).astype(int)
    found = np.concatenate([[0.0], np.cumsum(y)])[counts] / max(y.sum(), 1.0)
    lift = np.divide(found, share, out=np.ones_like(found), where=share > 0)
    return pd.DataFrame({"contacted_share": share, "churners_found_share": found, "lift": lift})


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


def feature_importance(booster: object, features: list[str]) -> pd.DataFrame:
    """Total split gain per feature, largest first."""
    gains = booster.feature_importance(importance_type="gain")  # type: ignore[attr-defined]
    table = pd.DataFrame({"feature": features, "gain": np.asarray(gains, dtype=float)})
    return table.sort_values("gain", ascending=False, ignore_index=True)


def shap_summary(booster: object, matrix: pd.DataFrame, sample: int, seed: int) -> pd.DataFrame:
    """Mean |SHAP| per feature from LightGBM's own TreeSHAP (pred_contrib) on a sample."""
    rows = matrix.sample(min(sample, len(matrix)), random_state=seed)
    contrib = booster.predict(rows, pred_contrib=True)  # type: ignore[attr-defined]
    values = np.abs(np.asarray(contrib)[:, :-1]).mean(axis=0)  # last column is the bias
    table = pd.DataFrame({"feature": list(matrix.columns), "mean_abs_shap": values})
    return table.sort_values("mean_abs_shap", ascending=False, ignore_index=True)
