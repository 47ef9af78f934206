"""BG/NBD and Gamma-Gamma quantities as features, fitted per cutoff on that cutoff's past.

The probabilistic models are the strongest published baselines for
non-contractual churn; feeding their outputs to the classifier lets it start
from their answer and correct it with what they cannot see (seasonality,
rhythm, fading spend). Each cutoff gets its own fit on the customers with a
purchase up to that cutoff (not only the active population: fitting on
recently active customers alone would select on the outcome and understate
dropout), so no future transaction can influence a feature. Above a few
hundred thousand customers the fit uses a fixed hashed sample of them: four
parameters are pinned long before that, and the fit stays seconds per cutoff.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from churn.features.btyd import BetaGeoModel, GammaGammaModel

log = logging.getLogger(__name__)

DAYS_PER_WEEK = 7.0
BTYD_FEATURES = (
    "btyd_p_alive",
    "btyd_p_no_purchase",
    "btyd_expected_purchases",
    "btyd_expected_spend",
    "expected_value_12m",
)


def _inputs(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T, m_x) in weeks from the snapshot's own RFM columns."""
    x = frame["n_orders"].to_numpy(dtype=float) - 1
    age = frame["tenure_days"].to_numpy(dtype=float) / DAYS_PER_WEEK
    t_x = age - frame["recency_days"].to_numpy(dtype=float) / DAYS_PER_WEEK
    m_x = frame["avg_order_value"].to_numpy(dtype=float)
    return x, np.clip(t_x, 0.0, age), age, m_x


def fit_sample(customer_ids: pd.Series, n: int) -> np.ndarray:
    """True for a fixed pseudo-random set of about ``n`` customers, stable across cutoffs and runs.

    A customer is in when the hash of their id is among the ``n`` smallest of
    all ids present; pandas' hash has a fixed key, so the same customer is in
    at every cutoff and in every run, and the fits of neighbouring cutoffs see
    the same people (their parameters move with the data, not with the draw).
    """
    hashes = pd.util.hash_array(customer_ids.to_numpy(dtype=object))
    distinct = np.unique(hashes)
    if len(distinct) <= n:
        return np.ones(len(hashes), dtype=bool)
    return np.asarray(hashes <= np.partition(distinct, n - 1)[n - 1])


def btyd_features(
    history: pd.DataFrame, horizon_days: int, fit_customers: int | None = None
) -> pd.DataFrame:
    """BTYD columns for every row of ``history`` (all customers with a purchase by each cutoff).

    Each cutoff is fitted on its rows among a fixed hashed sample of
    ``fit_customers`` customers (all when None or more than there are), warm-started
    from the previous cutoff's parameters; every row is predicted. A cutoff
    whose fit fails (too few customers, degenerate data) gets NaN features and
    a warning; LightGBM treats NaN as missing, so training goes on.
    """
    out = {name: np.full(len(history), np.nan) for name in BTYD_FEATURES}
    horizon_weeks = horizon_days / DAYS_PER_WEEK
    in_fit = (
        np.ones(len(history), dtype=bool)
        if fit_customers is None
        else fit_sample(history["customer_id"], fit_customers)
    )
    bg_start: tuple[float, ...] | None = None
    gg_start: tuple[float, ...] | None = None
    for cutoff, rows in history.groupby("cutoff", sort=True).indices.items():
        group = history.iloc[rows]
        x, t_x, age, m_x = _inputs(group)
        fit = in_fit[rows]
        try:
            bg = BetaGeoModel().fit(x[fit], t_x[fit], age[fit], start=bg_start)
        except ValueError as exc:
            log.warning("BG/NBD fit failed at cutoff %s: %s", cutoff, exc)
            continue
        bg_start = (bg.r_, bg.alpha_, bg.a_, bg.b_)
        out["btyd_p_alive"][rows] = bg.p_alive(x, t_x, age)
        out["btyd_p_no_purchase"][rows] = bg.p_no_purchase(horizon_weeks, x, t_x, age)
        out["btyd_expected_purchases"][rows] = bg.expected_purchases(horizon_weeks, x, t_x, age)
        repeat_spend_ok = (x > 0) & (m_x > 0)
        fit_spend = repeat_spend_ok & fit
        try:
            gg = GammaGammaModel().fit(x[fit_spend], m_x[fit_spend], start=gg_start)
            spend = gg.expected_spend(np.where(repeat_spend_ok, x, 0), m_x)
        except ValueError as exc:
            log.warning("Gamma-Gamma fit failed at cutoff %s: %s", cutoff, exc)
            continue
        gg_start = (gg.p_, gg.q_, gg.v_)
        out["btyd_expected_spend"][rows] = spend
        out["expected_value_12m"][rows] = (
            bg.expected_purchases(365 / DAYS_PER_WEEK, x, t_x, age) * spend
        )
    return pd.DataFrame(out, index=history.index)
