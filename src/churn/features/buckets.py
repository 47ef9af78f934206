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
        return pd.DataFrame({"day": days, "bucket": [self.bucket(d) for d in days]})

    def cutoff_table(self, cutoffs: pd.DataFrame, *, with_label: bool) -> pd.DataFrame:
        """One row per (cutoff, bucket) the cutoff reads, with 0/1 flags saying what for.

        ``hist``: the bucket is in the cutoff's past (``ts <= c``); ``in_<w>d``: inside
        ``(c - w, c]``; ``label``: inside ``(c, c + horizon]`` (only ``with_label``).
        Flags are small integers, so a cutoff's sum is ``sum(value * flag)``.
        """
        h = self.snapshots.horizon_days
        windows = {f"in_{w}d": w for w in self.features.windows_days}
        windows |= {"in_trend_90d": TREND_DAYS, "in_trend_180d": 2 * TREND_DAYS}
        windows |= {"in_year": YEAR_DAYS, "in_year_minus_horizon": YEAR_DAYS - h}
        rows: list[dict[str, object]] = []
        for cutoff, split in zip(cutoffs["cutoff"], cutoffs["split"], strict=True):
            day = day_number(pd.Timestamp(cutoff).date())
            at = self.bucket(day)
            end = self.bucket(day + h) if with_label else at
            starts = {name: self.bucket(day - w) for name, w in windows.items()}
            for k in range(end + 1):
                row: dict[str, object] = {
                    "cutoff": pd.Timestamp(cutoff),
                    "cutoff_s": day * DAY,
                    "split": split,
                    "bucket": k,
                    "hist": int(k <= at),
                    "label": int(k > at),
                }
                row |= {name: int(lo < k <= at) for name, lo in starts.items()}
                rows.append(row)
        frame = pd.DataFrame(rows)
        frame["cutoff"] = frame["cutoff"].astype("datetime64[us]")
        flags = [c for c in frame.columns if c not in ("cutoff", "cutoff_s", "split", "bucket")]
        frame[flags] = frame[flags].astype("int8")
        return frame


def bucket_of(events: ir.Table, plan: BucketPlan) -> ir.Table:
    """``events`` (with integer ``ts_s``) plus their bucket, by an equi-join on the day."""
    first, last = plan.boundaries[0], plan.boundaries[-1] + 1
    ceiling_day = (events.ts_s + (DAY - 1)) // DAY
    day = ibis.greatest(ibis.least(ceiling_day, last), first).cast("int64")
    days = ibis.memtable(plan.day_table())
    joined = events.mutate(day=day).join(days, "day")
    return joined.drop("day")


def cutoffs_with_buckets(parts: Sequence[pd.DataFrame]) -> ir.Table:
    """The (cutoff, bucket) tables of several cutoff sets as one engine table."""
    return ibis.memtable(pd.concat(parts, ignore_index=True))
