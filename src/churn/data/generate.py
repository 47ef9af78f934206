"""Synthetic transactions that are as hard as a real shop's, with the truth kept aside.

Real logs are sparse (most customers buy once), seasonal (a Christmas peak that
falls inside a 90-day label window), heterogeneous (gamma-distributed rates,
lognormal spend) and messy (guest orders, cancellations). A model that only
wins on a tidy Poisson world proves nothing, so the sample mixes three kinds of
customer whose behaviour breaks different baselines:

* ``poisson``: BG/NBD's own world (exponential gaps, dropout after a purchase);
* ``regular``: buyers on a rhythm (gamma gaps with shape 4), where "overdue
  relative to the usual gap" matters and BG/NBD's memoryless view is wrong;
* ``seasonal``: Christmas shoppers, who look dead to a recency rule for ten
  months and come back every December.

Any customer may "fade" (purchase rate drops) before leaving, the signal that
trend features catch and BTYD models cannot. The hidden dropout time of every
customer is returned beside the transactions so tests can check that the model
finds real signal rather than artefacts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churn.config import GenerateConfig

RAW_COLUMNS = ["Invoice", "InvoiceDate", "CustomerID", "Amount", "Country"]
TRUTH_COLUMNS = [
    "customer_id",
    "customer_type",
    "joined_at",
    "dropout_at",
    "purchase_rate_per_year",
    "dropout_probability",
]
_COUNTRIES = np.array(["United Kingdom", "Germany", "France", "EIRE", "Spain", "Netherlands"])
_COUNTRY_WEIGHTS = np.array([0.82, 0.05, 0.05, 0.03, 0.03, 0.02])
_REGULAR_GAP_SHAPE = 4.0
_FADE_RATE_FACTOR = 0.35
_FADE_PROBABILITY = 0.15
_SEASONAL_BUY_PROBABILITY = 0.75
_SEASONAL_OFF_SEASON_RATE = 0.25  # purchases per year outside the Christmas window


@dataclass(frozen=True)
class SyntheticShop:
    """Raw export rows (as a shop would hand them over) and the hidden truth per customer."""

    transactions: pd.DataFrame
    truth: pd.DataFrame


class _SeasonalClock:
    """Maps calendar time to 'operational time' so that any renewal process becomes seasonal.

    Intensity per day is a weekly profile times a yearly profile (Black Friday,
    Christmas peak, quiet January and summer), times ``exp(trend_per_year * years
    since start)``. Events generated at a constant rate in operational time land in
    calendar time with exactly that intensity. The trend multiplies after the
    seasonal profile is normalised: ``rate_mean_per_year`` stays the rate at the
    start, and a stationary shop (trend 0) draws exactly what it did before.
    """

    def __init__(self, start: dt.date, end: dt.date, trend_per_year: float = 0.0) -> None:
        self.start = pd.Timestamp(start)
        days = pd.date_range(start, end, freq="D", inclusive="left")
        doy = days.dayofyear.to_numpy()
        weekly = np.array([1.05, 1.0, 1.0, 1.05, 1.1, 0.9, 0.9])[days.dayofweek.to_numpy()]
        christmas = 1.6 * np.exp(-0.5 * ((doy - 348) / 11.0) ** 2)
        black_friday = 0.8 * np.exp(-0.5 * ((doy - 332) / 2.5) ** 2)
        january_lull = -0.25 * np.exp(-0.5 * ((doy - 15) / 10.0) ** 2)
        summer_dip = -0.15 * np.exp(-0.5 * ((doy - 210) / 25.0) ** 2)
        yearly = 1.0 + christmas + black_friday + january_lull + summer_dip
        intensity = weekly * yearly
        self.intensity = intensity / intensity.mean()
        if trend_per_year:
            self.intensity = self.intensity * np.exp(trend_per_year * np.arange(len(days)) / 365.25)
        self.cumulative = np.concatenate([[0.0], np.cumsum(self.intensity)])
        self.n_days = len(days)
        self.total = float(self.cumulative[-1])

    def to_operational(self, day_offset: np.ndarray) -> np.ndarray:
        return np.interp(day_offset, np.arange(self.n_days + 1), self.cumulative)

    def to_calendar(self, operational: np.ndarray) -> np.ndarray:
        """Inverse of to_operational, in fractional days since start."""
        return np.interp(operational, self.cumulative, np.arange(self.n_days + 1))


def _join_days(rng: np.random.Generator, clock: _SeasonalClock, n: int) -> np.ndarray:
    """Acquisition grows over time (a shop that gains customers) and follows the season."""
    growth = np.linspace(0.6, 1.4, clock.n_days)
    weights = clock.intensity * growth
    day = rng.choice(clock.n_days, size=n, p=weights / weights.sum())
    return day + rng.random(n)


def _simulate_renewal(
    rng: np.random.Generator,
    clock: _SeasonalClock,
    join_day: np.ndarray,
    rate_per_day: np.ndarray,
    gap_shape: np.ndarray,
    dropout_p: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Purchases of renewal-process customers until dropout or the end of the data.

    Returns (customer index, purchase day) per purchase and the hidden dropout day
    per customer (NaN while still alive at the end). Loops over purchase number,
    vectorised over customers, so 20k customers take milliseconds.
    """
    n = len(join_day)
    op_time = clock.to_operational(join_day)
    rate = rate_per_day.copy()
    alive = np.ones(n, dtype=bool)
    dropout_day = np.full(n, np.nan)
    owners: list[np.ndarray] = []
    days: list[np.ndarray] = []
    active = np.arange(n)
    while active.size:
        owners.append(active)
        days.append(clock.to_calendar(op_time[active]))
        gaps = rng.gamma(gap_shape[active], 1.0 / (gap_shape[active] * rate[active]))
        draw = rng.random(active.size)
        leaves = draw < dropout_p[active]
        fades = ~leaves & (draw < dropout_p[active] + _FADE_PROBABILITY)
        rate[active[fades]] *= _FADE_RATE_FACTOR
        leavers = active[leaves]
        # The customer leaves silently some time before the next purchase would have come.
        leave_op = op_time[leavers] + rng.random(leavers.size) * gaps[leaves]
        dropout_day[leavers] = clock.to_calendar(np.minimum(leave_op, clock.total))
        alive[leavers] = False
        op_time[active] += gaps
        active = active[~leaves & (op_time[active] < clock.total)]
    return np.concatenate(owners), np.concatenate(days), dropout_day


def _simulate_seasonal(
    rng: np.random.Generator,
    clock: _SeasonalClock,
    join_day: np.ndarray,
    dropout_p: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Christmas shoppers: a first purchase at joining, then mostly one order per December."""
    n = len(join_day)
    owners = [np.arange(n)]
    days = [join_day]
    dropout_day = np.full(n, np.nan)
    alive = rng.random(n) >= dropout_p
    left_at_join = ~alive
    dropout_day[left_at_join] = join_day[left_at_join] + rng.random(left_at_join.sum()) * 300
    first_year = clock.start.year
    last_day = float(clock.n_days)
    for year in range(first_year, first_year + clock.n_days // 365 + 2):
        window_start = (pd.Timestamp(year=year, month=11, day=20) - clock.start).days
        window_end = (pd.Timestamp(year=year, month=12, day=23) - clock.start).days
        when = rng.uniform(window_start, window_end, n)
        off_season = join_day + rng.exponential(365 / _SEASONAL_OFF_SEASON_RATE, n)
        # Off-season orders precede this year's Christmas window, so handle them first:
        # a customer who leaves after one must not buy at Christmas.
        candidates = [
            (off_season, (off_season >= window_start - 330) & (off_season < window_start)),
            (when, rng.random(n) < _SEASONAL_BUY_PROBABILITY),
        ]
        for day, buys in candidates:
            buys &= alive & (day > join_day) & (day < last_day)
            idx = np.flatnonzero(buys)
            owners.append(idx)
            days.append(day[idx])
            leaves = rng.random(idx.size) < dropout_p[idx]
            leavers = idx[leaves]
            dropout_day[leavers] = np.minimum(
                day[leavers] + rng.random(leavers.size) * 300, last_day
            )
            alive[leavers] = False
    return np.concatenate(owners), np.concatenate(days), dropout_day


def _spend(
    rng: np.random.Generator, config: GenerateConfig, owners: np.ndarray, n: int
) -> np.ndarray:
    customer_log_mean = rng.normal(config.spend_log_mean, config.spend_log_sd_between, n)
    within = config.spend_log_sd_within
    log_amount = customer_log_mean[owners] + rng.normal(-0.5 * within**2, within, owners.size)
    return np.round(np.exp(log_amount), 2)


@dataclass(frozen=True)
class _Customers:
    """Each customer's hidden traits, drawn before any purchase is simulated."""

    kind: np.ndarray  # "poisson", "regular" or "seasonal"
    join_day: np.ndarray  # fractional days since the start
    rate_per_year: np.ndarray
    dropout_p: np.ndarray


@dataclass(frozen=True)
class _Purchases:
    """Every simulated purchase (owner index, fractional day) and each customer's dropout day."""

    owners: np.ndarray
    days: np.ndarray
    dropout_day: np.ndarray  # NaN while still alive at the end


def generate_shop(config: GenerateConfig) -> SyntheticShop:
    """Draw the whole shop from ``config.seed``; the same config always gives the same rows.

    Every step draws from the one generator in turn, so the steps run in this order
    and no other: reordering them changes the sample (and data/raw's hashes in dvc.lock).
    """
    rng = np.random.default_rng(config.seed)
    clock = _SeasonalClock(config.start, config.end, config.trend_per_year)
    customers = _draw_customers(rng, clock, config)
    purchases = _simulate_purchases(rng, clock, customers)
    customer_ids = _customer_ids(rng, config.n_customers)
    orders = _known_orders(rng, clock, config, purchases, customer_ids)
    orders = pd.concat([orders, _guest_orders(rng, clock, config, len(orders))], ignore_index=True)
    orders = pd.concat([orders, _cancellations(rng, clock, config, orders)], ignore_index=True)
    orders["day"] = _shop_hours(rng, orders["day"].to_numpy())
    return SyntheticShop(
        transactions=_export_rows(clock, orders),
        truth=_truth(clock, config, customers, customer_ids, purchases.dropout_day),
    )


def _draw_customers(
    rng: np.random.Generator, clock: _SeasonalClock, config: GenerateConfig
) -> _Customers:
    """Kind, joining day, purchase rate and dropout chance per customer (heterogeneous, as
    real shops are: gamma-distributed rates, beta-distributed dropout)."""
    n = config.n_customers
    kind = rng.choice(
        np.array(["poisson", "regular", "seasonal"]),
        size=n,
        p=[
            1 - config.regular_fraction - config.seasonal_fraction,
            config.regular_fraction,
            config.seasonal_fraction,
        ],
    )
    join_day = _join_days(rng, clock, n)
    rate_per_year = rng.gamma(config.rate_shape, config.rate_mean_per_year / config.rate_shape, n)
    rate_per_year = np.clip(rate_per_year, 0.05, 60.0)
    dropout_p = rng.beta(config.dropout_a, config.dropout_b, n)
    return _Customers(kind, join_day, rate_per_year, dropout_p)


def _simulate_purchases(
    rng: np.random.Generator, clock: _SeasonalClock, customers: _Customers
) -> _Purchases:
    """Renewal-process customers first, then the Christmas shoppers; purchases after the
    end of the data are dropped (their customers' dropout times stay in the truth)."""
    kind = customers.kind
    owners_parts: list[np.ndarray] = []
    days_parts: list[np.ndarray] = []
    dropout_day = np.full(len(kind), np.nan)
    renewal = np.flatnonzero(kind != "seasonal")
    if renewal.size:
        shape = np.where(kind[renewal] == "regular", _REGULAR_GAP_SHAPE, 1.0)
        o, d, drop = _simulate_renewal(
            rng,
            clock,
            customers.join_day[renewal],
            customers.rate_per_year[renewal] / 365.0,
            shape,
            customers.dropout_p[renewal],
        )
        owners_parts.append(renewal[o])
        days_parts.append(d)
        dropout_day[renewal] = drop
    seasonal = np.flatnonzero(kind == "seasonal")
    if seasonal.size:
        o, d, drop = _simulate_seasonal(
            rng, clock, customers.join_day[seasonal], customers.dropout_p[seasonal] * 0.6
        )
        owners_parts.append(seasonal[o])
        days_parts.append(d)
        dropout_day[seasonal] = drop
    owners = np.concatenate(owners_parts)
    days = np.concatenate(days_parts)
    keep = days < clock.n_days
    return _Purchases(owners[keep], days[keep], dropout_day)


def _customer_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """Distinct five-digit-or-more ids with gaps between them, as a real shop's ids have."""
    return (10_000 + rng.permutation(n * 3)[:n]).astype(str)


def _known_orders(
    rng: np.random.Generator,
    clock: _SeasonalClock,
    config: GenerateConfig,
    purchases: _Purchases,
    customer_ids: np.ndarray,
) -> pd.DataFrame:
    """One order per purchase of a known customer: their id and country, and a spend that
    is higher in the Christmas season (November and December), as in real shops."""
    owners, days = purchases.owners, purchases.days
    country = rng.choice(_COUNTRIES, size=config.n_customers, p=_COUNTRY_WEIGHTS)
    amounts = _spend(rng, config, owners, config.n_customers)
    in_christmas = np.isin((clock.start + pd.to_timedelta(days, unit="D")).month, [11, 12])
    amounts = np.where(in_christmas, np.round(amounts * 1.3, 2), amounts)
    return pd.DataFrame(
        {
            "day": days,
            "CustomerID": customer_ids[owners],
            "Amount": amounts,
            "Country": country[owners],
        }
    )


def _export_rows(clock: _SeasonalClock, orders: pd.DataFrame) -> pd.DataFrame:
    """The orders as a shop's export lists them: in time order, minute timestamps, and
    invoice numbers counting up, a cancellation's prefixed with 'C'."""
    orders = orders.sort_values("day", kind="stable").reset_index(drop=True)
    timestamps = clock.start + pd.to_timedelta(orders["day"].to_numpy(), unit="D")
    invoice_numbers = (500_000 + np.arange(len(orders))).astype(str)
    invoices = np.where(
        orders["Amount"].to_numpy() < 0, np.char.add("C", invoice_numbers), invoice_numbers
    )
    return pd.DataFrame(
        {
            "Invoice": invoices,
            "InvoiceDate": timestamps.floor("min"),
            "CustomerID": orders["CustomerID"].to_numpy(),
            "Amount": orders["Amount"].to_numpy(),
            "Country": orders["Country"].to_numpy(),
        }
    )


def _truth(
    clock: _SeasonalClock,
    config: GenerateConfig,
    customers: _Customers,
    customer_ids: np.ndarray,
    dropout_day: np.ndarray,
) -> pd.DataFrame:
    """The hidden truth per customer, kept aside so tests can check the model finds it."""
    truth = pd.DataFrame(
        {
            "customer_id": customer_ids,
            "customer_type": customers.kind,
            "joined_at": clock.start + pd.to_timedelta(customers.join_day, unit="D"),
            "dropout_at": clock.start + pd.to_timedelta(dropout_day, unit="D"),
            "purchase_rate_per_year": customers.rate_per_year,
            "dropout_probability": customers.dropout_p,
        }
    )
    # Customers whose first purchase would fall after the end never appear in the data.
    return truth[truth["joined_at"] < pd.Timestamp(config.end)].reset_index(drop=True)


def _shop_hours(rng: np.random.Generator, day: np.ndarray) -> np.ndarray:
    """Orders arrive between 08:00 and 20:00, as in a typical store's export."""
    return np.floor(day) + rng.uniform(8 / 24, 20 / 24, day.size)


def _guest_orders(
    rng: np.random.Generator, clock: _SeasonalClock, config: GenerateConfig, n_known: int
) -> pd.DataFrame:
    """Orders without a customer id, as guest checkouts appear in real exports."""
    share = config.guest_order_fraction
    n = round(n_known * share / (1 - share))
    day = rng.choice(clock.n_days, size=n, p=clock.intensity / clock.intensity.sum()) + 0.5
    amount = np.round(np.exp(rng.normal(config.spend_log_mean, 0.8, n)), 2)
    return pd.DataFrame(
        {"day": day, "CustomerID": "", "Amount": amount, "Country": "United Kingdom"}
    )


def _cancellations(
    rng: np.random.Generator, clock: _SeasonalClock, config: GenerateConfig, orders: pd.DataFrame
) -> pd.DataFrame:
    """A share of orders is cancelled within a few days: a 'C' invoice with the negated amount."""
    known = orders[orders["CustomerID"] != ""]
    picked = known.sample(frac=config.cancellation_fraction, random_state=int(rng.integers(2**31)))
    later = np.minimum(
        picked["day"].to_numpy() + rng.uniform(0.0, 3.0, len(picked)), clock.n_days - 1e-6
    )
    return pd.DataFrame(
        {
            "day": later,
            "CustomerID": picked["CustomerID"].to_numpy(),
            "Amount": -picked["Amount"].to_numpy(),
            "Country": picked["Country"].to_numpy(),
        }
    )
