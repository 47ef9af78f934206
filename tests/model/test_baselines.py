"""The baselines are honest: a logistic regression that heavy tails cannot saturate, the
BTYD baselines read straight from their features, rankings judged on unclipped scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from churn.model import evaluate as ev
from churn.model.baselines import BASELINES, baseline_probabilities


def _split(n: int, seed: int, split: str) -> pd.DataFrame:
    """Snapshot-like rows: churn driven by recency and frequency; revenue heavy-tailed, with
    a few 1e6 whales (as real retail logs have) that say nothing about churn."""
    rng = np.random.default_rng(seed)
    recency = rng.exponential(60, n)
    orders = 1 + rng.poisson(3, n)
    revenue = orders * rng.lognormal(3.5, 1.0, n)
    revenue[rng.random(n) < 0.01] = 1e6
    logit = 0.02 * (recency - 60) - 0.3 * (orders - 4) + 1.0
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int8")
    return pd.DataFrame(
        {
            "customer_id": [f"{split}{i}" for i in range(n)],
            "cutoff": pd.Timestamp("2024-01-01"),
            "split": split,
            "recency_days": recency,
            "n_orders": orders,
            "revenue": revenue,
            "max_order_value": revenue / orders * rng.uniform(1, 2, n),
            "churned": churned,
        }
    )


@pytest.fixture(scope="module")
def splits() -> dict[str, pd.DataFrame]:
    return {name: _split(3_000, seed, name) for seed, name in enumerate(("train", "valid", "test"))}


def test_heavy_tailed_money_does_not_saturate_the_logistic_baseline(
    splits: dict[str, pd.DataFrame],
) -> None:
    p = BASELINES["logistic"](splits["train"], splits["valid"], splits["test"])
    y = splits["test"]["churned"].to_numpy()
    saturated = np.mean((p < 1e-3) | (p > 1 - 1e-3))
    assert saturated == 0.0
    whales = splits["test"]["revenue"].to_numpy() == 1e6
    assert p[whales].max() < 0.99 and p[whales].min() > 0.01
    assert roc_auc_score(y, p) > 0.7
    assert np.mean((p - y) ** 2) < np.mean((y.mean() - y) ** 2)  # beats the base rate


def test_the_logistic_baseline_is_deterministic(splits: dict[str, pd.DataFrame]) -> None:
    first = BASELINES["logistic"](splits["train"], splits["valid"], splits["test"])
    second = BASELINES["logistic"](
        splits["train"].copy(), splits["valid"].copy(), splits["test"].copy()
    )
    assert first.tobytes() == second.tobytes()


def test_btyd_baselines_are_their_features(splits: dict[str, pd.DataFrame]) -> None:
    rng = np.random.default_rng(5)
    snapshots = pd.concat(splits.values(), ignore_index=True)
    for column in ("btyd_p_no_purchase", "pnbd_p_no_purchase"):
        snapshots[column] = rng.uniform(0, 1, len(snapshots))
    snapshots["rfm_score"] = rng.integers(3, 16, len(snapshots))
    probabilities = baseline_probabilities(snapshots)
    test = snapshots[snapshots["split"] == "test"]
    assert set(probabilities) == {"recency", "rfm_score", "bgnbd", "pnbd", "logistic"}
    np.testing.assert_array_equal(probabilities["pnbd"], test["pnbd_p_no_purchase"])
    np.testing.assert_array_equal(probabilities["bgnbd"], test["btyd_p_no_purchase"])


def test_auc_is_judged_on_unclipped_scores() -> None:
    """A saturated model's ranking beyond 1 - 1e-6 still counts (it was tied by clipping)."""
    y = np.array([0, 1, 0, 1, 1, 0])
    p = np.array([1 - 1e-9, 1 - 1e-12, 1 - 1e-10, 1 - 1e-13, 0.5, 0.2])
    assert ev.classification_metrics(y, p)["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert ev.classification_metrics(y, p)["roc_auc"] > 0.75  # clipped: 0.5 among the tied
