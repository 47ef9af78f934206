"""Discounted CLV and the next purchase's wait against a Monte Carlo simulation of BG/NBD.

The oracle knows only the individual-level model: (lambda, p) drawn from the
prior, weighted by the likelihood of the customer's history (alive: (1-p)^x
lambda^x e^(-lambda T); dropped after the last purchase: p (1-p)^(x-1) lambda^x
e^(-lambda t_x)), then the alive ones' futures simulated purchase by purchase
(exponential waits, a coin with p after each purchase). No posterior formula,
no hypergeometric function: if the closed forms are wrong, the two disagree.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.features.btyd import BetaGeoModel, GammaGammaModel
from churn.features.btyd_clv import (
    CLV_DISCOUNTED,
    DAYS_PER_MONTH,
    NEXT_PURCHASE,
    LifetimeSettings,
    discounted_purchases,
    median_wait_if_alive,
    next_purchase_weeks,
)
from churn.features.btyd_features import FittedCutoff

MONTH_WEEKS = DAYS_PER_MONTH / 7.0


def _model(r: float, alpha: float, a: float, b: float) -> BetaGeoModel:
    bg = BetaGeoModel()
    bg.r_, bg.alpha_, bg.a_, bg.b_ = r, alpha, a, b
    return bg


def _simulate(
    bg: BetaGeoModel, x: int, t_x: float, age: float, months: int, n: int, seed: int
) -> tuple[np.ndarray, float, float]:
    """(expected purchases per month, P(alive), median first wait given alive)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(bg.r_, 1.0 / bg.alpha_, n)
    p = rng.beta(bg.a_, bg.b_, n)
    alive_w = (1 - p) ** x * lam**x * np.exp(-lam * age)
    dead_w = p * (1 - p) ** (x - 1) * lam**x * np.exp(-lam * t_x) if x > 0 else 0 * lam
    total = alive_w.sum() + np.sum(dead_w)
    counts = np.zeros(months)
    clock = np.zeros(n)
    going = np.ones(n, dtype=bool)
    first_wait = rng.exponential(1.0 / lam)
    clock = first_wait.copy()
    while going.any():
        month = np.floor(clock / MONTH_WEEKS).astype(np.int64)
        going &= month < months
        np.add.at(counts, month[going], alive_w[going])
        going &= rng.random(n) >= p  # dropped out right after this purchase
        clock = clock + rng.exponential(1.0 / lam)
    order = np.argsort(first_wait)
    cumulative = np.cumsum(alive_w[order]) / alive_w.sum()
    median = float(first_wait[order][np.searchsorted(cumulative, 0.5)])
    return counts / total, float(alive_w.sum() / total), median


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_closed_forms_match_a_simulated_bgnbd_process(seed: int) -> None:
    rng = np.random.default_rng(seed)
    bg = _model(r=rng.uniform(0.5, 2.0), alpha=rng.uniform(3, 12), a=rng.uniform(0.5, 1.5),
                b=rng.uniform(2, 6))  # fmt: skip
    x = int(rng.integers(0, 4))
    age = float(rng.uniform(20, 80))
    t_x = float(rng.uniform(0.2, 1.0) * age) if x else 0.0
    months, rate = 24, 0.10
    per_month, p_alive, median = _simulate(bg, x, t_x, age, months, 400_000, seed)

    history = (np.array([x], float), np.array([t_x]), np.array([age]))
    ends = np.arange(1, months + 1) * MONTH_WEEKS
    closed = np.diff(bg.expected_purchases(ends, x, t_x, age), prepend=0.0)
    assert closed == pytest.approx(per_month, rel=0.06, abs=2e-3)
    discount = (1 + rate) ** (-np.arange(1, months + 1) / 12)
    got = discounted_purchases(bg, history, months, rate)[0]
    assert got == pytest.approx(float(discount @ per_month), rel=0.04)
    assert bg.p_alive(x, t_x, age)[0] == pytest.approx(p_alive, abs=0.01)
    assert median_wait_if_alive(bg, history[0], history[2])[0] == pytest.approx(median, rel=0.03)


def test_discounting_and_the_12_month_value_agree() -> None:
    """Undiscounted, 12 months of the monthly sum are the 12-month expectation; a
    positive rate lowers the value and a longer horizon raises it."""
    bg = _model(0.9, 6.0, 0.8, 3.0)
    history = (np.array([0.0, 2.0, 5.0]), np.array([0.0, 10.0, 40.0]), np.array([30.0, 50.0, 52.0]))
    year = bg.expected_purchases(12 * MONTH_WEEKS, *history)
    assert discounted_purchases(bg, history, 12, 0.0) == pytest.approx(year, rel=1e-9)
    assert np.all(discounted_purchases(bg, history, 12, 0.2) < year)
    assert np.all(discounted_purchases(bg, history, 36, 0.1) > year)
    first = bg.expected_purchases(MONTH_WEEKS, *history)  # month 1 is discounted by 1/12 year
    assert discounted_purchases(bg, history, 1, 0.5) == pytest.approx(first / 1.5 ** (1 / 12))


def test_next_purchase_is_empty_when_probably_gone_or_beyond_the_data() -> None:
    bg = _model(0.9, 6.0, 0.8, 3.0)
    # A loyal recent buyer, one gone quiet for a year after a busy start, a one-time buyer.
    history = (np.array([6.0, 6.0, 0.0]), np.array([50.0, 5.0, 0.0]), np.array([52.0, 60.0, 4.0]))
    p_alive = bg.p_alive(*history)
    assert p_alive[0] > 0.5 > p_alive[1]
    wait = next_purchase_weeks(bg, history, min_p_alive=0.5, span_weeks=60.0)
    assert np.isfinite(wait[0]) and np.isnan(wait[1]) and np.isfinite(wait[2])
    short = next_purchase_weeks(bg, history, min_p_alive=0.0, span_weeks=float(wait[2]) - 1e-6)
    assert np.isnan(short[2]) and np.isfinite(short[1])


def test_fitted_cutoff_gives_dates_and_values_per_row() -> None:
    """Per distinct history, spread to rows: equal histories get equal dates, value
    scales with each row's expected spend, and the date is the cutoff + the wait."""
    bg = _model(0.9, 6.0, 0.8, 3.0)
    gg = GammaGammaModel()
    gg.p_, gg.q_, gg.v_ = 6.0, 4.0, 15.0
    life = LifetimeSettings(discount_rate_annual=0.1, clv_months=36, min_p_alive=0.5)
    fitted = FittedCutoff(90 / 7, bg, gg, None, life, span_weeks=200.0)
    rows = pd.DataFrame(
        {
            "cutoff": pd.Timestamp("2026-01-01"),
            "n_purchase_days": [4, 4, 1, 7],
            "revenue": [40.0, 400.0, 10.0, 70.0],
            "tenure_days": [300.0, 300.0, 20.0, 400.0],
            "recency_days": [10.0, 10.0, 20.0, 390.0],
        }
    )
    out = fitted.predict(rows)
    assert out[NEXT_PURCHASE].iloc[0] == out[NEXT_PURCHASE].iloc[1]
    assert out[CLV_DISCOUNTED].iloc[1] > out[CLV_DISCOUNTED].iloc[0] > 0
    wait = median_wait_if_alive(bg, np.array([3.0]), np.array([300 / 7]))[0]
    expected = (pd.Timestamp("2026-01-01") + pd.Timedelta(days=7 * wait)).floor("D")
    assert out[NEXT_PURCHASE].iloc[0] == expected
    assert pd.isna(out[NEXT_PURCHASE].iloc[3])  # 7 purchase days, then 13 months of silence
    assert out[CLV_DISCOUNTED].iloc[3] < out[CLV_DISCOUNTED].iloc[0]
    assert NEXT_PURCHASE not in FittedCutoff(90 / 7, bg, gg).predict(rows)


def test_shared_if_alive_terms_equal_the_direct_monthly_sum() -> None:
    """The month ends are evaluated per distinct (x, T), not per history: the result is
    still BG/NBD's own expectation for every (x, t_x, T)."""
    rng = np.random.default_rng(5)
    bg = _model(0.24, 4.4, 0.79, 2.4)
    n = 300
    age = rng.integers(1, 60, n).astype(float)
    x = rng.poisson(2, n).astype(float)
    t_x = np.where(x > 0, np.floor(rng.uniform(0, 1, n) * age), 0.0)
    months = 36
    ends = np.arange(1, months + 1) * MONTH_WEEKS
    cumulative = np.stack([bg.expected_purchases(end, x, t_x, age) for end in ends])
    discount = 1.1 ** (-np.arange(1, months + 1) / 12)
    direct = discount @ np.diff(cumulative, axis=0, prepend=0.0)
    got = discounted_purchases(bg, (x, t_x, age), months, 0.1)
    assert got == pytest.approx(direct, rel=1e-9)
