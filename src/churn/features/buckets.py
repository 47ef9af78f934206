"""Time buckets between every edge a feature or label tests, so events are summed only once.

Every cutoff is a midnight and every window edge a whole number of days from
one (``c - 30 d``, ``c - 365 d + horizon``, ``c + horizon``, ...). Put all those
edges of all cutoffs into one sorted list of boundaries: bucket ``k`` holds the
events with ``boundary[k-1] < ts <= boundary[k]``. A window ``(c - w, c]`` is
then exactly a run of whole buckets, so the events are aggregated once per
(customer, bucket) and each cutoff combines bucket totals instead of
rescanning events. Both steps are equi-joins on small tables (day -> bucket,
bucket -> cutoff), which every engine runs as a hash join; a range join of
events against cutoffs is what this replaces.

Edges are whole days, so an event's bucket depends only on its "ceiling day"
(the first midnight at or after it): ``ts <= boundary`` exactly when
``ceil_day(ts) <= boundary_day``.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import pandas as pd

from churn.config import FeaturesConfig, SnapshotConfig

DAY = 86_400
# Windows the derived features use on top of features.windows_days: trend_90d compares
# (c - 90, c] with (c - 180, c - 90]; the seasonal count looks at last year's horizon.
TREND_DAYS = 90
YEAR_DAYS = 365
_EPOCH = dt.date(1970, 1, 1)


def day_number(day: dt.date) -> int:
    return (day - _EPOCH).days


def _edges(snapshots: SnapshotConfig, features: FeaturesConfig) -> list[int]:
    """Offsets in days from a cutoff of every edge a feature, population or label uses."""
    h = snapshots.horizon_days
    return sorted(
        {
            0,
            h,
            -snapshots.active_window_days,
            -TREND_DAYS,
            -2 * TREND_DAYS,
            -YEAR_DAYS,
            h - YEAR_DAYS,
            *(-w for w in features.windows_days),
        }
    )


@dataclass(frozen=True)
class BucketPlan:
    """The sorted boundary days of a set of cutoffs, and the small tables that use them."""

    boundaries: tuple[int, ...]
    snapshots: SnapshotConfig
    features: FeaturesConfig

    @classmethod
    def for_cutoffs(
        cls, cutoffs: Iterable[dt.date], snapshots: SnapshotConfig, features: FeaturesConfig
    ) -> BucketPlan:
        offsets = _edges(snapshots, features)
        days = {day_number(c) + d for c in cutoffs for d in offsets}
        if not days:
            raise ValueError("no cutoffs to place buckets for")
        return cls(tuple(sorted(days)), snapshots, features)

    def bucket(self, day: int) -> int:
        """Bucket of an event whose ceiling day is ``day``: the number of boundaries before it."""
        return bisect.bisect_left(self.boundaries, day)

    def day_table(self) -> pd.DataFrame:
        """day -> bucket for every day from the first boundary to one past the last.

        Event days outside that span are clamped into it (see :func:`bucket_of`),
        so the table stays a few hundred rows however long the history.
        """
        first, last = self.boundaries[0], self.boundaries[-1] + 1
        days = list(range(first, last + 1))
        buckets = [self.bucket(d) for d in days]
        return pd.DataFrame({"day": days, "bucket": buckets}).astype({"bucket": "int32"})

    def windows(self) -> list[int]:
        """Every window length ``w`` (days) some feature sums over ``(c - w, c]``, once each."""
        h = self.snapshots.horizon_days
        lengths = {*self.features.windows_days, TREND_DAYS, 2 * TREND_DAYS, YEAR_DAYS}
        if YEAR_DAYS - h > 0:
            lengths.add(YEAR_DAYS - h)
        return sorted(lengths)

    def cutoff_tables(
        self, parts: Sequence[tuple[pd.DataFrame, bool]]
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(cutoff_buckets, cutoffs) for sets of cutoffs, each with or without a label.

        ``cutoff_buckets`` has one row per (cutoff number, bucket) the cutoff reads,
        with flags saying what for: ``hist``, the bucket is in the cutoff's past
        (``ts <= c``); ``in_<w>d``, inside ``(c - w, c]``; ``label``, inside
        ``(c, c + horizon]`` (only for cutoffs with a label). A cutoff's sum is a
        filtered aggregate, ``sum(value) FILTER (WHERE flag)``. ``cutoffs`` maps the
        cutoff number to its date, epoch seconds and split: aggregating by a small
        integer is cheaper than by the three.
        """
        h = self.snapshots.horizon_days
        windows = self.windows()
        rows: list[dict[str, int | bool]] = []
        info: list[dict[str, object]] = []
        for cutoffs, with_label in parts:
            for cutoff, split in zip(cutoffs["cutoff"], cutoffs["split"], strict=True):
                number = len(info)
                day = day_number(pd.Timestamp(cutoff).date())
                info.append(
                    {
                        "cutoff_i": number,
                        "cutoff": pd.Timestamp(cutoff),
                        "cutoff_s": day * DAY,
                        "split": split,
                    }
                )
                at = self.bucket(day)
                end = self.bucket(day + h) if with_label else at
                starts = {w: self.bucket(day - w) for w in windows}
                for k in range(end + 1):
                    row: dict[str, int | bool] = {"cutoff_i": number, "bucket": k}
                    row["hist"] = k <= at
                    row |= {f"in_{w}d": lo < k <= at for w, lo in starts.items()}
                    row["label"] = k > at
                    rows.append(row)
        buckets = pd.DataFrame(rows)
        flags = [c for c in buckets.columns if c not in ("cutoff_i", "bucket")]
        buckets[flags] = buckets[flags].astype(bool)
        buckets[["cutoff_i", "bucket"]] = buckets[["cutoff_i", "bucket"]].astype("int32")
        table = pd.DataFrame(info)
        table["cutoff"] = table["cutoff"].astype("datetime64[us]")
        table["cutoff_i"] = table["cutoff_i"].astype("int32")
        return buckets, table


def bucket_of(events: ir.Table, plan: BucketPlan) -> ir.Table:
    """``events`` (with integer ``ts_s``) plus their bucket, by an equi-join on the day."""
    first, last = plan.boundaries[0], plan.boundaries[-1] + 1
    ceiling_day = (events.ts_s + (DAY - 1)) // DAY
    day = ibis.greatest(ibis.least(ceiling_day, last), first).cast("int64")
    days = ibis.memtable(plan.day_table())
    joined = events.mutate(day=day).join(days, "day")
    return joined.drop("day")
