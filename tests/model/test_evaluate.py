"""Metric helpers against hand-computed values."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churn.model.evaluate import (
    bootstrap_intervals,
    calibration_points,
    classification_metrics,
    paired_margins,
    top_decile_lift,
)
from churn.progress import progress


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


def test_paired_margins_see_a_consistent_gain_that_marginal_intervals_hide() -> None:
    rng = np.random.default_rng(1)
    n = 3_000
    truth = rng.normal(size=n)
    y = (truth + rng.normal(size=n) > 0).astype(int)
    shared = rng.normal(size=n)  # noise both scores share: it widens each marginal interval
    baseline = 1 / (1 + np.exp(-(truth + shared + 1.0 * rng.normal(size=n))))
    better = 1 / (1 + np.exp(-(truth + shared + 0.3 * rng.normal(size=n))))
    margins = paired_margins(y, better, baseline, n_boot=200, seed=0)
    marginal = bootstrap_intervals(y, baseline, 200, 0)
    assert margins["roc_auc_margin"] > 0
    assert margins["roc_auc_margin_ci_low"] > 0  # the paired interval excludes zero
    assert margins["roc_auc_margin"] < marginal["roc_auc_ci_high"] - marginal["roc_auc_ci_low"]
    assert np.isclose(
        margins["brier_margin"], np.mean((baseline - y) ** 2) - np.mean((better - y) ** 2)
    )
    same = paired_margins(y, baseline, baseline, n_boot=50, seed=0)
    assert same["roc_auc_margin"] == 0 and same["roc_auc_margin_ci_high"] == 0


def test_bootstrap_resamples_are_counted_for_the_progress_display(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERM", "dumb")  # not a terminal: log lines, no bar
    caplog.set_level(logging.INFO, logger="churn.progress")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p, b = rng.random(300), rng.random(300)
    with progress("evaluate", 2 * 50, "bootstrap resamples") as shown:
        bootstrap_intervals(y, p, 50, 0, shown)
        paired_margins(y, p, b, 50, 0, shown)
    lines = [r.getMessage() for r in caplog.records if r.name == "churn.progress"]
    assert len(lines) == 10
    assert lines[-1].startswith("evaluate: 100/100 bootstrap resamples (100 %)")
