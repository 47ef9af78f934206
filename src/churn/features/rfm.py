"""RFM+ feature expressions, written once in Ibis so DuckDB and Spark run the same definition.

Every timestamp becomes integer epoch seconds up front: integer comparisons
mean the same thing on every backend, whereas interval and date-diff
semantics differ (DuckDB's ``date_diff`` counts boundaries, not elapsed time).
Each feature is an aggregate over events with ``ts <= cutoff``; the join
condition is the only place that touches the cutoff, so a feature cannot look
past it by construction, and the leakage test checks that it does not.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir

from churn.config import SnapshotConfig

DAY = 86_400
# Peak of the Christmas season as day-of-year; horizon-aware seasonal features
# measure how far each cutoff is from it.
_CHRISTMAS_DOY = 359


def order_events(transactions: ir.Table) -> ir.Table:
    """One row per order and day (lines summed); purchases carry the gap since the last one.

    Cancellations and returns stay as negative events: they reduce revenue and
    count as returns, but are not purchases. Lines are merged per calendar day
    only: cutoffs fall on midnight, so a group never straddles one, and a
    cancellation posted days later under the same invoice becomes its own
    return event instead of rewriting the order's amount in the past (leakage).
    """
    key = ibis.coalesce(transactions.order_id, transactions.ts.cast("string"))
    orders = (
        transactions.mutate(order_key=key, order_day=transactions.ts.date())
        .group_by(["customer_id", "order_key", "order_day"])
        .aggregate(ts=transactions.ts.min(), amount=transactions.amount.sum())
    )
    # Round sub-second times up, so `ts_s <= cutoff_s` means exactly `ts <= cutoff` for
    # whole-second cutoffs (a plain cast rounds to nearest: c + 0.4 s became c, history).
    whole_second = orders.ts.truncate("s")
    orders = orders.mutate(
        ts_s=whole_second.epoch_seconds().cast("int64")
        + ibis.ifelse(orders.ts > whole_second, 1, 0),
        is_holiday=orders.ts.month().isin([11, 12]),
    )
    purchases = orders.filter(orders.amount > 0)
    previous = purchases.ts_s.lag().over(
        ibis.window(group_by=purchases.customer_id, order_by=[purchases.ts_s, purchases.order_key])
    )
    purchases = purchases.mutate(is_purchase=ibis.literal(True), gap_s=purchases.ts_s - previous)
    returns = orders.filter(orders.amount <= 0).mutate(
        is_purchase=ibis.literal(False), gap_s=ibis.null("int64")
    )
    columns = ["customer_id", "ts_s", "amount", "is_purchase", "is_holiday", "gap_s"]
    return purchases.select(columns).union(returns.select(columns))


def _count(condition: ir.BooleanValue) -> ir.IntegerScalar:
    return ibis.ifelse(condition, 1, 0).sum()


def point_in_time_features(
    events: ir.Table,
    cutoffs: ir.Table,
    windows_days: Sequence[int],
    snapshots: SnapshotConfig,
) -> ir.Table:
    """Aggregate each customer's events with ``ts <= cutoff`` into features, per cutoff."""
    joined = events.join(cutoffs, events.ts_s <= cutoffs.cutoff_s)
    purchase = joined.is_purchase
    age = joined.cutoff_s - joined.ts_s
    horizon = snapshots.horizon_days * DAY
    gap_days = joined.gap_s / DAY
    aggregates: dict[str, ir.Scalar] = {
        "first_purchase_s": joined.ts_s.min(where=purchase),
        "last_purchase_s": joined.ts_s.max(where=purchase),
        "n_orders": _count(purchase),
        "revenue": joined.amount.sum(),
        "max_order_value": joined.amount.max(where=purchase),
        "gap_day_sum": gap_days.sum(where=purchase),
        "gap_day_sq_sum": (gap_days * gap_days).sum(where=purchase),
        "recent_90d_orders": _count(purchase & (age < 90 * DAY)),
        "n_orders_prev_90d": _count(purchase & (age >= 90 * DAY) & (age < 180 * DAY)),
        "n_orders_last_year_horizon": _count(
            purchase & (age >= 365 * DAY - horizon) & (age < 365 * DAY)
        ),
        "n_holiday_orders": _count(purchase & joined.is_holiday),
        "n_returns": _count(~purchase),
    }
    for w in windows_days:
        aggregates[f"n_orders_{w}d"] = _count(purchase & (age < w * DAY))
        aggregates[f"revenue_{w}d"] = ibis.coalesce(joined.amount.sum(where=age < w * DAY), 0.0)
    group_keys = [events.customer_id, *[cutoffs[c] for c in cutoffs.columns]]
    table = joined.group_by([k.get_name() for k in group_keys]).aggregate(**aggregates)
    return _derive(table, snapshots).drop(
        "first_purchase_s", "gap_day_sum", "gap_day_sq_sum", "recent_90d_orders"
    )


def _derive(t: ir.Table, snapshots: SnapshotConfig) -> ir.Table:
    """Ratios and spans built from the per-cutoff aggregates."""
    n_gaps = t.n_orders - 1
    mean_gap = ibis.ifelse(n_gaps > 0, t.gap_day_sum / n_gaps, ibis.null("float64"))
    variance = t.gap_day_sq_sum / n_gaps - mean_gap * mean_gap
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


def attach_label(table: ir.Table, events: ir.Table, cutoffs: ir.Table, horizon_s: int) -> ir.Table:
    """churned = 1 when the customer makes no purchase in (cutoff, cutoff + horizon].

    Future purchases are matched to the cutoff table itself, not to the feature
    rows, so the engine does not evaluate the point-in-time aggregation twice.
    """
    purchases = events.filter(events.is_purchase)
    hits = (
        purchases.join(
            cutoffs,
            [
                purchases.ts_s > cutoffs.cutoff_s,
                purchases.ts_s <= cutoffs.cutoff_s + horizon_s,
            ],
        )
        .group_by(["customer_id", "cutoff"])
        .aggregate(n_future_orders=lambda t: t.count())
    )
    labelled = table.left_join(hits, ["customer_id", "cutoff"])
    labelled = labelled.drop([c for c in labelled.columns if c.endswith("_right")])
    return labelled.mutate(churned=labelled.n_future_orders.isnull().cast("int8")).drop(
        "n_future_orders"
    )
