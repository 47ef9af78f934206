"""Descriptive KPIs: the numbers a data scientist checks first and marketing reads monthly.

They are defined once here, over the canonical transactions frame and the
snapshot tables, so the exploration notebook and the marketing report (issue 6)
cannot disagree about what "repeat rate" or "churn rate" means.

A *purchase* is the feature stage's purchase event (``rfm.order_events``): an order's
lines on one day summing to a positive amount. Lines are grouped per customer by
``order_id`` and day (a line without one is keyed by its timestamp), so a cancelled
order or a ``C`` invoice, which nets to zero or below, is never counted as a
purchase; its negative amount still reduces revenue. A cancellation posted days
later under the same invoice is a return on its own day, as the model's label sees
it, so the report's monthly churn rate and the label agree. Rows without a customer
id cannot belong to anyone and are ignored by the per-customer KPIs.

The report's KPIs (purchases, monthly rates, cohort retention, repeat rate) run in
the engine (``kpi_engine``: DuckDB via Ibis) on a frame, a Parquet file or an engine
table; the notebook-only breakdowns below work on the purchases it returns.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeAlias

import duckdb
import ibis.expr.types as ir
import pandas as pd

from churn.data.sources import quote_literal
from churn.features.backend import to_pandas
from churn.features.segments import SEGMENTS
from churn.schema import CUTOFF, LABEL, SPLIT, TRANSACTION_COLUMNS, subset
from churn.scoring import kpi_engine

_DAY = pd.Timedelta(days=1)
# What the KPIs read of the transactions and of the labelled snapshots.
KPI_TRANSACTION_COLUMNS = subset(TRANSACTION_COLUMNS, "customer_id", "order_id", "ts", "amount")
KPI_LABELLED_COLUMNS = (CUTOFF, SPLIT, LABEL)
# The canonical transactions as a frame, a Parquet file or an engine table.
KpiSource: TypeAlias = pd.DataFrame | Path | ir.Table
# The labelled snapshots (KPI_LABELLED_COLUMNS) as a frame, or a Parquet file or folder.
LabelledSource: TypeAlias = pd.DataFrame | Path


def purchases(transactions: KpiSource) -> pd.DataFrame:
    """One row per purchase (customer_id, ts, amount), sorted by customer and time.

    ts is the order's first line that day, amount the sum of those lines; every other KPI
    counts these rows, so they all share one notion of "a purchase"
    (``kpi_engine.purchases``, run by the engine).
    """
    bought = kpi_engine.purchases(kpi_engine.transactions_table(transactions))
    ordered = bought.select("customer_id", "ts", "amount").order_by(["customer_id", "ts", "amount"])
    return to_pandas(ordered)


def orders_per_customer(transactions: pd.DataFrame) -> pd.DataFrame:
    """How many customers made 1, 2, 3, ... purchases (columns customers, share).

    In most shops the 1 bar dwarfs the rest: the share of one-timers is the ceiling
    on what any churn model over repeat behaviour can say.
    """
    counts = purchases(transactions).groupby("customer_id").size()
    dist = counts.value_counts().sort_index()
    dist.index.name = "orders"
    return pd.DataFrame({"customers": dist, "share": dist / dist.sum()})


def repeat_purchase_rate(transactions: KpiSource) -> float:
    """Share of customers (with at least one purchase) who made two or more."""
    kpis = _report_kpis(transactions)
    return kpis.repeat_purchase_rate if kpis is not None else float("nan")


def _report_kpis(
    transactions: KpiSource, lookback_days: int = 90, horizon_days: int = 90
) -> kpi_engine.ReportKpis | None:
    table = kpi_engine.transactions_table(transactions)
    return kpi_engine.report_kpis(table, lookback_days=lookback_days, horizon_days=horizon_days)


def repeat_rate_by_cohort(
    transactions: pd.DataFrame, within_days: int | None = None
) -> pd.DataFrame:
    """Repeat rate per month of first purchase (columns customers, repeaters, repeat_rate).

    Recent cohorts have had less time to come back; ``within_days`` counts a second
    purchase only within that many days of the first, which makes cohorts comparable
    (the last cohorts are still biased low until their window has closed).
    """
    bought = purchases(transactions)
    rank = bought.groupby("customer_id").cumcount()
    first = bought[rank == 0].set_index("customer_id")["ts"]
    second = bought[rank == 1].set_index("customer_id")["ts"].reindex(first.index)
    repeat = second.notna()
    if within_days is not None:
        repeat &= (second - first) <= within_days * _DAY
    table = pd.DataFrame({"cohort": first.dt.to_period("M"), "repeat": repeat})
    out = table.groupby("cohort").agg(customers=("repeat", "size"), repeaters=("repeat", "sum"))
    out["repeat_rate"] = out["repeaters"] / out["customers"]
    return out


def inter_purchase_gaps(transactions: pd.DataFrame) -> pd.Series:
    """Days between consecutive purchases of the same customer (one value per pair).

    Its quantiles are the natural yardstick for the 90-day horizon: if the median
    gap is near or above it, many "churned" labels are customers between purchases.
    """
    bought = purchases(transactions)
    gaps = bought.groupby("customer_id")["ts"].diff().dropna()
    return (gaps.dt.total_seconds() / 86_400).rename("gap_days").reset_index(drop=True)


def monthly_kpis(
    transactions: KpiSource, *, lookback_days: int = 90, horizon_days: int = 90
) -> pd.DataFrame:
    """Per calendar month: active and new customers, orders, revenue, repeat and churn rate.

    * active_customers: customers with a purchase in the month;
    * new_customers: customers whose first purchase falls in the month;
    * orders: purchases in the month; revenue: net of every line in the month
      (cancellations and returns subtracted);
    * repeat_rate: share of the month's buyers with 2+ purchases up to the month's end;
    * churn_rate: the DESIGN.md label applied at cutoff c = the month's first instant:
      of customers with a purchase in (c - lookback_days, c], the share with none in
      (c, c + horizon_days]; NaN until that window has closed (it must end by the
      last transaction) or when nobody was active.
    """
    kpis = _report_kpis(transactions, lookback_days, horizon_days)
    if kpis is None:
        raise ValueError("no transactions: monthly KPIs need at least one")
    return kpis.monthly


def cohort_retention(transactions: KpiSource) -> pd.DataFrame:
    """Cohort (month of first purchase) x months since first purchase: share who bought.

    Column k is the share of the cohort with a purchase in calendar month
    cohort + k; column 0 is 1.0 by definition, and cells past the last month of the
    data are NaN (not yet observable), not 0.
    """
    kpis = _report_kpis(transactions)
    if kpis is None:
        return pd.DataFrame(index=pd.PeriodIndex([], freq="M", name="cohort"), dtype=float)
    return kpis.cohorts


def churn_rate_by_cutoff(labelled: LabelledSource) -> pd.DataFrame:
    """Per snapshot cutoff: population size, churned customers and churn rate.

    A rate that jumps between cutoffs (e.g. around Christmas) means the label's base
    rate moves with the season, which the model must see across training cutoffs.
    A path (Spark's folder of parts, up to 1.4 G rows at 100 M customers) is counted
    by DuckDB as it streams the parts: only a row per cutoff reaches memory.
    """
    if isinstance(labelled, Path):
        labelled = _counts_per_cutoff(labelled)
        out = labelled.set_index(CUTOFF)[["customers", "churned"]]
    else:
        out = labelled.groupby(CUTOFF).agg(customers=(LABEL, "size"), churned=(LABEL, "sum"))
    out["churn_rate"] = out["churned"] / out["customers"]
    if SPLIT in labelled.columns:
        out.insert(0, SPLIT, labelled.groupby(CUTOFF)[SPLIT].first())
    return out


def _counts_per_cutoff(path: Path) -> pd.DataFrame:
    """Customers, churned and the split per cutoff of a labelled table on disk, in
    cutoff order (a cutoff belongs to one split, so any row's split is its split)."""
    source = str(path / "**" / "*.parquet") if path.is_dir() else str(path)
    con = duckdb.connect()
    try:
        table = con.execute(
            f"SELECT {CUTOFF}, any_value({SPLIT}) AS {SPLIT}, count(*) AS customers,"
            f" CAST(sum(CAST({LABEL} AS BIGINT)) AS BIGINT) AS churned"
            f" FROM read_parquet({quote_literal(source)}, hive_partitioning = false)"
            f" GROUP BY {CUTOFF} ORDER BY {CUTOFF}"
        ).fetch_arrow_table()
    finally:
        con.close()
    return table.to_pandas()


def segment_sizes(snapshots: pd.DataFrame, *, normalize: bool = False) -> pd.DataFrame:
    """Customers per RFM segment (columns) at each cutoff (rows); shares if normalize.

    Segments keep the order of segments.SEGMENTS, and empty segments show as 0,
    so tables for different cutoffs or data sets line up.
    """
    segment = snapshots["segment"]
    order = list(SEGMENTS) + sorted(set(segment.dropna().unique()) - set(SEGMENTS))
    counts = (
        snapshots.groupby(["cutoff", segment.astype(object)])
        .size()
        .unstack(fill_value=0)
        .reindex(columns=order, fill_value=0)
    )
    counts.columns.name = "segment"
    return counts.div(counts.sum(axis=1), axis=0) if normalize else counts
