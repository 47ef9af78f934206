"""One cutoff's totals per customer by a single group-by, for the nightly's scoring snapshot.

The multi-cutoff machinery (``rfm.running_totals``) takes running totals along
every customer's buckets and reads them back with one self-join per window
edge: the right trade when dozens of cutoffs share the table, pure overhead
when there is one (the nightly, `churn score --as-of`). With one cutoff every
edge is a constant bucket number, so the running total at edge ``k`` is the
sum (min, max) of the customer's bucket totals with ``bucket <= k``: one
conditional aggregate per edge, one group-by in all, no window and no join.

The bucket totals are :func:`rfm.bucket_totals` itself and the features are
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
    edge: Mapping[str, int],
    windows: Sequence[int],
    windows_days: Sequence[int],
) -> ir.Table:
    """Per customer: what ``rfm._totals_at_edges`` reads from the running totals at one cutoff.

    ``events`` are :func:`rfm.order_events` with their ``bucket``
    (:func:`buckets.bucket_of`), ``edge`` is the cutoff's row of
    :meth:`BucketPlan.edge_table` (``at`` and ``lo_<w>d``). Each aggregate is
    :func:`rfm.bucket_totals`' own, restricted to the buckets up to an edge: summed
    straight from the events rather than per bucket first (a second group-by of
    millions of rows, ~9 s at 10 M lines), the same integers. Every customer with an
    event before ``as_of`` keeps a row (the BTYD sample and the chunks are drawn from
    them, as from the running totals); ``code`` numbers them as ``running_totals`` does.
    """
    e = events
    upto = e.bucket <= int(edge["at"])
    columns: dict[str, ir.Value] = dict(bucket_aggregates(e, upto))
    for w in windows:
        before = e.bucket <= int(edge[f"lo_{w}d"])
        columns[f"n_before_{w}d"] = _zero_if_none(count_where(e.is_purchase & before))
        if w in windows_days:
            columns[f"revenue_before_{w}d"] = _zero_if_none(e.amount.sum(where=before))
    per_customer = e.group_by("customer_id").aggregate(**columns)
    code = ibis.dense_rank().over(order_by=per_customer.customer_id).cast("int64")
    return per_customer.mutate(code=code)


def _zero_if_none(total: ir.NumericValue) -> ir.IntegerValue:
    return ibis.coalesce(total.cast("int64"), 0)


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
