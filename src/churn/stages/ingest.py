"""The `ingest` stage: raw export in; transactions, quarantine, customers and report out."""

from __future__ import annotations

import datetime as dt

from churn.config import IngestConfig, Params, RawSource
from churn.data.ingest_report import IngestReport
from churn.data.ingest_stage import IngestTargets, run_ingest_stage


def ingest(params: Params) -> IngestReport:
    """The DVC stage: publish the four outputs at ``paths.*`` together, or none of them."""
    paths = params.paths
    targets = IngestTargets(
        transactions=paths.transactions,
        quarantine=paths.quarantine,
        customers=paths.customers,
        report=paths.ingest_report,
    )
    return ingest_to(targets, paths.raw_transactions, params.ingest, params.snapshots.as_of)


def ingest_to(
    targets: IngestTargets, source: RawSource, config: IngestConfig, as_of: dt.date | None
) -> IngestReport:
    """Ingest ``source`` into ``targets`` (the nightly job's run folder, or the pipeline's)."""
    return run_ingest_stage(source, config, as_of, targets)
