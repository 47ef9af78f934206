"""BG/NBD and Gamma-Gamma quantities as features, fitted per cutoff on that cutoff's past.

The probabilistic models are the strongest published baselines for
non-contractual churn; feeding their outputs to the classifier lets it start
from their answer and correct it with what they cannot see (seasonality,
rhythm, fading spend). Each cutoff gets its own fit on every customer with a
purchase up to that cutoff (not only the active population: fitting on
recently active customers alone would select on the outcome and understate
dropout), so no future transaction can influence a feature.
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


def btyd_features(history: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """BTYD columns for every row of ``history`` (all customers with a purchase by each cutoff).

    A cutoff whose fit fails (too few customers, degenerate data) gets NaN
    features and a warning; LightGBM treats NaN as missing, so training goes on.
    """
    out = pd.DataFrame(index=history.index, columns=list(BTYD_FEATURES), dtype="float64")
    horizon_weeks = horizon_days / DAYS_PER_WEEK
    for cutoff, group in history.groupby("cutoff", sort=True):
        x, t_x, age, m_x = _inputs(group)
        try:
            bg = BetaGeoModel().fit(x, t_x, age)
        except ValueError as exc:
            log.warning("BG/NBD fit failed at cutoff %s: %s", cutoff, exc)
            continue
        out.loc[group.index, "btyd_p_alive"] = bg.p_alive(x, t_x, age)
        out.loc[group.index, "btyd_p_no_purchase"] = bg.p_no_purchase(horizon_weeks, x, t_x, age)
        out.loc[group.index, "btyd_expected_purchases"] = bg.expected_purchases(
            horizon_weeks, x, t_x, age
        )
        repeat_spend_ok = (x > 0) & (m_x > 0)
        try:
            gg = GammaGammaModel().fit(x[repeat_spend_ok], m_x[repeat_spend_ok])
            spend = gg.expected_spend(np.where(repeat_spend_ok, x, 0), m_x)
        except ValueError as exc:
            log.warning("Gamma-Gamma fit failed at cutoff %s: %s", cutoff, exc)
            continue
        out.loc[group.index, "btyd_expected_spend"] = spend
        out.loc[group.index, "expected_value_12m"] = (
            bg.expected_purchases(365 / DAYS_PER_WEEK, x, t_x, age) * spend
        )
    return out
