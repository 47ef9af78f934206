"""The `report` stage: the marketing report, one self-contained HTML file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from churn.adhoc import report_file
from churn.atomic import atomic_path
from churn.config import Params
from churn.errors import UserError
from churn.outcomes.for_report import readout_for_report
from churn.scoring.kpis import KPI_LABELLED_COLUMNS, KpiSource
from churn.stages.inputs import optional_input, read_optional_parquet, read_parquet, run_name


@dataclass(frozen=True)
class Reported:
    """The report written: for how many scored customers and targets, and its size."""

    target: Path
    scored: int
    targets: int
    size: int  # bytes


def write_report(
    scores: pd.DataFrame,
    targets: pd.DataFrame,
    transactions: KpiSource | None,
    labelled: pd.DataFrame | None,
    previous_scores: pd.DataFrame | None,
    params: Params,
    target: Path,
) -> Reported:
    """Render the report from its inputs (None: that part is left out) and write ``target``.

    The campaign read-out of `churn outcomes` (when one exists and applies at the
    scores' as-of date) adds "Did it work?"; the CLI and the nightly job both come here.
    """
    from churn.scoring.report import render_pipeline_report  # matplotlib: after the inputs

    readout = readout_for_report(params.paths.outcomes_metrics, params.outcomes.min_control)
    html = render_pipeline_report(
        scores, targets, transactions, labelled, previous_scores, params, readout
    )
    with atomic_path(target) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return Reported(target, len(scores), int(targets["selected"].sum()), len(html.encode()))


@dataclass(frozen=True)
class ReportInputs:
    """What the report shows (None: that part is left out) and where it goes."""

    scores: pd.DataFrame
    targets: pd.DataFrame
    transactions: Path | None  # canonical transactions, read by the engine
    labelled: pd.DataFrame | None
    previous_scores: pd.DataFrame | None
    target: Path


def report_inputs(params: Params, previous: Path | None, output: Path | None) -> ReportInputs:
    """The DVC stage's inputs (``paths.report``), or a one-off's comparing with ``previous``
    scores; ``output`` is checked first, so a wrong suffix fails before any reading."""
    paths = params.paths
    if output is not None:
        report_file(params, None, output)
    scores = read_parquet(paths.scores, "score")
    targets = read_parquet(paths.targets_table, "export")
    if previous is not None and not previous.exists():
        raise UserError(f"previous score table not found: {previous} (check --previous)")
    previous_scores, previous_run = None, None
    if previous is not None:
        previous_scores = read_parquet(previous, "score")
        previous_run = run_name(previous_scores, previous)
    target = report_file(params, previous_run, output)
    transactions = optional_input(paths.transactions, "the monthly KPIs", "ingest", "report")
    labelled = read_optional_parquet(
        paths.train_features,
        KPI_LABELLED_COLUMNS,
        "the churn rate per cutoff",
        "features",
        "report",
    )
    return ReportInputs(scores, targets, transactions, labelled, previous_scores, target)


def report(params: Params, inputs: ReportInputs) -> Reported:
    """Render and write the report."""
    return write_report(
        inputs.scores,
        inputs.targets,
        inputs.transactions,
        inputs.labelled,
        inputs.previous_scores,
        params,
        inputs.target,
    )
