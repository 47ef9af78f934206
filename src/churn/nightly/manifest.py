"""The nightly manifest: what one published run read, measured, used and wrote.

It is written last into the run's folder (its presence marks a whole run), logged to
MLflow, and read back by the next run for the previous run's latest transaction and
model. Typed here; ``churn.atomic.record_json`` turns it into the JSON on disk.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from churn.model.identity import ModelIdentity
from churn.nightly import partitions
from churn.nightly.new_orders import NewOrders

# What a published run holds besides the manifest (partitions.MANIFEST).
SCORES_FILE = "scores.parquet"
TARGETS_FILE = "retention_targets.csv"
TARGETS_TABLE_FILE = "targets.parquet"
EXPORT_SUMMARY_FILE = "retention_targets.summary.json"
REPORT_FILE = "retention_report.html"
INGEST_REPORT_FILE = "ingest_report.json"


@dataclass(frozen=True)
class ModelUsed:
    """The model that scored: ``uri`` pinned to its version, ``requested`` as asked."""

    requested: str
    uri: str
    name: str
    version: str

    @classmethod
    def of(cls, identity: ModelIdentity) -> ModelUsed:
        return cls(identity.requested, identity.uri, identity.name, identity.version)


@dataclass(frozen=True)
class DataRead:
    source: str
    fingerprint: str  # sha256 of the ingested transactions file
    first_ts: str | None
    last_ts: str | None
    new_transactions: int  # later than the previous run's last_ts
    previous_as_of: str | None


@dataclass(frozen=True)
class RowCounts:
    raw: int
    transactions: int
    quarantined: int
    malformed: int
    customers_in_master: int
    scored: int
    contactable: int
    selected: int
    targets: int


@dataclass(frozen=True)
class QuarantineShare:
    malformed_fraction: float
    reasons: dict[str, int]


@dataclass(frozen=True)
class PsiRecord:
    reference: str
    values: dict[str, float]
    skipped: list[str]
    score_enforced: bool  # False when the model changed since the reference run


@dataclass(frozen=True)
class CodeVersion:
    churn_version: str
    git_commit: str


@dataclass(frozen=True)
class NightlyManifest:
    as_of: str
    status: str
    model: ModelUsed
    data: DataRead
    rows: RowCounts
    quarantine: QuarantineShare
    psi: PsiRecord
    new_orders: NewOrders
    thresholds: dict[str, Any]  # the nightly.* limits the guards applied
    outputs: dict[str, str]  # file name -> sha256
    code: CodeVersion
    timings: dict[str, Any] = field(default_factory=dict)  # started_at, seconds per step
    save_rates: dict[str, Any] | None = None  # the rates the list used, and whence (#16)
    ranking: dict[str, Any] | None = None  # risk or uplift, and why (#16)
    # --accept-drift: the drift refusals this run let through (None: not given) (#18)
    drift_accepted: list[str] | None = None


@dataclass(frozen=True)
class PreviousRun:
    """The newest run published before this one, as its manifest records it."""

    as_of: dt.date
    last_ts: str | None  # its latest transaction: later ones are new
    model_uri: str
    scores: Path  # its published score table


def previous_run(root: Path, as_of: dt.date) -> PreviousRun | None:
    """The newest published run before ``as_of`` under ``root``; None on a first run."""
    previous = partitions.previous_date(root, as_of)
    if previous is None:
        return None
    manifest = partitions.read_manifest(root, previous)
    return PreviousRun(
        as_of=previous,
        last_ts=manifest["data"]["last_ts"],
        model_uri=manifest["model"]["uri"],
        scores=partitions.partition_dir(root, previous) / SCORES_FILE,
    )
