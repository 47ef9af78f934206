"""The report's KPIs computed by the engine (Ibis on DuckDB), on the canonical transactions.

At 10 M transaction lines the pandas definitions took 167 s of a 234 s nightly run
(issue 20): a Python set per month for the churn rate, a groupby over every line per
table. Here each KPI is a few aggregations that the engine runs out of core, and
only month-sized results (tens of rows) come back to pandas. The definitions are
those of :mod:`churn.scoring.kpis` (a purchase, the monthly rates, the cohort
table), which delegates here; tests hold the same numbers against the former
pandas code.

The monthly churn rate needs, for every month start ``c``, the customers with a
purchase in ``(c - lookback, c]`` and of those the ones without one in
``(c, c + horizon]``. Rather than joining every purchase to every cutoff, each
purchase ``p`` (with the customer's next purchase ``n``, or none) is the latest
one at or before exactly the cutoffs in ``[p, n)``; the customer is in the base at
those cutoffs below ``p + lookback``, and churned at those below ``n - horizon`` too
(no next purchase: all of them). So each purchase adds +1 at the first month start
of a range and -1 at the first past it, and a running sum over the months gives
both counts: one window function and two group-bys.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from churn.features import backend as engine

_MONTHLY_COUNTS = ("active_customers", "new_customers", "orders")


@dataclass(frozen=True)
class ReportKpis:
    """What the report shows of the transactions: its monthly table (kpis.monthly_kpis's
    columns), the cohort retention table and the overall repeat purchase rate."""

    monthly: pd.DataFrame
    cohorts: pd.DataFrame
    repeat_purchase_rate: float


def transactions_table(source: pd.DataFrame | Path | ir.Table) -> ir.Table:
    """The canonical transactions as an engine table: a Parquet file is read by DuckDB
    itself (never through pandas), a frame is handed to it as is."""
    if isinstance(source, ir.Table):
        return source
    con = engine.connect("duckdb")
    if isinstance(source, Path):
        return engine.read_transactions(con, source)
    name = "kpi_transactions"
    con.con.register(name, source)  # a view on the frame (Ibis' create_table drops a nameless view)
    return con.table(name)


def before(table: ir.Table, as_of: dt.date | pd.Timestamp) -> ir.Table:
    """Transactions strictly before ``as_of`` (the report's "to date")."""
    return table.filter(table.ts < pd.Timestamp(as_of).to_pydatetime())


def _month(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Months since year 0, so "months between" is a plain integer difference."""
    return ts.year().cast("int64") * 12 + ts.month().cast("int64") - 1


def _first_cutoff_from(ts: ir.TimestampValue) -> ir.IntegerValue:
    """The month number of the first month start at or after ``ts``."""
    return _month(ts) + ibis.ifelse(ts > ts.truncate("M"), 1, 0).cast("int64")


def purchases(table: ir.Table) -> ir.Table:
    """One row per purchase (customer_id, ts, amount, month): lines grouped by customer and
    order id (a line without one by its timestamp), kept when the order nets positive."""
    t = table.filter(table.customer_id.notnull())
    guest_ts = ibis.cases((t.order_id.isnull(), t.ts), else_=ibis.null(t.ts.type()))
    orders = (
        t.mutate(guest_ts=guest_ts)
        .group_by(["customer_id", "order_id", "guest_ts"])
        .aggregate(ts=t.ts.min(), amount=t.amount.sum())
    )
    bought = orders.filter(orders.amount > 0)
    return bought.select("customer_id", "ts", "amount", month=_month(bought.ts))


def _customer_months(bought: ir.Table) -> ir.Table:
    """Per (customer, month with a purchase): purchases, first month, and whether the
    customer has two or more purchases by the month's end (a repeater): bought in an
    earlier month too, or twice in this one (no running sum needed)."""
    per = bought.group_by(["customer_id", "month"]).aggregate(n=bought.count())
    per = per.mutate(first_month=per.month.min().over(ibis.window(group_by=per.customer_id)))
    return per.mutate(repeater=(per.month > per.first_month) | (per.n >= 2))


def report_kpis(
    table: ir.Table, *, lookback_days: int = 90, horizon_days: int = 90
) -> ReportKpis | None:
    """The report's KPIs of ``table`` (canonical transactions); None when it is empty.

    Purchases and the per-(customer, month) counts are computed once (engine temp
    tables) and read by every KPI.
    """
    by_month = engine.to_pandas(
        table.group_by(month=_month(table.ts)).aggregate(
            revenue=table.amount.sum(), last=table.ts.max()
        )
    ).set_index("month")
    if by_month.empty:
        return None
    first, last_month = int(by_month.index.min()), int(by_month.index.max())
    months = pd.RangeIndex(first, last_month + 1, name="month")
    last = pd.Timestamp(by_month["last"].max())
    with (
        engine.materialized(purchases(table)) as bought,
        engine.materialized(_customer_months(bought)) as per,
    ):
        monthly = _monthly(per, by_month["revenue"], months)
        monthly["churn_rate"] = _churn_rates(bought, months, last, lookback_days, horizon_days)
        cohorts = _cohorts(per, last_month)
        rate = _repeat_purchase_rate(per)
    monthly.index = _to_period(months).rename("month")
    return ReportKpis(monthly, cohorts, rate)


def _monthly(per: ir.Table, revenue: pd.Series, months: pd.RangeIndex) -> pd.DataFrame:
    """Buyers, new buyers, purchases, repeat rate (from ``per``) and ``revenue`` (of every
    line, customer or not) per month of ``months``."""
    counts = engine.to_pandas(
        per.group_by("month").aggregate(
            active_customers=per.count(),
            new_customers=(per.month == per.first_month).sum(),
            orders=per.n.sum(),
            repeaters=per.repeater.sum(),
        )
    ).set_index("month")
    out = counts.reindex(months)
    buyers = out["active_customers"]
    frame = pd.DataFrame(
        {name: out[name].fillna(0).astype("int64") for name in _MONTHLY_COUNTS}, index=months
    )
    frame["revenue"] = revenue.reindex(months).fillna(0.0).astype("float64")
    frame["repeat_rate"] = (out["repeaters"] / buyers).astype("float64")  # NaN: no buyers
    return frame


def _churn_rates(
    bought: ir.Table, months: pd.RangeIndex, last: pd.Timestamp, lookback: int, horizon: int
) -> np.ndarray:
    """The DESIGN.md label at each month start (see the module doc); NaN until its window
    has closed (by ``last``) or when nobody was active."""
    following = ibis.window(group_by=bought.customer_id, order_by=bought.ts)
    nxt = bought.ts.lead().over(following)
    ends = bought.mutate(nxt=nxt).mutate(
        base_end=ibis.least(
            ibis.coalesce(ibis._.nxt, ibis._.ts + ibis.interval(days=lookback)),
            ibis._.ts + ibis.interval(days=lookback),
        ),
        churn_end=ibis.least(
            ibis.coalesce(
                ibis._.nxt - ibis.interval(days=horizon), ibis._.ts + ibis.interval(days=lookback)
            ),
            ibis._.ts + ibis.interval(days=lookback),
        ),
    )
    ranges = ends.select(
        start=_first_cutoff_from(ends.ts),
        base_end=_first_cutoff_from(ends.base_end),
        churn_end=_first_cutoff_from(ends.churn_end),
    )
    with engine.materialized(ranges) as computed:  # one window pass for both counts
        base = _running_count(computed, "base_end", months)
        churned = _running_count(computed, "churn_end", months)
    cutoffs = _to_period(months).to_timestamp()
    closed = (cutoffs + pd.Timedelta(days=horizon)) <= last
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = churned / base
    return np.where(closed & (base > 0), rate, np.nan)


def _running_count(ranges: ir.Table, end: str, months: pd.RangeIndex) -> np.ndarray:
    """How many ``[start, end)`` month ranges of ``ranges`` hold each month of ``months``."""
    live = ranges.filter(ranges[end] > ranges.start)
    opened = engine.to_pandas(live.group_by(month=live.start).aggregate(d=live.count()))
    closed = engine.to_pandas(live.group_by(month=live[end]).aggregate(d=-live.count()))
    steps = pd.concat([opened, closed]).groupby("month")["d"].sum().sort_index()
    running = steps.cumsum()
    # A month between two steps holds the count of the step before it.
    at = running.reindex(running.index.union(months)).ffill().fillna(0)
    return at.reindex(months).to_numpy(dtype="float64")


def _cohorts(per: ir.Table, last: int) -> pd.DataFrame:
    """Cohort (first purchase month) x months since: the share of the cohort who bought;
    NaN past ``last`` (the data's last month)."""
    k = per.month - per.first_month
    counts = engine.to_pandas(
        per.group_by(cohort=per.first_month, k=k).aggregate(customers=per.count())
    )
    if counts.empty:
        return pd.DataFrame(index=pd.PeriodIndex([], freq="M", name="cohort"), dtype=float)
    wide = counts.pivot(index="cohort", columns="k", values="customers").sort_index()
    sizes = wide[0]
    wide = wide.reindex(columns=range(last - int(sizes.index.min()) + 1)).fillna(0)
    table = wide.div(sizes, axis=0).astype(float)
    unobserved = (table.index.to_numpy()[:, None] + table.columns.to_numpy()[None, :]) > last
    table = table.mask(unobserved)
    table.index = _to_period(pd.Index(table.index)).rename("cohort")
    table.columns.name = "months_since_first"
    return table


def _repeat_purchase_rate(per: ir.Table) -> float:
    """Share of customers with a purchase who made two or more."""
    totals = per.group_by("customer_id").aggregate(n=per.n.sum())
    row = engine.to_pandas(
        totals.aggregate(customers=totals.count(), repeaters=(totals.n >= 2).sum())
    ).iloc[0]
    customers = int(row["customers"])
    return float(int(row["repeaters"]) / customers) if customers else float("nan")


def _to_period(month_numbers: pd.Index) -> pd.PeriodIndex:
    periods = [pd.Period(year=int(m) // 12, month=int(m) % 12 + 1, freq="M") for m in month_numbers]
    return pd.PeriodIndex(periods, freq="M")
