"""The checks that stop a nightly run before it publishes a list nobody should trust.

Each guard raises its own ``UserError`` subclass with a distinct exit code, so a
scheduler can tell "nothing new today" (retry tomorrow) from "the feed is
broken" (page someone) without parsing text. The message is one line saying
what was measured against which threshold.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from churn.data.ingest_report import IngestReport
from churn.data.quarantine import MALFORMED_REASONS
from churn.errors import UserError

log = logging.getLogger(__name__)

# Share of a bin never below this, so an empty bin gives a large but finite PSI.
PSI_FLOOR = 1e-4


class NoNewDataError(UserError):
    """No transaction later than the previous published run's latest one."""

    exit_code = 11


class QuarantineError(UserError):
    """The raw feed has more malformed rows than the nightly threshold allows."""

    exit_code = 12


class DistributionShiftError(UserError):
    """A feature or the score moved further than the PSI threshold since the last run."""

    exit_code = 13


def check_quarantine(report: IngestReport, max_fraction: float) -> None:
    """Raise when the ingest report's malformed share is above ``max_fraction``.

    Policy rows (guest orders, rows after as_of, zero amounts) are expected and
    do not count: only rows that mean the export itself is damaged do, as ingest
    counted them (``malformed_rows``). The share is compared unrounded, so with a
    threshold of 0 one malformed row in millions still refuses.
    """
    bad, rows_in = report.malformed_rows, report.rows_in
    fraction = bad / rows_in if rows_in else 0.0
    if fraction > max_fraction:
        reasons = report.reasons
        detail = ", ".join(f"{r} {reasons[r]:,}" for r in MALFORMED_REASONS if reasons.get(r))
        raise QuarantineError(
            f"{bad:,} of {rows_in:,} raw rows ({fraction:.1%}) are malformed ({detail}), above"
            f" nightly.max_malformed_fraction={max_fraction}; previous list left in place"
        )


def check_new_data(
    n_transactions: int, n_new: int, previous_as_of: str | None, previous_last_ts: str | None
) -> None:
    """Raise when nothing arrived since the newest earlier published run.

    "New" means a transaction later than the latest one that run had seen, so
    re-sent old files or a feed that stopped both count as nothing new.
    """
    if n_transactions == 0:
        raise NoNewDataError("no transactions before the as-of date; previous list left in place")
    if previous_as_of is not None and n_new == 0:
        raise NoNewDataError(
            f"no transactions after {previous_last_ts} (the latest in the run of"
            f" {previous_as_of}); previous list left in place"
        )


def psi(
    reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray, bins: int = 10
) -> float:
    """Population stability index of ``current`` against ``reference``.

    Bins are quantiles of the reference (ties merged, so a count feature with many
    ones gets fewer, wider bins); the outer bins are open so no value falls
    outside. PSI = sum over bins of (cur - ref) * ln(cur / ref) with shares
    floored at ``PSI_FLOOR``. Missing values are dropped from both sides.
    """
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    if ref.size == 0 or cur.size == 0:
        return math.nan
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_counts = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=edges.size + 1)
    cur_counts = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=edges.size + 1)
    return psi_from_counts(ref_counts, cur_counts)


def psi_from_counts(
    reference: Sequence[int] | np.ndarray, current: Sequence[int] | np.ndarray
) -> float:
    """PSI from per-bin counts (the same bins on both sides), shares floored at
    ``PSI_FLOOR``; for callers that bin in SQL rather than in memory."""
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    if ref.sum() == 0 or cur.sum() == 0:
        return math.nan
    p = np.maximum(ref / ref.sum(), PSI_FLOOR)
    q = np.maximum(cur / cur.sum(), PSI_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


@dataclass(frozen=True)
class PsiResult:
    values: dict[str, float]  # column -> PSI, the score under "churn_probability"
    reference: str  # where the reference distribution came from
    skipped: list[str]  # requested columns missing from either frame


def distribution_psi(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: Sequence[str],
    score_column: str,
    bins: int,
    reference_name: str,
) -> PsiResult:
    """PSI of each feature present in both frames, and of the score."""
    requested = [*features, score_column]
    columns = [c for c in requested if c in reference and c in current]
    values = {
        c: round(psi(reference[c].to_numpy(float), current[c].to_numpy(float), bins), 6)
        for c in columns
    }
    skipped = [c for c in requested if c not in columns]
    return PsiResult(values=values, reference=reference_name, skipped=skipped)


def check_psi(
    result: PsiResult,
    score_column: str,
    max_feature_psi: float,
    max_score_psi: float,
    enforce_score: bool = True,
) -> None:
    """Raise on the largest breach, naming the column, its PSI and the reference.

    ``enforce_score=False`` when the reference was scored by another model (a
    champion promoted since): its scores are expected to differ, so only the
    features, which do not depend on the model, are held to their threshold.
    """
    breaches = []
    for column, value in result.values.items():
        if column == score_column and not enforce_score:
            continue
        limit = max_score_psi if column == score_column else max_feature_psi
        if not math.isnan(value) and value > limit:
            breaches.append((value / limit, column, value, limit))
    if breaches:
        _, column, value, limit = max(breaches)
        key = "max_score_psi" if column == score_column else "max_feature_psi"
        others = len(breaches) - 1
        more = f" (and {others} more)" if others else ""
        raise DistributionShiftError(
            f"{column} shifted: PSI {value:.3f} against {result.reference} is above"
            f" nightly.{key}={limit}{more}; previous list left in place (if the change is"
            " real, rerun with --accept-drift)"
        )


@dataclass
class DriftAcceptance:
    """``churn nightly --accept-drift``: the drift guards (feature and score PSI, the new
    orders' values; exit 13) warn instead of refusing, for this one run.

    For a shift the operator has checked and knows is real (a price change, a replayed
    backfill date) without editing params. Every breach overridden is kept, word for
    word, for the manifest (``drift_accepted``), so the run says what it let through.
    """

    accepted: bool = False
    overridden: list[str] = field(default_factory=list)

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Run a drift check: its refusal is raised as usual, or recorded when accepted."""
        try:
            yield
        except DistributionShiftError as exc:
            if not self.accepted:
                raise
            self.overridden.append(str(exc))
            log.warning("nightly: drift accepted for this run (--accept-drift): %s", exc)

    def record(self) -> list[str] | None:
        """For the manifest: None without --accept-drift, else the breaches let through."""
        return list(self.overridden) if self.accepted else None
