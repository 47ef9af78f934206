"""BG/NBD, Pareto/NBD and Gamma-Gamma quantities as features, fitted per cutoff on its past.

The probabilistic models are the strongest published baselines for
non-contractual churn; feeding their outputs to the classifier lets it start
from their answer and correct it with what they cannot see (seasonality,
rhythm, fading spend). Each cutoff gets its own fit on the customers with a
purchase up to that cutoff (not only the active population: fitting on
recently active customers alone would select on the outcome and understate
dropout), so no future transaction can influence a feature. Above a few
hundred thousand customers the fit uses a fixed hashed sample of them: four
parameters are pinned long before that, and the fit stays seconds per cutoff.

Histories are counted the standard BTYD way (Fader, Hardie & Lee 2005a): a
repeat purchase is a distinct purchase *day* (``n_purchase_days``), not an
order, and t_x and T are whole days from the first purchase day, so several
orders on one day are one transaction (counting orders made BG/NBD read a busy
day as a loyal customer). Whole days also make histories repeat a great deal:
predictions are computed once per distinct (x, t_x, T), m_x per row.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churn.features.btyd import BetaGeoModel, GammaGammaModel
from churn.features.btyd_clv import (
    CLV_COLUMNS,
    CLV_DISCOUNTED,
    NEXT_PURCHASE,
    LifetimeSettings,
    discounted_purchases,
    next_purchase_weeks,
)
from churn.features.btyd_pnbd import ParetoNBDModel
from churn.features.distinct import distinct_rows

log = logging.getLogger(__name__)

DAYS_PER_WEEK = 7.0
BTYD_FEATURES = (
    "btyd_p_alive",
    "btyd_p_no_purchase",
    "btyd_expected_purchases",
    "btyd_expected_spend",
    "expected_value_12m",
    "pnbd_p_alive",
    "pnbd_p_no_purchase",
)
# Columns of the snapshot the fits and predictions read.
INPUT_COLUMNS = ("n_purchase_days", "revenue", "tenure_days", "recency_days")


def _whole_days(days: pd.Series) -> np.ndarray:
    """Days from a purchase to the cutoff (a midnight) -> whole days from its calendar day."""
    return np.ceil(days.to_numpy(dtype=float))


def _inputs(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T, m_x): repeat purchase days, and weeks from the first purchase day to the
    last one and to the cutoff; m_x is the mean spend per purchase day."""
    days = frame["n_purchase_days"].to_numpy(dtype=float)
    age_days = _whole_days(frame["tenure_days"])
    t_x = (age_days - _whole_days(frame["recency_days"])) / DAYS_PER_WEEK
    age = age_days / DAYS_PER_WEEK
    m_x = frame["revenue"].to_numpy(dtype=float) / np.maximum(days, 1.0)
    return days - 1, np.clip(t_x, 0.0, age), age, m_x


def _distinct(x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (x, t_x, T) rows and, per input row, the index of its distinct row
    (t_x and T are whole days in weeks: :func:`distinct.distinct_rows`'s fast path)."""
    return distinct_rows((x, t_x, age), (1.0, DAYS_PER_WEEK, DAYS_PER_WEEK))


def _hashes(customer_ids: pd.Series) -> np.ndarray:
    # categorize=False: the same hashes, without factorizing first (8x faster on distinct ids).
    return pd.util.hash_array(customer_ids.to_numpy(dtype=object), categorize=False)


def sample_threshold(customer_ids: pd.Series, n: int | None) -> int | None:
    """The hash at or below which a customer is in the fit sample; None = everyone.

    The sample is the ``n`` customers (of ``customer_ids``, all there are) with
    the smallest hashes of their ids; pandas' hash has a fixed key, so the same
    customer is in at every cutoff and in every run, and the fits of
    neighbouring cutoffs see the same people (their parameters move with the
    data, not with the draw).
    """
    return None if n is None else _threshold(_hashes(customer_ids), n)


def _threshold(hashes: np.ndarray, n: int) -> int | None:
    """The ``n``-th smallest distinct hash (None: ``n`` or fewer distinct ones).

    Ids are distinct, so their hashes almost always are: then the ``n`` smallest
    values are found by a partition, without a hash table of millions of hashes
    (~1 s at 3.3 M). Any tie among them takes the general path, the same answer.
    """
    if len(hashes) <= n:
        return None
    kth = np.partition(hashes, n - 1)[n - 1]
    smallest = np.sort(hashes[hashes <= kth])
    if len(smallest) == n and bool((np.diff(smallest) != 0).all()):
        return int(kth)
    distinct = pd.unique(hashes)
    if len(distinct) <= n:
        return None
    return int(np.partition(distinct, n - 1)[n - 1])


def fit_sample(customer_ids: pd.Series, n: int | None) -> np.ndarray:
    """True for the rows of the ``n`` customers :func:`sample_threshold` picks."""
    hashes = _hashes(customer_ids)
    threshold = None if n is None else _threshold(hashes, n)
    if threshold is None:
        return np.ones(len(customer_ids), dtype=bool)
    return np.asarray(hashes <= np.uint64(threshold))


def sampled_ids(customer_ids: pd.Series, n: int | None) -> pa.Array | None:
    """The ids :func:`fit_sample` picks among ``customer_ids`` (distinct); None = everyone.

    Hashed once for the whole stage: hashing each cutoff's ids again cost ~0.3 s
    a cutoff at 860 k customers, an Arrow set lookup a fraction of that.
    """
    keep = fit_sample(customer_ids, n)
    return None if keep.all() else pa.array(customer_ids[keep].unique())


def fit_samples(
    customer_ids: pd.Series, n_fit: int | None, n_pnbd: int | None
) -> tuple[pa.Array | None, pa.Array | None]:
    """``sampled_ids`` for BG/NBD's ``n_fit`` and Pareto/NBD's ``n_pnbd`` (at most
    ``n_fit``) customers of the distinct ``customer_ids``, hashing them once: the
    hashes were most of the cost (~1 s a pass at 3.3 M ids)."""
    hashes = _hashes(customer_ids)

    def sample(n: int | None) -> pa.Array | None:
        threshold = None if n is None else _threshold(hashes, n)
        if threshold is None:
            return None
        return pa.array(customer_ids[hashes <= np.uint64(threshold)].unique())

    n_pnbd = n_pnbd if n_fit is None or n_pnbd is None else min(n_pnbd, n_fit)
    return sample(n_fit), sample(n_pnbd)


def _in_sample(customer_ids: pd.Series, sample: pa.Array) -> np.ndarray:
    # Arrow's hash lookup: pandas' isin on Arrow-backed strings iterates in Python.
    ids = pa.array(customer_ids)
    found = pc.is_in(ids, value_set=sample.cast(ids.type))
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)


@dataclass(frozen=True)
class FittedCutoff:
    """One cutoff's fitted models; any is None when its fit failed (NaN features)."""

    horizon_weeks: float
    bg: BetaGeoModel | None
    gg: GammaGammaModel | None
    pnbd: ParetoNBDModel | None = None
    # Set on the scoring cutoff only: predict then adds CLV_COLUMNS (btyd_clv).
    lifetime: LifetimeSettings | None = None
    span_weeks: float = np.inf  # the longest customer age the fit saw

    def predict(self, rows: pd.DataFrame) -> pd.DataFrame:
        """BTYD columns for ``rows`` (any subset of the cutoff's customers, in any chunks)."""
        out = {name: np.full(len(rows), np.nan) for name in BTYD_FEATURES}
        if self.lifetime is not None:
            out |= {name: np.full(len(rows), np.nan) for name in CLV_COLUMNS}
        if rows.empty:
            return self._frame(out, rows)
        x, t_x, age, m_x = _inputs(rows)
        distinct, index = _distinct(x, t_x, age)
        history = (distinct[:, 0], distinct[:, 1], distinct[:, 2])
        # BG/NBD (+ Gamma-Gamma, lifetime) and Pareto/NBD write disjoint columns, and
        # NumPy/SciPy release the GIL in their loops: the second core takes Pareto/NBD
        # (a third of the step at 3.3 M) while this thread does BG/NBD. The same
        # functions on the same inputs, so the same bits.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pnbd = pool.submit(self._predict_pnbd, out, history, index) if self.pnbd else None
            if self.bg is not None:
                self._predict_bgnbd(out, history, index, x, m_x)
            if pnbd is not None:
                pnbd.result()
        return self._frame(out, rows)

    def _predict_pnbd(
        self,
        out: dict[str, np.ndarray],
        history: tuple[np.ndarray, np.ndarray, np.ndarray],
        index: np.ndarray,
    ) -> None:
        """Pareto/NBD columns, in place, one evaluation per distinct history."""
        assert self.pnbd is not None
        dx, dt_x, dage = history
        alive = self.pnbd.p_alive(dx, dt_x, dage)
        out["pnbd_p_alive"][:] = alive[index]
        p_quiet = self.pnbd.p_no_purchase(self.horizon_weeks, dx, dt_x, dage, alive)
        out["pnbd_p_no_purchase"][:] = p_quiet[index]

    def _frame(self, out: dict[str, np.ndarray], rows: pd.DataFrame) -> pd.DataFrame:
        """The columns as a frame; the next purchase's wait (weeks) becomes a date."""
        frame = pd.DataFrame(out, index=rows.index, copy=False)  # no 2-D block: no copy
        if self.lifetime is not None:
            wait = pd.to_timedelta(frame[NEXT_PURCHASE] * DAYS_PER_WEEK, unit="D")
            when = pd.to_datetime(rows["cutoff"]) + wait.to_numpy()
            frame[NEXT_PURCHASE] = when.dt.floor("D").to_numpy()
        return frame

    def _predict_lifetime(
        self,
        out: dict[str, np.ndarray],
        history: tuple[np.ndarray, np.ndarray, np.ndarray],
        index: np.ndarray,
        spend: np.ndarray,
        alive: np.ndarray,
    ) -> None:
        """Discounted CLV and the next purchase's wait, in place, per distinct history."""
        assert self.bg is not None and self.lifetime is not None
        life, bg = self.lifetime, self.bg
        wait = next_purchase_weeks(bg, history, life.min_p_alive, self.span_weeks, alive)
        out[NEXT_PURCHASE][:] = wait[index]
        months, rate = life.clv_months, life.discount_rate_annual
        clv = discounted_purchases(bg, history, months, rate, alive)
        out[CLV_DISCOUNTED][:] = clv[index] * spend

    def _predict_bgnbd(
        self,
        out: dict[str, np.ndarray],
        history: tuple[np.ndarray, np.ndarray, np.ndarray],
        index: np.ndarray,
        x: np.ndarray,
        m_x: np.ndarray,
    ) -> None:
        """BG/NBD (and Gamma-Gamma) columns, in place. P(alive) once per distinct history;
        the terms given alive (P(buys), the horizon and 12-month expectations, in one call)
        depend on (x, T) alone, so once per distinct (x, T), ten times fewer."""
        assert self.bg is not None
        bg, h = self.bg, self.horizon_weeks
        dx, dt_x, dage = history
        alive = bg.p_alive(dx, dt_x, dage)
        out["btyd_p_alive"][:] = alive[index]
        pairs, at_pair = distinct_rows((dx, dage), (1.0, DAYS_PER_WEEK))
        px, page = pairs[:, 0], pairs[:, 1]
        out["btyd_p_no_purchase"][:] = (1 - alive * bg.p_buy_if_alive(h, px, page)[at_pair])[index]
        n = len(px)
        both = np.concatenate([np.full(n, h), np.full(n, 365 / DAYS_PER_WEEK)])
        if_alive = bg.expected_if_alive(both, np.tile(px, 2), np.tile(page, 2))
        out["btyd_expected_purchases"][:] = (alive * if_alive[:n][at_pair])[index]
        if self.gg is not None:
            spend = self.gg.expected_spend(np.where((x > 0) & (m_x > 0), x, 0), m_x)
            out["btyd_expected_spend"][:] = spend
            out["expected_value_12m"][:] = (alive * if_alive[n:][at_pair])[index] * spend
            if self.lifetime is not None:
                self._predict_lifetime(out, history, index, spend, alive)


class CutoffFitter:
    """BG/NBD, Pareto/NBD and Gamma-Gamma fitted cutoff after cutoff, each warm-started from
    the last.

    ``sample`` (:func:`sampled_ids`) are the customers each fit sees (None:
    all); every row asked for is predicted. A cutoff whose fit fails (too few
    customers, degenerate data) gets NaN features and a warning; LightGBM
    treats NaN as missing, so training goes on.
    """

    def __init__(
        self,
        horizon_days: int,
        sample: pa.Array | None = None,
        pnbd_sample: pa.Array | None = None,
    ) -> None:
        self.horizon_weeks = horizon_days / DAYS_PER_WEEK
        self.sample = sample
        self.pnbd_sample = pnbd_sample  # Pareto/NBD's (smaller) sample; None: ``sample``
        # Set (by the caller) for the scoring cutoff: its fit then predicts CLV_COLUMNS too.
        self.lifetime: LifetimeSettings | None = None
        self.reset()

    def reset(self) -> None:
        """Forget the previous fits: the next cutoff starts from the default starts."""
        self.bg_start: tuple[float, ...] | None = None
        self.gg_start: tuple[float, ...] | None = None
        self.pnbd_start: tuple[float, ...] | None = None
        # Each fit's Hessian (Newton's method), which saves measuring the next one's.
        self.curvature: dict[str, np.ndarray | None] = {}

    def fit(self, group: pd.DataFrame) -> FittedCutoff:
        """Fit one cutoff on its sampled rows (of everyone with a purchase by it)."""
        if group.empty:
            return FittedCutoff(self.horizon_weeks, None, None, lifetime=self.lifetime)
        cutoff = group["cutoff"].iloc[0]
        # The columns the fits read first: the row filter then copies five, not all ~40.
        group = group[["customer_id", *INPUT_COLUMNS]]
        if self.sample is not None:
            group = group[_in_sample(group["customer_id"], self.sample)]
        pnbd = self._fit_pnbd(group, cutoff)
        x, t_x, age, m_x = _inputs(group)
        try:
            bg = BetaGeoModel().fit(
                x, t_x, age, start=self.bg_start, curvature=self.curvature.get("bg")
            )
        except ValueError as exc:
            log.warning("BG/NBD fit failed at cutoff %s: %s", cutoff, exc)
            return FittedCutoff(self.horizon_weeks, None, None, pnbd, self.lifetime)
        self.bg_start, self.curvature["bg"] = (bg.r_, bg.alpha_, bg.a_, bg.b_), bg.curvature_
        spend = (x > 0) & (m_x > 0)
        try:
            gg = GammaGammaModel().fit(
                x[spend], m_x[spend], start=self.gg_start, curvature=self.curvature.get("gg")
            )
            gg.expected_spend(np.zeros(1), np.zeros(1))  # refuses q <= 1 here, not per chunk
        except ValueError as exc:
            log.warning("Gamma-Gamma fit failed at cutoff %s: %s", cutoff, exc)
            return FittedCutoff(self.horizon_weeks, bg, None, pnbd, self.lifetime)
        self.gg_start, self.curvature["gg"] = (gg.p_, gg.q_, gg.v_), gg.curvature_
        span = float(age.max()) if len(age) else np.inf
        return FittedCutoff(self.horizon_weeks, bg, gg, pnbd, self.lifetime, span)

    def _fit_pnbd(self, group: pd.DataFrame, cutoff: object) -> ParetoNBDModel | None:
        if self.pnbd_sample is not None:
            group = group[_in_sample(group["customer_id"], self.pnbd_sample)]
        x, t_x, age, _ = _inputs(group)
        try:
            pnbd = ParetoNBDModel().fit(
                x, t_x, age, start=self.pnbd_start, curvature=self.curvature.get("pnbd")
            )
        except ValueError as exc:
            log.warning("Pareto/NBD fit failed at cutoff %s: %s", cutoff, exc)
            return None
        self.pnbd_start = (pnbd.r_, pnbd.alpha_, pnbd.s_, pnbd.beta_)
        self.curvature["pnbd"] = pnbd.curvature_
        return pnbd

    def features(self, group: pd.DataFrame, predict: np.ndarray | None = None) -> pd.DataFrame:
        """BTYD columns for one cutoff, fitted on its rows (everyone with a purchase by it).

        ``predict`` (a row mask) limits the predictions, and the result, to the rows
        that are kept (the active population); the fit still sees every sampled row.
        """
        fitted = self.fit(group)
        return fitted.predict(group if predict is None else group[np.asarray(predict)])


def btyd_features(
    history: pd.DataFrame, horizon_days: int, fit_customers: int | None = None
) -> pd.DataFrame:
    """BTYD columns for every row of ``history`` (all customers with a purchase by each cutoff).

    Each cutoff is fitted on its rows among a fixed hashed sample of
    ``fit_customers`` customers (all when None or more than there are),
    warm-started from the previous cutoff's parameters (:class:`CutoffFitter`).
    """
    fitter = CutoffFitter(horizon_days, sampled_ids(history["customer_id"], fit_customers))
    parts = [fitter.features(group) for _, group in history.groupby("cutoff", sort=True)]
    if not parts:
        return pd.DataFrame(index=history.index, columns=list(BTYD_FEATURES), dtype="float64")
    return pd.concat(parts).reindex(history.index)
