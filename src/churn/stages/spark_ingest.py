"""The `ingest` stage on Spark (``engine: pyspark``): the same four outputs, Spark-written.

Transactions and quarantine become Parquet folders (parts written by the
executors) published the way the DuckDB stage publishes its files: each is
written to a temporary folder beside its target and swapped in only once
everything succeeded, the report last. The customers table is a CRM export
of one row per customer, small beside the transactions, and stays on
DuckDB (:mod:`churn.data.customers`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
from pathlib import Path

from churn.atomic import atomic_dir, atomic_path, write_record
from churn.config import IngestConfig
from churn.data.customers import ingest_customers
from churn.data.ingest_report import IngestReport
from churn.data.ingest_stage import IngestTargets
from churn.data.spark_ingest import spark_ingest
from churn.features import backend


def spark_ingest_to(
    targets: IngestTargets,
    source: Path,
    config: IngestConfig,
    as_of: dt.date | None,
    spark_master: str | None,
) -> IngestReport:
    """Ingest ``source`` on Spark into ``targets``; publish all four outputs or none."""
    spark = backend.spark_session(backend.resolve_spark_master(spark_master))
    with contextlib.ExitStack() as publish:
        report_tmp = publish.enter_context(atomic_path(targets.report))
        customers_tmp = publish.enter_context(atomic_path(targets.customers))
        quarantine_tmp = publish.enter_context(atomic_dir(targets.quarantine))
        transactions_tmp = publish.enter_context(atomic_dir(targets.transactions))
        # Spark writes a folder that must not exist yet; the temporary one is swapped in.
        shutil.rmtree(quarantine_tmp)
        shutil.rmtree(transactions_tmp)
        report = spark_ingest(spark, source, config, as_of, transactions_tmp, quarantine_tmp)
        report = report.with_customers(
            ingest_customers(
                config.customers, config.csv, customers_tmp, null_values=config.null_values
            )
        )
        write_record(report, report_tmp)
    return report
