"""The measured save rate's 95 % interval covers the true rate about 95 % of the time.

Quickly simulated lists (tests/outcomes/quick_lists.py) with a known true effect per
action, measured by the real read-out (DuckDB on Parquet): 200 replications of three
actions each, so 600 intervals; the count that cover the truth must lie within a
binomial tolerance (3 standard deviations) of 95 %.
"""

from __future__ import annotations

import numpy as np
import pytest
from quick_lists import simulate_replications

from churn.outcomes.campaigns import read_out

EFFECTS = {"Personal call": 0.30, "Loyalty offer": 0.15, "Win-back email": 0.05}


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    folder = tmp_path_factory.mktemp("coverage")
    lists, tx, truth = simulate_replications(np.random.default_rng(16), folder, EFFECTS, 200)
    out = read_out([lists], tx, horizon_days=90, campaign_days=30)
    return out.intent_to_treat.by_action, truth


def _within_tolerance(hits: np.ndarray, nominal: float = 0.95) -> None:
    n = hits.size
    sd = np.sqrt(nominal * (1 - nominal) / n)
    assert abs(hits.mean() - nominal) <= 3 * sd, f"coverage {hits.mean():.3f} over {n}"


def test_save_rate_interval_covers_the_truth_at_the_nominal_rate(measured: tuple) -> None:
    by_action, truth = measured
    rates = {k: t for k, t in truth.items() if not k.startswith("lift:")}
    assert set(by_action) == set(rates)
    hits = np.array(
        [
            by_action[k].save_rate_ci_low <= t <= by_action[k].save_rate_ci_high
            for k, t in rates.items()
        ]
    )
    _within_tolerance(hits)


def test_lift_interval_covers_the_true_retention_difference(measured: tuple) -> None:
    by_action, truth = measured
    hits = [
        by_action[k[len("lift:") :]].lift_ci_low <= t <= by_action[k[len("lift:") :]].lift_ci_high
        for k, t in truth.items()
        if k.startswith("lift:")
    ]
    assert len(hits) == 600
    _within_tolerance(np.array(hits))
