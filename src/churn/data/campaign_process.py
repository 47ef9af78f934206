"""The sample shop after a list's date: data/generate.py's purchase process, run forward.

`churn simulate-campaign` needs what each customer would have bought over the
horizon had nobody called them. The generator keeps each customer's hidden truth
(type, purchase rate, dropout probability, dropout time), so the same process
continues from the list's date for every customer still active then:

* ``poisson`` and ``regular`` customers: the next purchase comes one renewal gap
  after their last one (drawn given that it has not come by the list's date), then
  ``_simulate_renewal`` runs on, with its dropout after each purchase and its fading;
* ``seasonal`` customers: this year's Christmas window (20 Nov - 23 Dec, bought in
  with probability 0.75) and off-season orders at 0.25 a year, each followed by the
  same dropout draw as in the generator;
* customers gone by the list's date (their dropout time is before it) buy nothing.

Everything runs in the generator's seasonal operational time, so the Christmas peak
lands where it does in the sample. The shop gains no new customers and no guest
orders over the horizon: only the listed customers' outcomes are measured.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churn.data.generate import (
    _FADE_PROBABILITY,
    _FADE_RATE_FACTOR,
    _REGULAR_GAP_SHAPE,
    _SEASONAL_BUY_PROBABILITY,
    _SEASONAL_OFF_SEASON_RATE,
    _SeasonalClock,
    _simulate_renewal,
)

_SEASONAL_DROPOUT_FACTOR = 0.6  # the generator's seasonal customers leave at 0.6 x p
_RESIDUAL_TRIES = 50


@dataclass(frozen=True)
class ShopState:
    """Every customer at the list's date, aligned by position."""

    customer_id: np.ndarray
    kind: np.ndarray  # poisson | regular | seasonal
    alive: np.ndarray  # still a customer at the list's date
    rate_per_day: np.ndarray
    dropout_p: np.ndarray
    last_purchase_day: np.ndarray  # days since generate.start (NaN: none seen)


def shop_state(
    rng: np.random.Generator,
    truth: pd.DataFrame,
    purchases: pd.DataFrame,
    start: dt.date,
    as_of: dt.date,
) -> ShopState:
    """Truth rows (generate's hidden truth) and each customer's purchases before as_of
    (``purchases``: index customer id, columns ``last`` timestamp and ``count``).

    The truth keeps the rate a customer joined with; the generator lowered it by
    ``_FADE_RATE_FACTOR`` each time they faded (chance ``_FADE_PROBABILITY`` after a
    purchase they stayed on after), which the truth does not record. So each renewal
    customer's fades are drawn from their purchase count, the generator's odds.
    """
    origin = pd.Timestamp(start)
    ids = truth["customer_id"].astype(str)
    dropout = pd.to_datetime(truth["dropout_at"])
    last = pd.to_datetime(ids.map(purchases["last"]))
    count = ids.map(purchases["count"]).fillna(0).to_numpy("int64")
    p = truth["dropout_probability"].to_numpy("float64")
    fade_odds = np.clip(_FADE_PROBABILITY / np.clip(1 - p, 1e-9, None), 0, 1)
    fades = rng.binomial(np.maximum(count, 0), fade_odds)
    rate = truth["purchase_rate_per_year"].to_numpy("float64") / 365.0
    kind = truth["customer_type"].astype(str).to_numpy()
    rate = np.where(kind == "seasonal", rate, rate * _FADE_RATE_FACTOR**fades)
    return ShopState(
        customer_id=ids.to_numpy(),
        kind=kind,
        alive=(dropout.isna() | (dropout > pd.Timestamp(as_of))).to_numpy(),
        rate_per_day=rate,
        dropout_p=p,
        last_purchase_day=((last - origin) / pd.Timedelta(days=1)).to_numpy("float64"),
    )


def first_purchase_op(
    rng: np.random.Generator,
    clock: _SeasonalClock,
    state: ShopState,
    idx: np.ndarray,
    from_day: float,
) -> np.ndarray:
    """Operational time of the first renewal purchase after ``from_day`` for customers ``idx``.

    A regular customer's gap runs from their last purchase, so it is drawn again until
    it ends after ``from_day`` (the gap given that it has not ended yet); a Poisson
    customer's is memoryless and starts at ``from_day``.
    """
    now = float(clock.to_operational(np.array([from_day]))[0])
    shape = np.where(state.kind[idx] == "regular", _REGULAR_GAP_SHAPE, 1.0)
    rate = state.rate_per_day[idx]
    last = state.last_purchase_day[idx]
    start = np.where(np.isnan(last), now, clock.to_operational(np.nan_to_num(last, nan=from_day)))
    start = np.where(shape == 1.0, now, start)
    nxt = start + rng.gamma(shape, 1.0 / (shape * rate))
    for _ in range(_RESIDUAL_TRIES):
        early = nxt <= now
        if not early.any():
            break
        nxt[early] = start[early] + rng.gamma(shape[early], 1.0 / (shape[early] * rate[early]))
    early = nxt <= now
    nxt[early] = now + rng.exponential(1.0 / rate[early])
    return nxt


def renewal_purchases(
    rng: np.random.Generator,
    clock: _SeasonalClock,
    state: ShopState,
    idx: np.ndarray,
    from_day: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(customer position, day) of every renewal purchase after ``from_day`` within the clock."""
    first = first_purchase_op(rng, clock, state, idx, from_day)
    inside = first < clock.total
    idx, first = idx[inside], first[inside]
    if not idx.size:
        return np.array([], dtype=int), np.array([])
    shape = np.where(state.kind[idx] == "regular", _REGULAR_GAP_SHAPE, 1.0)
    owners, days, _ = _simulate_renewal(
        rng, clock, clock.to_calendar(first), state.rate_per_day[idx], shape, state.dropout_p[idx]
    )
    keep = days < clock.n_days
    return idx[owners[keep]], days[keep]


def seasonal_purchases(
    rng: np.random.Generator,
    clock: _SeasonalClock,
    state: ShopState,
    idx: np.ndarray,
    from_day: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(customer position, day) of seasonal customers' purchases after ``from_day``."""
    owners: list[np.ndarray] = []
    days: list[np.ndarray] = []
    alive = np.ones(idx.size, dtype=bool)
    end = float(clock.n_days)
    off_season = from_day + rng.exponential(365 / _SEASONAL_OFF_SEASON_RATE, idx.size)
    year = (clock.start + pd.Timedelta(days=from_day)).year
    window = [
        (pd.Timestamp(year=year, month=m, day=d) - clock.start).days
        for m, d in ((11, 20), (12, 23))
    ]
    christmas = rng.uniform(window[0], window[1], idx.size)
    wants = rng.random(idx.size) < _SEASONAL_BUY_PROBABILITY
    for day, buys in ((off_season, off_season < christmas), (christmas, wants)):
        buys = buys & alive & (day > from_day) & (day < end)
        owners.append(idx[buys])
        days.append(day[buys])
        leaves = buys & (rng.random(idx.size) < state.dropout_p[idx] * _SEASONAL_DROPOUT_FACTOR)
        alive &= ~leaves
    return np.concatenate(owners), np.concatenate(days)


def untreated_purchases(
    rng: np.random.Generator, clock: _SeasonalClock, state: ShopState, from_day: float
) -> tuple[np.ndarray, np.ndarray]:
    """Every active customer's purchases from ``from_day`` to the clock's end, untreated."""
    renewal = np.flatnonzero(state.alive & (state.kind != "seasonal"))
    seasonal = np.flatnonzero(state.alive & (state.kind == "seasonal"))
    o1, d1 = renewal_purchases(rng, clock, state, renewal, from_day)
    o2, d2 = seasonal_purchases(rng, clock, state, seasonal, from_day)
    return np.concatenate([o1, o2]).astype(int), np.concatenate([d1, d2])


def churn_probability(
    rng: np.random.Generator,
    clock: _SeasonalClock,
    state: ShopState,
    idx: np.ndarray,
    from_day: float,
    draws: int = 200,
) -> np.ndarray:
    """P(no purchase from ``from_day`` to the clock's end) per customer ``idx``, untreated.

    Gone customers: 1. Active ones buy at least once unless their first purchase falls
    past the end (dropout only follows a purchase), estimated over ``draws`` draws.
    """
    q = np.ones(idx.size)
    alive = state.alive[idx]
    if not alive.any():
        return q
    repeated = np.repeat(idx[alive], draws)
    owners, _ = untreated_purchases(rng, clock, _subset(state, repeated), from_day)
    bought = np.zeros(repeated.size, dtype=bool)
    bought[owners] = True
    q[alive] = 1.0 - bought.reshape(-1, draws).mean(axis=1)
    return q


def _subset(state: ShopState, idx: np.ndarray) -> ShopState:
    return ShopState(*(getattr(state, f)[idx] for f in ShopState.__dataclass_fields__))
