"""Time buckets between every edge a feature or label tests, so events are summed only once.

Every cutoff is a midnight and every window edge a whole number of days from
one (``c - 30 d``, ``c - 365 d + horizon``, ``c + horizon``, ...). Put all those
edges of all cutoffs into one sorted list of boundaries: bucket ``k`` holds the
events with ``boundary[k-1] <= ts < boundary[k]``. A window ``[c - w, c)`` is
then exactly a run of whole buckets, so the events are aggregated once per
(customer, bucket), and running totals along each customer's buckets turn
every window into the difference of two of them (``rfm.running_totals``):
nothing is rescanned per cutoff. Events reach their bucket by an equi-join on
a small day -> bucket table, which every engine runs as a hash join; a range
join of events against cutoffs is what this replaces.

Edges are whole days, so an event's bucket depends only on the first midnight
after it: ``ts < boundary`` exactly when ``floor_day(ts) + 1 <= boundary_day``.
Every window is half-open, ``[start, end)``: a calendar day is wholly inside or
wholly outside it, so a date-only log (every purchase at midnight) and a
timestamped one put each day's purchases on the same side of every cutoff, and
the label window ``[c, c + horizon)`` ends exactly where ``as_of = c + horizon``
starts ignoring transactions (its last day, ``c + horizon - 1``, is inside).
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
        """Bucket of an event before midnight ``day`` (and at or after the one before it):
        the number of boundaries before ``day``."""
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
        """Every window length ``w`` (days) some feature sums over ``[c - w, c)``, once each."""
        h = self.snapshots.horizon_days
        lengths = {*self.features.windows_days, TREND_DAYS, 2 * TREND_DAYS, YEAR_DAYS}
        if YEAR_DAYS - h > 0:
            lengths.add(YEAR_DAYS - h)
        return sorted(lengths)

    def edge_table(self, parts: Sequence[tuple[pd.DataFrame, bool]]) -> pd.DataFrame:
        """One row per cutoff of each set, with or without a label: the buckets it reads.

        ``at`` is the cutoff's bucket (the past is every bucket up to it),
        ``lo_<w>d`` the last bucket before the window ``[c - w, c)``, ``end``
        the last bucket of the label window ``[c, c + horizon)`` (``at`` for a
        cutoff without a label). ``cutoff_i`` numbers the cutoffs; the date,
        epoch seconds and split ride along.
        """
        h = self.snapshots.horizon_days
        rows: list[dict[str, object]] = []
        for cutoffs, with_label in parts:
            for cutoff, split in zip(cutoffs["cutoff"], cutoffs["split"], strict=True):
                day = day_number(pd.Timestamp(cutoff).date())
                at = self.bucket(day)
                rows.append(
                    {
                        "cutoff_i": len(rows),
                        "cutoff": pd.Timestamp(cutoff),
                        "cutoff_s": day * DAY,
                        "split": split,
                        "at": at,
                        "end": self.bucket(day + h) if with_label else at,
                        **{f"lo_{w}d": self.bucket(day - w) for w in self.windows()},
                    }
                )
        table = pd.DataFrame(rows)
        table["cutoff"] = table["cutoff"].astype("datetime64[us]")
        numbers = [c for c in table.columns if c in ("cutoff_i", "at", "end") or c[:3] == "lo_"]
        return table.astype(dict.fromkeys(numbers, "int32"))


def bucket_of(events: ir.Table, plan: BucketPlan) -> ir.Table:
    """``events`` (with integer ``ts_s``) plus their bucket, by an equi-join on the day."""
    first, last = plan.boundaries[0], plan.boundaries[-1] + 1
    next_midnight = events.ts_s // DAY + 1
    day = ibis.greatest(ibis.least(next_midnight, last), first).cast("int64")
    days = ibis.memtable(plan.day_table())
    joined = events.mutate(day=day).join(days, "day")
    return joined.drop("day")
