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


def _hashes(customer_ids: pd.Series) -> np.ndarray:
    return pd.util.hash_array(customer_ids.to_numpy(dtype=object))


def sample_threshold(customer_ids: pd.Series, n: int | None) -> int | None:
    """The hash at or below which a customer is in the fit sample; None = everyone.

    The sample is the ``n`` customers (of ``customer_ids``, all there are) with
    the smallest hashes of their ids; pandas' hash has a fixed key, so the same
    customer is in at every cutoff and in every run, and the fits of
    neighbouring cutoffs see the same people (their parameters move with the
    data, not with the draw).
    """
    if n is None:
        return None
    distinct = np.unique(_hashes(customer_ids))
    if len(distinct) <= n:
        return None
    return int(np.partition(distinct, n - 1)[n - 1])


def fit_sample(customer_ids: pd.Series, n: int | None) -> np.ndarray:
    """True for the rows of the ``n`` customers :func:`sample_threshold` picks."""
    threshold = sample_threshold(customer_ids, n)
    if threshold is None:
        return np.ones(len(customer_ids), dtype=bool)
    return np.asarray(_hashes(customer_ids) <= np.uint64(threshold))


class CutoffFitter:
    """BG/NBD and Gamma-Gamma fitted cutoff after cutoff, each warm-started from the last.

    ``threshold`` (:func:`sample_threshold`) picks the customers each fit sees;
    every row is predicted. A cutoff whose fit fails (too few customers,
    degenerate data) gets NaN features and a warning; LightGBM treats NaN as
    missing, so training goes on.
    """

    def __init__(self, horizon_days: int, threshold: int | None = None) -> None:
        self.horizon_weeks = horizon_days / DAYS_PER_WEEK
        self.threshold = threshold
        self.bg_start: tuple[float, ...] | None = None
        self.gg_start: tuple[float, ...] | None = None

    def reset(self) -> None:
        """Forget the previous fits: the next cutoff starts from the default starts."""
        self.bg_start = None
        self.gg_start = None

    def features(self, group: pd.DataFrame) -> pd.DataFrame:
        """BTYD columns for the rows of one cutoff (everyone with a purchase by it)."""
        out = {name: np.full(len(group), np.nan) for name in BTYD_FEATURES}
        frame = pd.DataFrame(out, index=group.index)
        if group.empty:
            return frame
        cutoff = group["cutoff"].iloc[0]
        x, t_x, age, m_x = _inputs(group)
        fit = (
            np.ones(len(group), dtype=bool)
            if self.threshold is None
            else _hashes(group["customer_id"]) <= np.uint64(self.threshold)
        )
        try:
            bg = BetaGeoModel().fit(x[fit], t_x[fit], age[fit], start=self.bg_start)
        except ValueError as exc:
            log.warning("BG/NBD fit failed at cutoff %s: %s", cutoff, exc)
            return frame
        self.bg_start = (bg.r_, bg.alpha_, bg.a_, bg.b_)
        h = self.horizon_weeks
        out["btyd_p_alive"][:] = bg.p_alive(x, t_x, age)
        out["btyd_p_no_purchase"][:] = bg.p_no_purchase(h, x, t_x, age)
        out["btyd_expected_purchases"][:] = bg.expected_purchases(h, x, t_x, age)
        repeat_spend_ok = (x > 0) & (m_x > 0)
        fit_spend = repeat_spend_ok & fit
        try:
            gg = GammaGammaModel().fit(x[fit_spend], m_x[fit_spend], start=self.gg_start)
            spend = gg.expected_spend(np.where(repeat_spend_ok, x, 0), m_x)
        except ValueError as exc:
            log.warning("Gamma-Gamma fit failed at cutoff %s: %s", cutoff, exc)
            return pd.DataFrame(out, index=group.index)
        self.gg_start = (gg.p_, gg.q_, gg.v_)
        out["btyd_expected_spend"][:] = spend
        out["expected_value_12m"][:] = (
            bg.expected_purchases(365 / DAYS_PER_WEEK, x, t_x, age) * spend
        )
        return pd.DataFrame(out, index=group.index)


def btyd_features(
    history: pd.DataFrame, horizon_days: int, fit_customers: int | None = None
) -> pd.DataFrame:
    """BTYD columns for every row of ``history`` (all customers with a purchase by each cutoff).

    Each cutoff is fitted on its rows among a fixed hashed sample of
    ``fit_customers`` customers (all when None or more than there are),
    warm-started from the previous cutoff's parameters (:class:`CutoffFitter`).
    """
    fitter = CutoffFitter(horizon_days, sample_threshold(history["customer_id"], fit_customers))
    parts = [fitter.features(group) for _, group in history.groupby("cutoff", sort=True)]
    if not parts:
        return pd.DataFrame(index=history.index, columns=list(BTYD_FEATURES), dtype="float64")
    return pd.concat(parts).reindex(history.index)
