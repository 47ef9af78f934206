"""Metric helpers against hand-computed values."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from churn.model.evaluate import calibration_points, classification_metrics, top_decile_lift


def test_top_decile_lift_by_hand() -> None:
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0] * 2)
    score = np.linspace(1, 0, 20)  # the two highest scores are both churners
    # top 10 % = 2 rows, both churners: rate 1.0 over a base rate of 0.2
    assert top_decile_lift(y, score) == 5.0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.floats(0.01, 0.99)), min_size=20, max_size=200))
def test_metrics_are_in_range_and_consistent(rows: list[tuple[bool, float]]) -> None:
    y = np.array([int(r[0]) for r in rows])
    p = np.array([r[1] for r in rows])
    if y.min() == y.max():
        return
    m = classification_metrics(y, p)
    assert 0 <= m["roc_auc"] <= 1 and 0 <= m["brier"] <= 1
    assert np.isclose(m["brier"], np.mean((p - y) ** 2))
    assert m["n"] == len(y) and np.isclose(m["base_rate"], y.mean())


def test_calibration_bins_have_equal_counts_and_match_means() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(1_000)
    y = (rng.random(1_000) < p).astype(int)
    table = calibration_points(y, p, bins=10)
    assert (table["n"] == 100).all()
    assert np.allclose(table["mean_predicted"], table["observed_rate"], atol=0.1)
    assert table["mean_predicted"].is_monotonic_increasing
