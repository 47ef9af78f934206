"""Each listed customer's outcome, and the contacted-versus-control sums per group, in DuckDB.

**Outcome.** A listed customer is *retained* when they buy within the horizon after
their listing date: a transaction with ``as_of < ts <= as_of + horizon`` (midnights,
the label window of the churn model, so "retained" is exactly "not churned").
Their *revenue* is the net amount of those transactions (cancellations count
negative). Transactions come from the outcomes ingest, which reads past the list.

**Open horizons.** Data seen up to ``data_end`` (the day after the latest
transaction): a window ending later is open and is measured "so far", over the
days seen; its campaign is marked ``horizon_closed: false``.

**Arms.** Intent-to-treat: every listed non-control customer is contacted. With a
contact log, ``reached`` says whether the CRM reached them within the campaign
(``contacted_only`` keeps the reached ones against the whole control group).

Everything is one join and one grouped aggregate over Parquet, so the measurement
costs about what a plain DuckDB group-by over the same join costs
(``benchmarks/outcomes.py``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd

from churn.data.sources import quote_literal

# Group dimensions of the read-out, in the order their sums come back.
DIMENSIONS = ("campaign", "action", "risk_band", "segment")
_SUMS = """
    count(*) FILTER (WHERE treated) AS n1,
    count(*) FILTER (WHERE NOT treated) AS n0,
    count(*) FILTER (WHERE treated AND retained) AS r1,
    count(*) FILTER (WHERE NOT treated AND retained) AS r0,
    coalesce(sum(revenue) FILTER (WHERE treated), 0) AS s1,
    coalesce(sum(revenue) FILTER (WHERE NOT treated), 0) AS s0,
    coalesce(sum(revenue * revenue) FILTER (WHERE treated), 0) AS q1,
    coalesce(sum(revenue * revenue) FILTER (WHERE NOT treated), 0) AS q0,
    coalesce(sum(contact_cost) FILTER (WHERE treated), 0) AS cost,
    bool_and(closed) AS closed,
    min(observed_days) AS observed_days
"""


def data_end(con: duckdb.DuckDBPyConnection, transactions: Path) -> dt.date | None:
    """The day after the latest transaction: the first day the data has not seen."""
    row = con.execute(
        f"SELECT max(ts) FROM read_parquet({quote_literal(str(transactions))})"
    ).fetchone()
    if row is None or row[0] is None:
        return None
    last = pd.Timestamp(row[0])
    return (last.normalize() + pd.Timedelta(days=1)).date()


def customer_outcomes(
    con: duckdb.DuckDBPyConnection,
    transactions: Path,
    horizon_days: int,
    end: dt.date,
    contacts: Path | None = None,
    campaign_days: int = 30,
) -> None:
    """Create the temp table ``outcomes`` from ``listed`` (churn.outcomes.lists) and the
    transactions: treated, reached, retained, revenue, closed, observed_days per row."""
    tx = quote_literal(str(transactions))
    reached = "NULL::BOOLEAN"
    if contacts is not None:
        reached = f"""coalesce((SELECT bool_or(k.reached) FROM read_parquet({
            quote_literal(str(contacts))
        }) k WHERE k.customer_id = l.customer_id AND k.date >= l.as_of
            AND k.date < l.as_of + INTERVAL {campaign_days} DAY), false)"""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE outcomes AS
        WITH windows AS (
            SELECT l.*, NOT l.control_group AS treated,
                   l.as_of + INTERVAL {horizon_days} DAY AS window_end
            FROM listed l
        ),
        bought AS (
            SELECT w.campaign, w.customer_id, count(*) AS n, sum(t.amount) AS revenue
            FROM windows w
            JOIN read_parquet({tx}) t
              ON t.customer_id = w.customer_id AND t.ts > w.as_of AND t.ts <= w.window_end
            GROUP BY ALL
        )
        SELECT l.campaign, l.as_of, l.customer_id, l.action, l.contact_cost, l.risk_band,
               l.segment, l.churn_probability, l.expected_value_12m, l.treated,
               {reached} AS reached,
               coalesce(b.n, 0) > 0 AS retained,
               coalesce(b.revenue, 0)::DOUBLE AS revenue,
               l.window_end <= DATE '{end.isoformat()}' AS closed,
               least(date_diff('day', l.as_of, DATE '{end.isoformat()}'), {horizon_days})
                   AS observed_days
        FROM windows l LEFT JOIN bought b USING (campaign, customer_id)"""
    )


def group_sums(con: duckdb.DuckDBPyConnection, contacted_only: bool = False) -> pd.DataFrame:
    """Per-arm sums for every group: ``level`` (pooled, campaign, action, risk_band,
    segment), ``key``, then n1/n0 (contacted/control), r1/r0 (retained), s1/s0 and q1/q0
    (revenue and its squares), cost, closed, observed_days.

    Pooled, action, band and segment rows use the closed campaigns (every campaign
    while none has closed); campaign rows include the open ones.
    """
    scope = "WHERE closed OR NOT (SELECT bool_or(closed) FROM outcomes)"
    rows = "outcomes"
    if contacted_only:
        rows = "(SELECT * FROM outcomes WHERE NOT treated OR reached)"
    dims = DIMENSIONS[1:]
    level = " ".join(f"WHEN grouping({d}) = 0 THEN '{d}'" for d in dims)
    key = ", ".join(f"CAST({d} AS VARCHAR)" for d in dims)
    sets = ", ".join(["()", *(f"({d})" for d in dims)])
    query = f"""
        SELECT CASE {level} ELSE 'pooled' END AS level, coalesce({key}) AS key, {_SUMS}
        FROM {rows} o {scope} GROUP BY GROUPING SETS ({sets})
        UNION ALL
        SELECT 'campaign' AS level, CAST(campaign AS VARCHAR) AS key, {_SUMS}
        FROM {rows} o GROUP BY campaign
        ORDER BY level, key"""
    return con.execute(query).df()
