"""The point-in-time calendar, the population at each cutoff and the churn label.

Definitions (DESIGN.md), every window half-open so that a calendar day is wholly
on one side of each edge: features at cutoff ``c`` (a midnight) use only
``ts < c``; the population is everyone with a purchase in
``[c - active_window, c)``; churned means no purchase in ``[c, c + horizon)``,
whose last day ``c + horizon - 1`` is the last one ``as_of = c + horizon`` keeps
(transactions at or after ``as_of`` are ignored). Date-only and timestamped logs
agree: a purchase dated on the label window's last day is inside it. The test
cutoff is the latest one whose label window has closed by ``as_of``, validation
is one horizon earlier, training cutoffs come earlier still with their label
windows closed before the validation cutoff, so no label ever peeks past the next
split.

The expressions are built from bucket totals (``buckets.py``): events are summed
once per (customer, time bucket), running totals are taken along the buckets,
and every cutoff reads one running-total row per customer and window edge.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import pandas as pd

from churn.config import FeaturesConfig, SnapshotConfig
from churn.errors import UserError
from churn.features import buckets, cutoff_totals, rfm
from churn.features.buckets import BucketPlan
from churn.schema import CUTOFF, SPLIT, TEST_SPLIT, TRAIN_SPLIT, VALID_SPLIT


@dataclass(frozen=True)
class Calendar:
    """Every cutoff the pipeline uses, fixed once from the data's date range."""

    as_of: dt.date
    test_cutoff: dt.date
    valid_cutoff: dt.date
    train_cutoffs: tuple[dt.date, ...]

    def labelled(self) -> pd.DataFrame:
        """Cutoffs with a closed label window, oldest first, with their split name."""
        rows = [(c, TRAIN_SPLIT) for c in sorted(self.train_cutoffs)]
        rows += [(self.valid_cutoff, VALID_SPLIT), (self.test_cutoff, TEST_SPLIT)]
        return pd.DataFrame(rows, columns=[CUTOFF, SPLIT])

    def to_dict(self) -> dict[str, object]:
        return {
            "as_of": self.as_of.isoformat(),
            "test_cutoff": self.test_cutoff.isoformat(),
            "valid_cutoff": self.valid_cutoff.isoformat(),
            "train_cutoffs": [c.isoformat() for c in sorted(self.train_cutoffs)],
        }


def default_as_of(last_transaction: dt.datetime) -> dt.date:
    """The day after the latest transaction: "today" for a fresh export."""
    return last_transaction.date() + dt.timedelta(days=1)


def build_calendar(
    config: SnapshotConfig, first_transaction: dt.datetime, last_transaction: dt.datetime
) -> Calendar:
    """Place the test, validation and training cutoffs; refuse when history is too short."""
    as_of = config.as_of or default_as_of(last_transaction)
    horizon = dt.timedelta(days=config.horizon_days)
    test = as_of - horizon
    valid = test - horizon
    latest_train = valid - horizon
    earliest_allowed = first_transaction.date() + dt.timedelta(days=config.min_history_days)
    step = dt.timedelta(days=config.cutoff_every_days)
    train = tuple(
        c
        for c in (latest_train - k * step for k in range(config.n_train_cutoffs))
        if c >= earliest_allowed
    )
    if not train:
        raise UserError(
            f"not enough history for a training cutoff: data starts {first_transaction.date()},"
            f" the latest training cutoff would be {latest_train} and needs"
            f" snapshots.min_history_days={config.min_history_days} of history before it"
            " (provide more history or shorten snapshots.horizon_days)"
        )
    return Calendar(as_of=as_of, test_cutoff=test, valid_cutoff=valid, train_cutoffs=train)


def as_of_events(transactions: ir.Table, as_of: dt.date, *, neighbours: bool = False) -> ir.Table:
    """The order events before ``as_of`` (:func:`rfm.order_events`); ``neighbours`` adds
    what the report's KPIs read of each purchase."""
    as_of_s = int((pd.Timestamp(as_of) - pd.Timestamp(0)).total_seconds())
    before = transactions.filter(transactions.ts.epoch_seconds() < as_of_s)
    return rfm.order_events(before, neighbours=neighbours)


def bucket_table(transactions: ir.Table, plan: BucketPlan, as_of: dt.date) -> ir.Table:
    """Order events before ``as_of``, as running totals per (customer, bucket of ``plan``).

    Transactions at or after ``as_of`` are dropped first, so replaying a past
    date sees exactly what existed then.
    """
    events = buckets.bucket_of(as_of_events(transactions, as_of), plan)
    return rfm.running_totals(rfm.bucket_totals(events))


def cutoff_table(
    events: ir.Table, plan: BucketPlan, as_of: dt.date, edges: pd.DataFrame
) -> ir.Table:
    """``events`` (:func:`as_of_events`) summed per customer at the as-of cutoff
    (``edges``' one row): what :func:`bucket_table` holds at that cutoff's edges, by one
    group-by (:mod:`churn.features.cutoff_totals`)."""
    if len(edges) != 1 or pd.Timestamp(edges["cutoff"].iloc[0]).date() != as_of:
        raise ValueError(f"cutoff_table is for the one cutoff {as_of}, got {len(edges)}")
    windows = plan.windows()
    # Bucket k holds the events before midnight boundaries[k]: "bucket <= lo_<w>d" is
    # "before the window's first midnight" (buckets.bucket_of).
    before_s = {w: plan.boundaries[int(edges[f"lo_{w}d"].iloc[0])] * buckets.DAY for w in windows}
    return cutoff_totals.cutoff_totals(events, before_s, plan.features.windows_days)


def history_expr(
    running: ir.Table,
    edges: ir.Table,
    snapshots: SnapshotConfig,
    features: FeaturesConfig,
    *,
    with_label: bool,
) -> ir.Table:
    """Every customer with a purchase by each cutoff (the BTYD fits' rows), every feature.

    ``running`` is a :func:`bucket_table`, ``edges`` the cutoffs'
    :meth:`BucketPlan.edge_table`. ``in_population`` marks the active ones (the
    population); :func:`snapshot_expr` keeps only them.
    """
    return rfm.point_in_time_features(
        running, edges, features.windows_days, snapshots, with_label=with_label
    )


def snapshot_expr(
    transactions: ir.Table,
    cutoffs: pd.DataFrame,
    as_of: dt.date,
    snapshots: SnapshotConfig,
    features: FeaturesConfig,
    *,
    with_label: bool,
) -> ir.Table:
    """One row per (customer, cutoff) in the population: features, and the label if asked.

    The whole definition as one expression (buckets, running totals,
    features); the feature stage runs the same pieces with the running totals
    materialised once and one cutoff per query (:mod:`churn.features.tables`).
    """
    plan = BucketPlan.for_cutoffs(_dates(cutoffs), snapshots, features)
    running = bucket_table(transactions, plan, as_of)
    edges = ibis.memtable(plan.edge_table([(cutoffs, with_label)]))
    table = history_expr(running, edges, snapshots, features, with_label=with_label)
    return table.filter(table.in_population).drop("in_population")


def _dates(cutoffs: pd.DataFrame) -> list[dt.date]:
    return [pd.Timestamp(c).date() for c in cutoffs[CUTOFF]]
