"""Recency weights in training: when churn's drivers drift, the weighted model follows them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from churn.config import TrainConfig
from churn.model.linear_part import fit_linear_part, linear_features
from churn.model.logistic import fit_logistic
from churn.model.recency import cutoff_weights
from churn.model.train import train_model

CONFIG = TrainConfig(n_estimators=40, early_stopping_rounds=10, min_customers=100, num_threads=1)


def _drifting(n_customers: int = 800, n_cutoffs: int = 10, seed: int = 0) -> pd.DataFrame:
    """Snapshots whose churn follows ``a`` at the oldest cutoff and ``b`` at the newest,
    the weight moving linearly between them; split train / valid / test by cutoff."""
    rng = np.random.default_rng(seed)
    cutoffs = pd.date_range("2023-01-31", periods=n_cutoffs, freq="30D")
    frames = []
    for i, cutoff in enumerate(cutoffs):
        a, b = rng.normal(size=n_customers), rng.normal(size=n_customers)
        share = i / (n_cutoffs - 1)
        churn = rng.random(n_customers) < 1 / (1 + np.exp(-3 * ((1 - share) * a + share * b)))
        split = "test" if i == n_cutoffs - 1 else "valid" if i == n_cutoffs - 4 else "train"
        if n_cutoffs - 4 < i < n_cutoffs - 1:
            continue  # the label windows between validation and test (gap of one horizon)
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": [f"c{k}" for k in range(n_customers)],
                    "cutoff": cutoff,
                    "split": split,
                    "a": a,
                    "b": b,
                    "churned": churn.astype(int),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def snapshots() -> pd.DataFrame:
    return _drifting()


def _test_auc(snapshots: pd.DataFrame, half_life: float | None) -> dict[str, float]:
    result = train_model(snapshots, CONFIG.model_copy(update={"recency_half_life": half_life}))
    test = snapshots[snapshots["split"] == "test"]
    assert result.model.ensemble is not None
    out = {"served": float(roc_auc_score(test["churned"], result.model.churn_probability(test)))}
    for name, p in result.model.candidate_probabilities(test).items():
        out[name] = float(roc_auc_score(test["churned"], p))
    return out


def test_recency_weights_follow_drifting_drivers(snapshots: pd.DataFrame) -> None:
    equal, weighted = _test_auc(snapshots, None), _test_auc(snapshots, 1.0)
    for name in ("lightgbm", "logistic", "served"):
        assert weighted[name] > equal[name] + 0.005, (name, equal, weighted)


def test_the_logistic_part_uses_the_row_weights(snapshots: pd.DataFrame) -> None:
    rows = snapshots[snapshots["split"] == "train"]
    part = fit_linear_part(rows, c=0.1, weight=cutoff_weights(rows, 2.0))
    x = part.transform.transform(rows[linear_features(rows)].to_numpy(dtype=float))
    expected = fit_logistic(x, rows["churned"], c=0.1, weight=cutoff_weights(rows, 2.0))
    np.testing.assert_allclose(part.coef, expected.coef, rtol=1e-12)
    assert not np.allclose(part.coef, fit_linear_part(rows, c=0.1).coef, rtol=1e-3)
