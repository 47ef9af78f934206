"""Which list the page serves: the newest nightly partition, else the pipeline's own export.

A marketer opening the page wants today's list. The nightly job publishes one folder per
as-of date (churn.nightly.partitions); when there is none, `make run` / `churn export`
wrote the tracked targets table. Files are read at each request, so a list published
while the page is open shows on the next click, never half-written (writers rename).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from churn.config import Params
from churn.errors import UserError
from churn.nightly.manifest import REPORT_FILE, TARGETS_TABLE_FILE
from churn.nightly.partitions import partition_dir, published_dates
from churn.stages.inputs import read_parquet


@dataclass(frozen=True)
class ListSource:
    """Where the served list lives: its targets table, its report and a label for people."""

    targets_table: Path
    report: Path
    label: str  # "nightly run of 2026-11-21" or "pipeline export"


def latest_source(params: Params) -> ListSource:
    """The newest published nightly run, else the pipeline's tracked export."""
    root = params.nightly.output_root
    dates = published_dates(root)
    if dates:
        folder = partition_dir(root, dates[-1])
        return ListSource(
            folder / TARGETS_TABLE_FILE, folder / REPORT_FILE, f"nightly run of {dates[-1]}"
        )
    return ListSource(params.paths.targets_table, params.paths.report, "pipeline export")


def check_source(params: Params) -> ListSource:
    """The source, refused at start-up when it has no list yet (one line: how to make one)."""
    source = latest_source(params)
    if not source.targets_table.is_file():
        raise UserError(
            f"no retention list to serve: {source.targets_table} not found and no nightly run"
            f" published in {params.nightly.output_root} (run `make run` or `churn export`"
            " first, or `churn nightly`)"
        )
    return source


def read_targets(source: ListSource) -> pd.DataFrame:
    """The served list's targets table (every scored customer, with the picked ones marked)."""
    return read_parquet(source.targets_table, "export")


def read_customers(params: Params) -> pd.DataFrame | None:
    """The customer master (names, emails, consent), as `churn export` reads it; None without."""
    if params.paths.customers.is_file():
        return read_parquet(params.paths.customers, "ingest")
    return None
