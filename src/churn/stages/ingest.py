"""The `ingest` stage: raw export in; transactions, quarantine, customers and report out."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from churn.config import IngestConfig, Params, RawSource
from churn.data.ingest_report import IngestReport
from churn.data.ingest_stage import IngestTargets, run_ingest_stage
from churn.errors import UserError


def ingest(params: Params) -> IngestReport:
    """The DVC stage: publish the four outputs at ``paths.*`` together, or none of them."""
    paths = params.paths
    targets = IngestTargets(
        transactions=paths.transactions,
        quarantine=paths.quarantine,
        customers=paths.customers,
        report=paths.ingest_report,
    )
    return ingest_to(
        targets,
        paths.raw_transactions,
        params.ingest,
        params.snapshots.as_of,
        engine=params.engine,
        spark_master=params.spark_master,
    )


def ingest_to(
    targets: IngestTargets,
    source: RawSource,
    config: IngestConfig,
    as_of: dt.date | None,
    *,
    engine: str = "duckdb",
    spark_master: str | None = None,
) -> IngestReport:
    """Ingest ``source`` into ``targets`` (the nightly job's run folder, or the pipeline's);
    on Spark with ``engine: pyspark`` (churn.stages.spark_ingest)."""
    if engine == "pyspark":
        from churn.stages.spark_ingest import spark_ingest_to

        if not isinstance(source, Path):
            raise UserError(
                "paths.raw_transactions names a database table or query, which engine: pyspark"
                " does not read yet: set engine: duckdb, or give a file, folder or catalog table"
            )
        return spark_ingest_to(targets, source, config, as_of, spark_master)
    return run_ingest_stage(source, config, as_of, targets)
