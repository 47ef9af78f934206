"""RFM+ feature expressions, written once in Ibis so DuckDB and Spark run the same definition.

Every timestamp becomes integer epoch seconds up front: integer comparisons
mean the same thing on every backend, whereas interval and date-diff
semantics differ (DuckDB's ``date_diff`` counts boundaries, not elapsed time).
Each feature is an aggregate over events with ``ts < cutoff``, read from
running totals along per-(customer, bucket) totals (``buckets.py``); the
cutoff's bucket numbers (its edge table) are the only place that touches the
cutoff, so a feature cannot look past it by construction, and the leakage test
checks that it does not.

Money is summed as integer millionths and gaps as integer seconds: exact sums
do not depend on the order in which an engine's threads add them, so a rerun
on the same data gives bit-identical features (float sums differ in the last
bits from run to run). Integers are also the cheapest type every engine sums.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ibis
import ibis.expr.types as ir

from churn.config import SnapshotConfig
from churn.features.buckets import DAY, TREND_DAYS, YEAR_DAYS
from churn.schema import LABEL, SNAPSHOT_ID_COLUMNS

# Money is summed in integer millionths (a line's amount rounded to six decimals).
MICROS = 1_000_000
# Peak of the Christmas season as day-of-year; horizon-aware seasonal features
# measure how far each cutoff is from it.
_CHRISTMAS_DOY = 359


def month_number(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Months since year 0, so "months between" is a plain integer difference."""
    return ts.year().cast("int64") * 12 + ts.month().cast("int64") - 1


def order_events(transactions: ir.Table, *, neighbours: bool = False) -> ir.Table:
    """One row per order and day (lines summed); purchases carry the gap since the last one.

    Cancellations and returns stay as negative events: they reduce revenue and
    count as returns, but are not purchases. Lines are merged per calendar day
    only: cutoffs fall on midnight, so a group never straddles one, and a
    cancellation posted days later under the same invoice becomes its own
    return event instead of rewriting the order's amount in the past (leakage).
    Guest lines (no order id) are one order per instant: grouped by the
    timestamp itself, not by a text rendering of it (formatting 10 M timestamps
    cost more than the rest of the grouping).

    ``first_country`` is set on the customer's first purchase only: the
    country of their earliest order (same-instant orders: the smallest
    country), which no later transaction can change.

    ``neighbours`` adds what the report's KPIs ask of each purchase beyond its gap,
    from the same window (one sort serves both): the next purchase's ``next_s`` and the
    customer's first purchase ``first_s`` (churn.scoring.kpi_engine).
    """
    t = transactions
    micros = (t.amount * MICROS).round().cast("int64")
    guest_ts = ibis.cases((t.order_id.isnull(), t.ts), else_=ibis.null(t.ts.type()))
    orders = (
        t.mutate(micros=micros, order_day=t.ts.date(), guest_ts=guest_ts)
        .group_by(["customer_id", "order_id", "order_day", "guest_ts"])
        .aggregate(ts=t.ts.min(), amount=ibis._.micros.sum(), country=t.country.min())
    )
    # Round sub-second times down, so `ts_s < cutoff_s` means exactly `ts < cutoff` for
    # whole-second cutoffs (a plain cast rounds to nearest: c - 0.4 s became c, the future).
    is_purchase = orders.amount > 0
    orders = orders.mutate(
        ts_s=orders.ts.truncate("s").epoch_seconds().cast("int64"),
        is_purchase=is_purchase,
        is_holiday=orders.ts.month().isin([11, 12]),
    )
    return _with_window_columns(orders, neighbours)


def _with_window_columns(orders: ir.Table, neighbours: bool) -> ir.Table:
    """:func:`order_events`' columns read along each customer's orders in time."""
    # Purchases and returns in separate partitions: a purchase's gap is to the previous
    # purchase. Same-instant purchases tie on ts; their gaps sum the same either way.
    # One window (one sort) for all three: a day's orders are contiguous in time, so the
    # first of a day is the one whose predecessor fell on another day (a second window
    # per day sorted the 10 M orders again, ~1/3 of this step).
    by_time = ibis.window(
        group_by=[orders.customer_id, orders.is_purchase],
        order_by=[orders.ts, orders.country],
    )
    first = orders.is_purchase & (ibis.row_number().over(by_time) == 0)
    previous_day = orders.order_day.lag().over(by_time)
    # In the same mutate as the rest: a column added after it is a second window, a
    # second sort of every order.
    neighbour_columns = (
        {"next_s": orders.ts_s.lead().over(by_time), "first_s": orders.ts_s.first().over(by_time)}
        if neighbours
        else {}
    )
    events = orders.mutate(
        gap_s=ibis.ifelse(
            orders.is_purchase, orders.ts_s - orders.ts_s.lag().over(by_time), ibis.null("int64")
        ),
        first_country=ibis.ifelse(first, orders.country, ibis.null("string")),
        new_day=orders.is_purchase & ibis.coalesce(previous_day != orders.order_day, True),
        **neighbour_columns,
    )
    columns = ["customer_id", "ts_s", "amount", "is_purchase", "is_holiday", "gap_s", "new_day"]
    return events.select(*columns, "first_country", *neighbour_columns)


def count_where(condition: ir.BooleanValue) -> ir.IntegerScalar:
    return ibis.ifelse(condition, 1, 0).sum()


def bucket_totals(events: ir.Table) -> ir.Table:
    """Per (customer, bucket): everything the cutoffs add up, exact (integers only).

    ``events`` come from :func:`order_events` with a ``bucket`` column
    (:func:`churn.features.buckets.bucket_of`).
    """
    return events.group_by(["customer_id", "bucket"]).aggregate(**bucket_aggregates(events))


def bucket_aggregates(
    events: ir.Table, where: ir.BooleanValue | None = None
) -> dict[str, ir.Value]:
    """:func:`bucket_totals`' aggregates, over the events ``where`` holds (all: None).

    The single-cutoff path (``cutoff_totals``) sums the same definitions straight
    from the events, restricted to the buckets up to its cutoff. ``country`` is the
    one non-null ``first_country`` of the group (only a customer's first purchase
    carries one), so any non-null value is it: ``arbitrary`` (DuckDB ``any_value``,
    Spark ``first ... IGNORE NULLS``) instead of a string ``max``, ~10 % of the
    nightly's per-customer query at 3.3 M customers.
    """

    def within(condition: ir.BooleanValue) -> ir.BooleanValue:
        return condition if where is None else condition & where

    p = within(events.is_purchase)
    gap = events.gap_s
    return {
        "n_orders": count_where(p).cast("int64"),
        "n_purchase_days": count_where(within(events.new_day)).cast("int64"),
        "revenue": events.amount.sum(where=where).cast("int64"),
        "max_order_value": events.amount.max(where=p),
        "first_purchase_s": events.ts_s.min(where=p),
        "last_purchase_s": events.ts_s.max(where=p),
        "gap_sq_s": (gap * gap).sum(where=where).cast("int64"),
        "n_holiday_orders": count_where(p & events.is_holiday).cast("int64"),
        "n_returns": count_where(within(~events.is_purchase)).cast("int64"),
        "country": events.first_country.arbitrary(where=where),
    }


# What the running totals carry: bucket totals summed (or min/max-ed) from the
# customer's first bucket up to and including each bucket.
RUNNING = {
    "n_orders": "sum",
    "n_purchase_days": "sum",
    "revenue": "sum",
    "gap_sq_s": "sum",
    "n_holiday_orders": "sum",
    "n_returns": "sum",
    "max_order_value": "max",
    "first_purchase_s": "min",
    "last_purchase_s": "max",
    "country": "max",
}
# next_bucket of a customer's latest bucket: past every bucket a cutoff can ask for.
_NO_NEXT = 2**31 - 1


def running_totals(totals: ir.Table) -> ir.Table:
    """Per (customer, bucket): everything up to and including the bucket, and the next bucket.

    ``totals`` come from :func:`bucket_totals`. The row with
    ``bucket <= k < next_bucket`` is then the customer's whole past up to the
    end of bucket ``k``: a cutoff's all-time values are one such row per
    customer, and a window ``[c - w, c)`` is the difference of two of them
    (prefix sums), so no cutoff re-adds old buckets. ``code`` numbers the
    customers densely in ``customer_id`` order: the per-cutoff joins match on
    it, which costs DuckDB half what matching strings does.
    """
    t = totals
    # A window, not a join to the distinct ids: DuckDB inlines a table read twice in
    # one query, so the join recomputed every bucket total (6 s at 10 M).
    code = ibis.dense_rank().over(order_by=t.customer_id).cast("int64")
    upto = ibis.cumulative_window(group_by=t.customer_id, order_by=t.bucket)
    ordered = ibis.window(group_by=t.customer_id, order_by=t.bucket)
    running: dict[str, ir.Value] = {}
    for column, how in RUNNING.items():
        value = getattr(t[column], how)().over(upto)
        running[column] = value.cast("int64") if how == "sum" else value
    return t.select(
        "customer_id",
        "bucket",
        code=code,
        next_bucket=ibis.coalesce(t.bucket.lead().over(ordered), _NO_NEXT).cast("int32"),
        **running,
    )


def customers(running: ir.Table) -> ir.Table:
    """Each customer of a :func:`running_totals` table once: the row of their latest bucket
    (the only one with no next bucket), which a filter finds without a distinct."""
    return running.filter(running.next_bucket == _NO_NEXT).select("customer_id")


def _as_of_edge(
    running: ir.Table, edges: ir.Table, edge: str, columns: Mapping[str, str], *, moved: bool
) -> ir.Table:
    """Each customer's running totals at ``edges[edge]`` (a bucket number), per cutoff:
    ``columns`` maps the names given to the running totals' columns.

    An inequality join against the cutoffs' edge table: with one cutoff it is a
    filter (DuckDB runs it as a nested loop against one row), with several
    every engine plans it as a small range join. ``moved``: only the customers
    whose row there is not their row at the cutoff (``at``), i.e. who had a bucket
    between the two: for an edge before the cutoff, rows that ended by the cutoff's
    bucket; for one after it, rows that began after it.
    """
    e = edges.select("cutoff_i", k=edges[edge], at=edges["at"])
    r = running.view()  # each edge is a self-join of the running totals
    on = [r.bucket <= e.k, r.next_bucket > e.k]
    if moved:
        on.append(r.next_bucket <= e.at if edge != "end" else r.bucket > e.at)
    j = r.join(e, on)
    return j.select("code", "cutoff_i", **{name: j[source] for name, source in columns.items()})


def _join_at_edge(
    t: ir.Table, running: ir.Table, edges: ir.Table, edge: str, **columns: str
) -> ir.Table:
    """``t`` (each customer's row at the cutoff, its ``bucket`` and the cutoff's ``edge``)
    with each ``columns`` value at ``edge`` joined on.

    Most customers have the same row at both edges (no order in the window, none in
    the label window): their values are the cutoff's own, and the join looks up only
    the others (``moved``), whose hash tables were half the rows or less: 5-20 % of a
    cutoff's query at 10 M transactions. Before the cutoff, a customer with neither
    (their first bucket began after the edge) had nothing yet: 0. After it, the row
    at the cutoff reaches the edge unless a later one does.
    """
    moved = _as_of_edge(running, edges, edge, columns, moved=True)
    t = t.left_join(moved, ["code", "cutoff_i"]).drop("code_right", "cutoff_i_right")
    same = t.bucket <= t[edge] if edge != "end" else ibis.literal(True)
    return t.mutate(
        **{
            name: ibis.coalesce(t[name], ibis.ifelse(same, t[source], 0))
            for name, source in columns.items()
        }
    )


def point_in_time_features(
    running: ir.Table,
    edges: ir.Table,
    windows_days: Sequence[int],
    snapshots: SnapshotConfig,
    *,
    with_label: bool,
) -> ir.Table:
    """Every feature per (customer, cutoff) from the running totals, and the label if asked.

    ``running`` comes from :func:`running_totals`, ``edges`` from
    :meth:`BucketPlan.edge_table`: per cutoff, the bucket numbers of the cutoff
    (``at``), of each window's start (``lo_<w>d``) and of the label window's
    end (``end``). All-time values are the running totals at ``at``; a
    window's count is ``at``'s minus ``lo_<w>d``'s, the label ``end``'s minus
    ``at``'s. Rows are every customer with a purchase by the cutoff (what the
    BTYD fits read); ``in_population`` marks the active ones.
    """
    windows = sorted(
        int(c.removeprefix("lo_").removesuffix("d")) for c in edges.columns if c.startswith("lo_")
    )
    t = _totals_at_edges(running, edges, windows, windows_days, with_label=with_label)
    return features_from_totals(t, windows, windows_days, snapshots, with_label=with_label)


def features_from_totals(
    t: ir.Table,
    windows: Sequence[int],
    windows_days: Sequence[int],
    snapshots: SnapshotConfig,
    *,
    with_label: bool,
) -> ir.Table:
    """Every feature from a table shaped like :func:`_totals_at_edges`' output.

    Shared by the running-totals path and the single-cutoff one
    (:mod:`churn.features.cutoff_totals`), so both derive the features by the very
    same expressions and differ only in how the totals are summed.
    """
    t = _window_counts(t, windows, windows_days, snapshots.horizon_days)
    money = ["revenue", "max_order_value"]
    t = t.mutate(**{c: t[c].cast("float64") / MICROS for c in money})
    t = _derive(t, snapshots)
    if with_label:
        t = t.mutate(churned=(t.n_by_end == t.n_orders).cast("int8"))
    return _select_features(t, windows_days, snapshots, with_label=with_label)


def _totals_at_edges(
    running: ir.Table,
    edges: ir.Table,
    windows: Sequence[int],
    windows_days: Sequence[int],
    *,
    with_label: bool,
) -> ir.Table:
    """Per (customer, cutoff): the running totals at the cutoff, the counts (and, for the
    feature windows, revenue) before each window's start, the count at the label window's
    end if asked, and the cutoff's own columns. Customers with no purchase by the cutoff
    have no row."""
    columns = {"customer_id": "customer_id", "bucket": "bucket", **{c: c for c in RUNNING}}
    t = _as_of_edge(running, edges, "at", columns, moved=False)
    t = t.filter(t.last_purchase_s.notnull())
    looked_up = [f"lo_{w}d" for w in windows] + (["end"] if with_label else [])
    t = t.join(edges.select("cutoff_i", "cutoff", "cutoff_s", "split", *looked_up), "cutoff_i")
    for w in windows:
        before = {f"n_before_{w}d": "n_orders"}
        if w in windows_days:
            before[f"revenue_before_{w}d"] = "revenue"
        t = _join_at_edge(t, running, edges, f"lo_{w}d", **before)
    if with_label:
        t = _join_at_edge(t, running, edges, "end", n_by_end="n_orders")
    return t.drop("bucket", *looked_up)


def _window_counts(
    t: ir.Table, windows: Sequence[int], windows_days: Sequence[int], horizon_days: int
) -> ir.Table:
    """Orders (and revenue) inside each window ``(c - w, c]``: the total at the cutoff minus
    the total before the window, plus the trend and same-season-last-year counts."""
    n_in = {w: t.n_orders - t[f"n_before_{w}d"] for w in windows}
    year_minus_horizon = n_in[YEAR_DAYS - horizon_days] if YEAR_DAYS - horizon_days > 0 else 0
    return t.mutate(
        recent_90d_orders=n_in[TREND_DAYS],
        n_orders_prev_90d=n_in[2 * TREND_DAYS] - n_in[TREND_DAYS],
        n_orders_last_year_horizon=n_in[YEAR_DAYS] - year_minus_horizon,
        **{f"n_orders_{w}d": n_in[w] for w in windows_days},
        **{
            f"revenue_{w}d": (t.revenue - t[f"revenue_before_{w}d"]).cast("float64") / MICROS
            for w in windows_days
        },
    )


def _select_features(
    t: ir.Table, windows_days: Sequence[int], snapshots: SnapshotConfig, *, with_label: bool
) -> ir.Table:
    """The snapshot's columns in their fixed order (helpers dropped), and ``in_population``:
    a purchase inside the active window before the cutoff."""
    counts = ["n_orders_prev_90d", "n_orders_last_year_horizon", "n_holiday_orders", "n_returns"]
    windowed = [c for w in windows_days for c in (f"n_orders_{w}d", f"revenue_{w}d")]
    derived = [
        "recency_days",
        "tenure_days",
        "avg_order_value",
        "mean_gap_days",
        "gap_sd_days",
        "overdue_ratio",
        "trend_90d",
        "holiday_order_share",
        "return_rate",
        "days_to_christmas",
        "christmas_in_horizon",
        "country",
    ]
    keys = [*SNAPSHOT_ID_COLUMNS, "n_orders", "n_purchase_days", "revenue", "max_order_value"]
    label = [LABEL] if with_label else []
    active_s = snapshots.active_window_days * DAY
    in_population = t.last_purchase_s >= t.cutoff_s - active_s
    return t.select(*keys, *counts, *windowed, *derived, *label, in_population=in_population)


def _derive(t: ir.Table, snapshots: SnapshotConfig) -> ir.Table:
    """Ratios and spans built from the per-cutoff aggregates.

    Gaps telescope: the gaps between a customer's purchases up to ``c`` sum to
    last minus first purchase, so only their squares need a sum of their own.
    """
    n_gaps = t.n_orders - 1
    span_days = (t.last_purchase_s - t.first_purchase_s) / DAY
    mean_gap = ibis.ifelse(n_gaps > 0, span_days / n_gaps, ibis.null("float64"))
    variance = t.gap_sq_s.cast("float64") / (DAY * DAY) / n_gaps - mean_gap * mean_gap
    recency = (t.cutoff_s - t.last_purchase_s) / DAY
    days_to_christmas = ((_CHRISTMAS_DOY - t.cutoff.day_of_year()) % 365 + 365) % 365
    return t.mutate(
        recency_days=recency,
        tenure_days=(t.cutoff_s - t.first_purchase_s) / DAY,
        avg_order_value=t.revenue / t.n_orders,
        mean_gap_days=mean_gap,
        gap_sd_days=ibis.ifelse(
            n_gaps > 1, ibis.greatest(variance, 0.0).sqrt(), ibis.null("float64")
        ),
        overdue_ratio=ibis.ifelse(
            mean_gap.isnull(), ibis.null("float64"), recency / ibis.greatest(mean_gap, 1.0)
        ),
        trend_90d=((t.recent_90d_orders + 1) / (t.n_orders_prev_90d + 1)).ln(),
        holiday_order_share=t.n_holiday_orders / t.n_orders,
        return_rate=t.n_returns / t.n_orders,
        days_to_christmas=days_to_christmas.cast("int64"),
        christmas_in_horizon=(days_to_christmas < snapshots.horizon_days).cast("int8"),
    )
