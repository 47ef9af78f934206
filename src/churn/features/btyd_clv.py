"""Discounted customer lifetime value and the expected next purchase date, from BG/NBD.

These are what marketing asks the CLV libraries for beside the 12-month value:
"what is this customer worth over their life, in today's money" and "when do we
expect them back". Both come from the BG/NBD and Gamma-Gamma fits the features
stage already makes per cutoff, so they cost no new fit. They are written to the
scoring snapshot only (not the labelled cutoffs): they are functions of the BTYD
features the model already has, so they stay out of the model and serve people.

Discounted CLV is the sum over months m = 1..M of the expected purchases in month
m (the difference of BG/NBD's conditional expectation at the month's ends) times
the Gamma-Gamma expected spend, discounted by (1 + d)^(m / 12): the monthly sum
rather than Pareto/NBD's closed-form DERT, because BG/NBD is the model whose
expected purchases already make the 12-month value, so the two values agree in
the first year (undiscounted, the first 12 months are exactly the 12-month value).

The next purchase: an alive BG/NBD customer cannot drop out before buying again
(dropout happens only right after a purchase), and given alive their purchase
rate is Gamma(r + x, alpha + T), so the wait W to the next purchase has
P(W > w | alive) = ((alpha + T) / (alpha + T + w))^(r + x) exactly; its median
is (alpha + T) (2^(1 / (r + x)) - 1). The median, not the mean: the mean is
infinite when r + x <= 1 (most one-time buyers). Left empty when the customer is
probably gone (P(alive) below a threshold) or the median lies further ahead than
the longest history the fit saw: a date beyond anything observed is a guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from churn.features.btyd import BetaGeoModel
from churn.features.distinct import distinct_rows
from churn.portable_math import exp, expm1, log1p

DAYS_PER_WEEK = 7.0
DAYS_PER_MONTH = 365.25 / 12
# The columns the scoring snapshot gets: a date (NaT = not expected) and a value.
NEXT_PURCHASE = "next_purchase_date"
CLV_DISCOUNTED = "clv_discounted"
CLV_COLUMNS = (NEXT_PURCHASE, CLV_DISCOUNTED)


@dataclass(frozen=True)
class LifetimeSettings:
    """The knobs of features.discount_rate_annual, clv_months and next_purchase_min_p_alive."""

    discount_rate_annual: float = 0.10
    clv_months: int = 36
    min_p_alive: float = 0.5


def discounted_purchases(
    bg: BetaGeoModel,
    history: tuple[np.ndarray, np.ndarray, np.ndarray],
    months: int,
    discount_rate_annual: float,
    alive: np.ndarray | None = None,
) -> np.ndarray:
    """Sum over months m of E[purchases in month m | history] / (1 + d)^(m / 12).

    ``history`` is (x, t_x, T) in weeks, one row per distinct history; ``alive`` its
    P(alive) when the caller has it. BG/NBD's expectation is P(alive | x, t_x, T) x
    E[purchases | alive, x, T], and the second factor does not depend on t_x: the month
    ends (the expensive 2F1 terms, ~36 per row) are evaluated once per distinct (x, T),
    far fewer than distinct histories.
    """
    x, t_x, age = history
    pairs, index = distinct_rows((x, age), (1.0, DAYS_PER_WEEK))
    px, page = pairs.T
    n = len(px)
    ends = np.arange(1, months + 1) * DAYS_PER_MONTH / DAYS_PER_WEEK
    cumulative = bg.expected_if_alive(
        np.repeat(ends, n), np.tile(px, months), np.tile(page, months)
    ).reshape(months, n)
    monthly = np.diff(cumulative, axis=0, prepend=0.0)
    discount = exp(-np.arange(1, months + 1) / 12.0 * float(log1p(discount_rate_annual)))
    # Month by month, not a BLAS product: these bits are a DVC output, the same on every
    # CPU and thread count (a BLAS kernel's order of additions is not).
    if_alive = np.zeros(n)
    for weight, purchases in zip(discount, monthly, strict=True):
        if_alive += weight * purchases
    alive = bg.p_alive(x, t_x, age) if alive is None else alive
    return np.asarray(alive * if_alive[index], dtype=np.float64)


def median_wait_if_alive(bg: BetaGeoModel, x: np.ndarray, age: np.ndarray) -> np.ndarray:
    """Median weeks from T to the next purchase, given the customer is alive at T."""
    return np.asarray((bg.alpha_ + age) * expm1(math.log(2.0) / (bg.r_ + x)), dtype=np.float64)


def next_purchase_weeks(
    bg: BetaGeoModel,
    history: tuple[np.ndarray, np.ndarray, np.ndarray],
    min_p_alive: float,
    span_weeks: float,
    alive: np.ndarray | None = None,
) -> np.ndarray:
    """The median wait in weeks, NaN where P(alive) (``alive``, when the caller has it)
    is below ``min_p_alive`` or the wait is longer than ``span_weeks`` (the longest
    history the fit saw)."""
    x, t_x, age = history
    wait = median_wait_if_alive(bg, x, age)
    alive = bg.p_alive(x, t_x, age) if alive is None else alive
    unlikely = (alive < min_p_alive) | (wait > span_weeks)
    return np.where(unlikely, np.nan, wait)
