"""The `ingest` stage: transactions, quarantine, customers table and report, published together.

The four outputs describe one ingest, so they must change together. Each used to be
renamed into place as soon as it was written: a customers source that failed after
the transactions were in place left new transactions beside the previous report and
customers table. Here every output is written to a temporary file beside its target
and renamed over it only once every step has succeeded, the report last, so a report
on disk describes the files beside it. Any failure removes the temporary files and
leaves the previous outputs byte-identical.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from churn.atomic import atomic_path, write_record
from churn.config import IngestConfig, RawSource
from churn.data.customers import ingest_customers
from churn.data.ingest import IngestOutputs, ingest
from churn.data.ingest_report import IngestReport


@dataclass(frozen=True)
class IngestTargets:
    """Where the stage publishes (``paths.*`` in params.yaml)."""

    transactions: Path
    quarantine: Path
    customers: Path
    report: Path


def run_ingest_stage(
    source: RawSource, config: IngestConfig, as_of: dt.date | None, targets: IngestTargets
) -> IngestReport:
    """Ingest ``source`` and its optional customers table; publish all four outputs or none.

    Each temporary file lives in its target's folder, so publishing is a rename on
    one file system. The renames run one after another once nothing can fail but
    a rename itself.
    """
    with contextlib.ExitStack() as publish:
        # Entered first, renamed last: the report goes public after what it describes.
        report_tmp = publish.enter_context(atomic_path(targets.report))
        customers_tmp = publish.enter_context(atomic_path(targets.customers))
        quarantine_tmp = publish.enter_context(atomic_path(targets.quarantine))
        transactions_tmp = publish.enter_context(atomic_path(targets.transactions))
        outputs = IngestOutputs(transactions_tmp, quarantine_tmp, staged=True)
        report = ingest(source, config, as_of, outputs).report.with_customers(
            ingest_customers(
                config.customers, config.csv, customers_tmp, null_values=config.null_values
            )
        )
        write_record(report, report_tmp)
    return report
