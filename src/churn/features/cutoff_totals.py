"""One cutoff's totals per customer by a single group-by, for the nightly's scoring snapshot.

The multi-cutoff machinery (``rfm.running_totals``) takes running totals along
every customer's buckets and reads them back with one self-join per window
edge: the right trade when dozens of cutoffs share the table, pure overhead
when there is one (the nightly, `churn score --as-of`). With one cutoff every
edge is a constant instant, so the running total at an edge is the sum (min,
max) of the customer's events before it: one conditional aggregate per edge,
one group-by in all, no window, no join and no bucket table.

The aggregates are :func:`rfm.bucket_aggregates` itself and the features are
derived by :func:`rfm.features_from_totals`, so this path differs from the
running totals only in how the same integers are added: the rows are identical
(held to the multi-cutoff tables by a test).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ibis
import ibis.expr.types as ir

from churn.config import SnapshotConfig
from churn.features.rfm import bucket_aggregates, count_where, features_from_totals


def cutoff_totals(
    events: ir.Table,
    before_s: Mapping[int, int],
    windows_days: Sequence[int],
) -> ir.Table:
    """Per customer: what ``rfm._totals_at_edges`` reads from the running totals at as_of.

    ``events`` are :func:`rfm.order_events` of the transactions before ``as_of``,
    the cutoff: every one of them is in the cutoff's past, so the all-time
    aggregates are :func:`rfm.bucket_aggregates` unrestricted. ``before_s`` maps
    each window length ``w`` to the epoch second its window ``[c - w, c)`` starts:
    the bucket edge ``lo_<w>d`` of the multi-cutoff path is exactly "the events
    before it", since every edge is a midnight and an event's bucket is fixed by
    its day (:mod:`churn.features.buckets`). Counts and sums are exact integers,
    the window ones written as sums of zero or the value (not ``FILTER``, which
    DuckDB evaluates once per aggregate; the same integers). Every customer with
    an event before ``as_of`` keeps a row: the BTYD fit sample is drawn from them,
    as from the running totals.
    """
    e = events
    columns: dict[str, ir.Value] = dict(bucket_aggregates(e))
    for w, start_s in sorted(before_s.items()):
        before = e.ts_s < start_s
        columns[f"n_before_{w}d"] = count_where(e.is_purchase & before).cast("int64")
        if w in windows_days:
            inside = ibis.ifelse(before, e.amount, 0)
            columns[f"revenue_before_{w}d"] = inside.sum().cast("int64")
    return e.group_by("customer_id").aggregate(**columns)


def cutoff_features(
    totals: ir.Table,
    edges: ir.Table,
    windows: Sequence[int],
    windows_days: Sequence[int],
    snapshots: SnapshotConfig,
) -> ir.Table:
    """Every feature (no label) of the customers in ``totals`` (a :func:`cutoff_totals`
    table) with a purchase by the cutoff; ``edges`` is the cutoff's one-row edge table."""
    t = totals.filter(totals.last_purchase_s.notnull())
    t = t.cross_join(edges.select("cutoff", "cutoff_s", "split"))
    return features_from_totals(t, windows, windows_days, snapshots, with_label=False)
