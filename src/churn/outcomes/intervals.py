"""95 % intervals for contacted-versus-control comparisons, vectorised over groups.

The read-out compares two independent binomial samples (contacted, control) per
group, so the intervals are the ones known to hold their coverage at the sizes a
control group has (a few dozen to a few thousand customers):

* retention difference (lift): Newcombe's hybrid score interval built from two
  Wilson intervals (Newcombe 1998, method 10). The plain Wald interval
  undercovers when a rate is near 0 or 1, which retention rates often are.
* save rate = 1 - churn_contacted / churn_control: the Katz log interval of the
  risk ratio (what ``scipy.stats.contingency.relative_risk`` computes), mapped
  through ``1 - RR``. It stays inside (-inf, 1] as a save rate must.
* revenue per customer difference: Welch's normal interval from group sums and
  sums of squares (revenue is skewed, but group sizes are in the hundreds).

Every input is a NumPy array of group counts; nothing here loops over customers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95
Z = float(stats.norm.ppf(0.5 + LEVEL / 2))


@dataclass(frozen=True)
class Interval:
    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray


def _safe_div(num: np.ndarray | float, den: np.ndarray | float) -> np.ndarray:
    num = np.asarray(num, dtype="float64")
    den = np.asarray(den, dtype="float64")
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def wilson(successes: np.ndarray, n: np.ndarray) -> Interval:
    """Wilson score interval of a binomial proportion (NaN where n is 0)."""
    n = np.asarray(n, dtype="float64")
    p = _safe_div(successes, n)
    z2 = Z * Z
    with np.errstate(divide="ignore", invalid="ignore"):
        centre = _safe_div(p + z2 / (2 * n), 1 + z2 / n)
        half = _safe_div(Z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)), 1 + z2 / n)
    return Interval(p, centre - half, centre + half)


def proportion_difference(
    x1: np.ndarray, n1: np.ndarray, x0: np.ndarray, n0: np.ndarray
) -> Interval:
    """p1 - p0 with Newcombe's hybrid score interval."""
    a, b = wilson(x1, n1), wilson(x0, n0)
    d = a.estimate - b.estimate
    low = d - np.sqrt((a.estimate - a.low) ** 2 + (b.high - b.estimate) ** 2)
    high = d + np.sqrt((a.high - a.estimate) ** 2 + (b.estimate - b.low) ** 2)
    return Interval(d, low, high)


def save_rate(
    churned_contacted: np.ndarray,
    n_contacted: np.ndarray,
    churned_control: np.ndarray,
    n_control: np.ndarray,
) -> Interval:
    """1 - (churn among contacted) / (churn among control), Katz log interval of the ratio.

    A zero count gets the usual 0.5 continuity correction in the interval only,
    so a tiny group still gets a (wide) interval instead of NaN.
    """
    x1 = np.asarray(churned_contacted, dtype="float64")
    x0 = np.asarray(churned_control, dtype="float64")
    n1 = np.asarray(n_contacted, dtype="float64")
    n0 = np.asarray(n_control, dtype="float64")
    ratio = _safe_div(_safe_div(x1, n1), _safe_div(x0, n0))
    zero = (x1 == 0) | (x0 == 0)
    c1, c0 = np.where(zero, x1 + 0.5, x1), np.where(zero, x0 + 0.5, x0)
    m1, m0 = np.where(zero, n1 + 0.5, n1), np.where(zero, n0 + 0.5, n0)
    log_ratio = np.log(_safe_div(_safe_div(c1, m1), _safe_div(c0, m0)))
    se = np.sqrt(_safe_div(1.0, c1) - _safe_div(1.0, m1) + _safe_div(1.0, c0) - _safe_div(1.0, m0))
    valid = (n1 > 0) & (n0 > 0)
    se = np.where(valid, se, np.nan)
    return Interval(1 - ratio, 1 - np.exp(log_ratio + Z * se), 1 - np.exp(log_ratio - Z * se))


def save_rate_variance(
    churned_contacted: np.ndarray,
    n_contacted: np.ndarray,
    churned_control: np.ndarray,
    n_control: np.ndarray,
) -> np.ndarray:
    """Variance of the save-rate estimate (delta method: RR^2 x Var(log RR)), 0.5-corrected."""
    x1 = np.asarray(churned_contacted, dtype="float64") + 0.5
    x0 = np.asarray(churned_control, dtype="float64") + 0.5
    n1 = np.asarray(n_contacted, dtype="float64") + 0.5
    n0 = np.asarray(n_control, dtype="float64") + 0.5
    ratio = (x1 / n1) / (x0 / n0)
    return ratio * ratio * (1 / x1 - 1 / n1 + 1 / x0 - 1 / n0)


def mean_difference(
    sum1: np.ndarray,
    sumsq1: np.ndarray,
    n1: np.ndarray,
    sum0: np.ndarray,
    sumsq0: np.ndarray,
    n0: np.ndarray,
) -> Interval:
    """mean1 - mean0 with Welch's normal interval, from sums and sums of squares."""
    m1, m0 = _safe_div(sum1, n1), _safe_div(sum0, n0)
    n1f = np.asarray(n1, dtype="float64")
    n0f = np.asarray(n0, dtype="float64")
    var1 = _safe_div(np.asarray(sumsq1) - n1f * m1 * m1, n1f - 1)
    var0 = _safe_div(np.asarray(sumsq0) - n0f * m0 * m0, n0f - 1)
    se = np.sqrt(np.clip(_safe_div(var1, n1f), 0, None) + np.clip(_safe_div(var0, n0f), 0, None))
    d = m1 - m0
    return Interval(d, d - Z * se, d + Z * se)
