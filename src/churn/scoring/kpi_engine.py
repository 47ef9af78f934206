"""The report's KPIs computed by the engine (Ibis on DuckDB), on the canonical transactions.

A purchase is the feature stage's purchase event (``rfm.order_events``): an order's
lines on one day, summed in integer millionths, when they net positive, at whole
seconds. So the report counts purchases as the model's label does, and the nightly job takes
the per-purchase facts from the order events its feature step has just built
(``purchase_facts``) instead of grouping and sorting 10 M lines a second time.

At 10 M transaction lines the pandas definitions took 167 s of a 234 s nightly run
(issue 20): a Python set per month for the churn rate, a groupby over every line per
table. Here the engine groups the lines into purchases, makes one window pass over
them and counts them by a few small keys (``purchase_facts``), out of core; only those
counts (a few thousand rows) come back to pandas, which derives every KPI. The definitions are
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
both counts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from churn.features import backend as engine
from churn.features.buckets import DAY
from churn.features.rfm import MICROS, month_number, order_events


@dataclass(frozen=True)
class ReportKpis:
    """What the report shows of the transactions: its monthly table (kpis.monthly_kpis's
    columns), the cohort retention table and the overall repeat purchase rate."""

    monthly: pd.DataFrame
    cohorts: pd.DataFrame
    repeat_purchase_rate: float


def transactions_table(
    source: pd.DataFrame | Path | ir.Table, memory_limit: str | None = None
) -> ir.Table:
    """The canonical transactions as an engine table: a Parquet file is read by DuckDB
    itself (never through pandas), a frame is handed to it as is. ``memory_limit`` (a
    DuckDB size) makes the KPI queries spill beyond it rather than raise the job's peak."""
    if isinstance(source, ir.Table):
        return source
    con = engine.connect("duckdb")
    if memory_limit is not None:
        engine.limit_memory(con, memory_limit)
    if isinstance(source, Path):
        return engine.read_transactions(con, source)
    name = "kpi_transactions"
    con.con.register(name, source)  # a view on the frame (Ibis' create_table drops a nameless view)
    return con.table(name)


def before(table: ir.Table, as_of: dt.date | pd.Timestamp) -> ir.Table:
    """Transactions strictly before ``as_of`` (the report's "to date")."""
    return table.filter(table.ts < pd.Timestamp(as_of).to_pydatetime())


def _timestamp(seconds: ir.IntegerValue) -> ir.TimestampValue:
    """An epoch second as a (time-zone free) timestamp: through milliseconds, which
    DuckDB reads as they are (``epoch_ms``), where whole seconds become a zoned
    timestamp whose fields cost a time-zone lookup each (8x at 10 M purchases)."""
    return (seconds * 1000).as_timestamp("ms")


def _month_of(seconds: ir.IntegerValue) -> ir.IntegerValue:
    """The month number (:func:`rfm.month_number`) of an epoch second."""
    return month_number(_timestamp(seconds))


def _first_cutoff_from(seconds: ir.IntegerValue) -> ir.IntegerValue:
    """The month number of the first month start at or after the epoch second
    ``seconds``: the month after the second just before it (a month start is its own)."""
    return _month_of(seconds - 1) + 1


def purchase_events(table: ir.Table) -> ir.Table:
    """The order events of ``table`` (canonical transactions) with what the KPIs ask of
    each purchase (``rfm.order_events(neighbours=True)``); a table without a country
    (the KPIs' own column subset) gets an empty one, which no KPI reads."""
    if "country" not in table.columns:
        table = table.mutate(country=ibis.null("string"))
    return order_events(table, neighbours=True)


def purchases(table: ir.Table) -> ir.Table:
    """One row per purchase (customer_id, ts, amount, month) of a customer; ts in whole
    seconds, as the features count time."""
    f = _bought(purchase_events(table))
    ts = _timestamp(f.ts_s)
    return f.select("customer_id", ts=ts, amount=f.amount / MICROS, month=month_number(ts))


def _bought(events: ir.Table) -> ir.Table:
    return events.filter(events.is_purchase & events.customer_id.notnull())


@dataclass(frozen=True)
class PurchaseFacts:
    """:func:`purchase_facts` computed, for the label it was computed with."""

    rows: pd.DataFrame
    lookback_days: int
    horizon_days: int


def purchase_facts(events: ir.Table, lookback: int, horizon: int) -> ir.Table:
    """Purchases counted by what every KPI asks of one (a few thousand rows at any size).

    ``events`` are :func:`purchase_events`: the window that orders each customer's
    purchases has given each its gap to the previous one, the next one's time and the
    customer's first, so the KPIs are counts over small integer keys and no per-purchase table
    is ever stored (three temp tables of 8 M rows were 80 % of the report's time and
    its memory peak at 10 M lines, issue 20). Keys: ``opens`` the first purchase of a
    (customer, month), ``again`` another follows in the same month, ``first`` /
    ``has_next`` the customer's first purchase and whether a second one exists;
    ``start``/``base_end``/``churn_end`` the month ranges of the module doc.
    """
    f = _bought(events)
    month = _month_of(f.ts_s)
    reach = f.ts_s + lookback * DAY
    base_end = ibis.least(ibis.coalesce(f.next_s, reach), reach)
    churn_end = ibis.least(ibis.coalesce(f.next_s - horizon * DAY, reach), reach)
    first = f.gap_s.isnull()  # the gap to the previous purchase: none for the first
    return f.group_by(
        month=month,
        first_month=_month_of(f.first_s),
        opens=first | (_month_of(f.ts_s - f.gap_s) < month),
        again=(_month_of(f.next_s) == month).fill_null(False),
        first=first,
        has_next=f.next_s.notnull(),
        start=_first_cutoff_from(f.ts_s),
        base_end=_first_cutoff_from(base_end),
        churn_end=_first_cutoff_from(churn_end),
    ).aggregate(purchases=f.count())


def collect_facts(events: ir.Table, lookback: int, horizon: int) -> PurchaseFacts:
    """:func:`purchase_facts` of ``events`` into pandas."""
    rows = engine.to_pandas(purchase_facts(events, lookback, horizon))
    return PurchaseFacts(rows, lookback, horizon)


@dataclass
class FactsOfEvents:
    """Collects the purchase facts of order events someone else stored (the nightly's
    feature step, ``as_of_pieces(on_events=...)``), for the report that follows."""

    lookback_days: int
    horizon_days: int
    facts: PurchaseFacts | None = None

    def collect(self, events: ir.Table) -> None:
        self.facts = collect_facts(events, self.lookback_days, self.horizon_days)


def report_kpis(
    table: ir.Table,
    *,
    lookback_days: int = 90,
    horizon_days: int = 90,
    facts: PurchaseFacts | None = None,
) -> ReportKpis | None:
    """The report's KPIs of ``table`` (canonical transactions); None when it is empty.

    Two engine queries: revenue per month over every line, and the purchase facts
    (:func:`purchase_facts`, unless ``facts`` brings them for this label), from which
    pandas derives every count on a few thousand rows.
    """
    by_month = engine.to_pandas(
        table.group_by(month=month_number(table.ts)).aggregate(
            revenue=table.amount.sum(), last=table.ts.max()
        )
    ).set_index("month")
    if by_month.empty:
        return None
    first, last_month = int(by_month.index.min()), int(by_month.index.max())
    months = pd.RangeIndex(first, last_month + 1, name="month")
    last = pd.Timestamp(by_month["last"].max())
    if facts is None or (facts.lookback_days, facts.horizon_days) != (lookback_days, horizon_days):
        facts = collect_facts(purchase_events(table), lookback_days, horizon_days)
    counted = facts.rows.dropna(subset=["month", "first_month"])  # a purchase without a time
    opened = counted[counted["opens"].astype(bool)]  # one row per (customer, month) bought in
    monthly = _monthly(counted, opened, by_month["revenue"], months)
    monthly["churn_rate"] = _churn_rates(counted, months, last, horizon_days)
    cohorts = _cohorts(opened, last_month)
    rate = _repeat_purchase_rate(counted)
    monthly.index = _to_period(months).rename("month")
    return ReportKpis(monthly, cohorts, rate)


@dataclass(frozen=True)
class KpiRequest:
    """The report's KPIs of the transactions in ``source`` before ``as_of``, for the label
    ``lookback_days``/``horizon_days``; ``facts``: their purchase facts, already counted
    by whoever built the order events; ``memory_limit`` bounds DuckDB's KPI work."""

    source: pd.DataFrame | Path | ir.Table
    as_of: dt.date | pd.Timestamp
    memory_limit: str | None = None
    lookback_days: int = 90
    horizon_days: int = 90
    facts: PurchaseFacts | None = None

    def compute(self) -> ReportKpis | None:
        table = before(transactions_table(self.source, self.memory_limit), self.as_of)
        return report_kpis(
            table,
            lookback_days=self.lookback_days,
            horizon_days=self.horizon_days,
            facts=self.facts,
        )


@contextmanager
def kpis_in_background(request: KpiRequest) -> Iterator[Future[ReportKpis | None]]:
    """``request`` computed on a worker thread, while the caller draws the rest.

    The engine releases the GIL for the whole query, and the report's Python side
    (matplotlib's import, the score digest, the score charts: about a second at 2 M
    customers) needs none of the KPIs, so it runs meanwhile instead of after (issue 20).
    The connection is made and used on the worker only. Leaving the block waits for
    the query, whatever happened, so no engine work outlives the report.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-kpis") as pool:
        yield pool.submit(request.compute)


def _per_month(counted: pd.DataFrame, months: pd.RangeIndex) -> pd.Series:
    """``counted``'s purchases summed per month of ``months`` (0 where none)."""
    sums = counted.groupby(counted["month"].astype("int64"))["purchases"].sum()
    return sums.reindex(months, fill_value=0).astype("int64")


def _monthly(
    facts: pd.DataFrame, opened: pd.DataFrame, revenue: pd.Series, months: pd.RangeIndex
) -> pd.DataFrame:
    """Buyers, new buyers, purchases, repeat rate and ``revenue`` (of every line, customer
    or not) per month of ``months``. A buyer repeats by the month's end when they bought
    in an earlier month too, or twice in this one."""
    later = opened["month"] > opened["first_month"]
    frame = pd.DataFrame(
        {
            "active_customers": _per_month(opened, months),
            "new_customers": _per_month(opened[opened["month"] == opened["first_month"]], months),
            "orders": _per_month(facts, months),
        },
        index=months,
    )
    repeaters = _per_month(opened[later | opened["again"].astype(bool)], months)
    frame["revenue"] = revenue.reindex(months).fillna(0.0).astype("float64")
    buyers = frame["active_customers"].where(frame["active_customers"] > 0)
    frame["repeat_rate"] = (repeaters / buyers).astype("float64")  # NaN: no buyers
    return frame


def _churn_rates(
    facts: pd.DataFrame, months: pd.RangeIndex, last: pd.Timestamp, horizon: int
) -> np.ndarray:
    """The DESIGN.md label at each month start (see the module doc); NaN until its window
    has closed (by ``last``) or when nobody was active."""
    base = _running_count(facts, "base_end", months)
    churned = _running_count(facts, "churn_end", months)
    cutoffs = _to_period(months).to_timestamp()
    closed = (cutoffs + pd.Timedelta(days=horizon)) <= last
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = churned / base
    return np.where(closed & (base > 0), rate, np.nan)


def _running_count(facts: pd.DataFrame, end: str, months: pd.RangeIndex) -> np.ndarray:
    """How many purchases' ``[start, end)`` month ranges hold each month of ``months``."""
    live = facts[facts[end] > facts["start"]]
    opened = live.groupby(live["start"].astype("int64"))["purchases"].sum()
    closed = -live.groupby(live[end].astype("int64"))["purchases"].sum()
    steps = pd.concat([opened, closed]).groupby(level=0).sum().sort_index()
    running = steps.cumsum()
    # A month between two steps holds the count of the step before it.
    at = running.reindex(running.index.union(months)).ffill().fillna(0)
    return at.reindex(months).to_numpy(dtype="float64")


def _cohorts(opened: pd.DataFrame, last: int) -> pd.DataFrame:
    """Cohort (first purchase month) x months since: the share of the cohort who bought;
    NaN past ``last`` (the data's last month)."""
    if opened.empty:
        return pd.DataFrame(index=pd.PeriodIndex([], freq="M", name="cohort"), dtype=float)
    cohort = opened["first_month"].astype("int64")
    k = opened["month"].astype("int64") - cohort
    counts = opened.groupby([cohort.rename("cohort"), k.rename("k")])["purchases"].sum()
    wide = counts.unstack("k").sort_index()
    sizes = wide[0]
    wide = wide.reindex(columns=range(last - int(sizes.index.min()) + 1)).fillna(0)
    table = wide.div(sizes, axis=0).astype(float)
    unobserved = (table.index.to_numpy()[:, None] + table.columns.to_numpy()[None, :]) > last
    table = table.mask(unobserved)
    table.index = _to_period(pd.Index(table.index)).rename("cohort")
    table.columns.name = "months_since_first"
    return table


def _repeat_purchase_rate(facts: pd.DataFrame) -> float:
    """Share of customers with a purchase who made two or more."""
    firsts = facts[facts["first"].astype(bool)]
    customers = int(firsts["purchases"].sum())
    repeaters = int(firsts.loc[firsts["has_next"].astype(bool), "purchases"].sum())
    return float(repeaters / customers) if customers else float("nan")


def _to_period(month_numbers: pd.Index) -> pd.PeriodIndex:
    periods = [pd.Period(year=int(m) // 12, month=int(m) % 12 + 1, freq="M") for m in month_numbers]
    return pd.PeriodIndex(periods, freq="M")
