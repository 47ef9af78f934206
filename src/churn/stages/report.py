"""The `report` stage: the marketing report, one self-contained HTML file."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from churn.adhoc import report_file
from churn.atomic import atomic_path
from churn.config import Params
from churn.errors import UserError
from churn.outcomes.for_report import readout_for_report
from churn.scoring.kpi_engine import (
    KpiRequest,
    PurchaseFacts,
    ReportKpis,
    kpis_in_background,
)
from churn.scoring.kpis import KPI_LABELLED_COLUMNS, KpiSource, LabelledSource
from churn.scoring.score_digest import ScoreDigest, digest_frame, digest_parquet
from churn.stages.inputs import (
    input_file,
    is_spark_dataset,
    optional_input,
    read_optional_parquet,
    read_parquet,
)

ScoreTable = pd.DataFrame | ScoreDigest  # as churn.scoring.report takes it


@dataclass(frozen=True)
class Reported:
    """The report written: for how many scored customers and targets, and its size."""

    target: Path
    scored: int
    targets: int
    size: int  # bytes


def write_report(
    scores: ScoreTable,
    targets: pd.DataFrame,
    transactions: KpiSource | None,
    labelled: LabelledSource | None,
    previous_scores: ScoreTable | None,
    params: Params,
    target: Path,
    facts: PurchaseFacts | None = None,
) -> Reported:
    """Render the report from its inputs (None: that part is left out) and write ``target``.

    The campaign read-out of `churn outcomes` (when one exists and applies at the
    scores' as-of date) adds "Did it work?"; the CLI and the nightly job both come here.
    The engine computes the KPIs of ``transactions`` in the background meanwhile, from
    their purchase ``facts`` when the caller's feature step counted them already.
    """
    readout = readout_for_report(params.paths.outcomes_metrics, params.outcomes.min_control)
    with _kpis_under_way(transactions, _as_of(scores), params, facts) as kpis:
        scores = scores if isinstance(scores, ScoreDigest) else digest_frame(scores)
        from churn.scoring.report import render_pipeline_report  # matplotlib: after the inputs

        html = render_pipeline_report(
            scores, targets, kpis, labelled, previous_scores, params, readout
        )
    with atomic_path(target) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return Reported(target, scores.rows, int(targets["selected"].sum()), len(html.encode()))


def _as_of(scores: ScoreTable) -> pd.Timestamp | None:
    """The scores' as-of date, None for a table without rows (or without the column:
    the report then says what is missing)."""
    if isinstance(scores, ScoreDigest):
        return pd.Timestamp(str(scores.as_of)) if scores.rows else None
    if scores.empty or "as_of" not in scores.columns:
        return None
    return pd.Timestamp(scores["as_of"].iloc[0])


@contextmanager
def _kpis_under_way(
    transactions: KpiSource | None,
    as_of: pd.Timestamp | None,
    params: Params,
    facts: PurchaseFacts | None,
) -> Iterator[Future[ReportKpis | None] | None]:
    """The report's KPIs of ``transactions`` before ``as_of``, under way on the engine
    while the rest (the score digest included) is drawn; None without transactions or
    an as-of date (nothing to compute)."""
    if transactions is None or as_of is None:
        yield None
        return
    request = KpiRequest(
        transactions,
        as_of,
        params.report.memory_limit,
        params.snapshots.active_window_days,
        params.snapshots.horizon_days,
        facts,
    )
    with kpis_in_background(request) as kpis:
        yield kpis


@dataclass(frozen=True)
class ReportInputs:
    """What the report shows (None: that part is left out) and where it goes."""

    scores: ScoreTable
    targets: pd.DataFrame
    transactions: Path | None  # canonical transactions, read by the engine
    labelled: LabelledSource | None
    previous_scores: ScoreTable | None
    target: Path


def report_inputs(params: Params, previous: Path | None, output: Path | None) -> ReportInputs:
    """The DVC stage's inputs (``paths.report``), or a one-off's comparing with ``previous``
    scores; ``output`` is checked first, so a wrong suffix fails before any reading."""
    paths = params.paths
    if output is not None:
        report_file(params, None, output)
    scores = score_table(paths.scores)
    targets = read_parquet(paths.targets_table, "export")
    if previous is not None and not previous.exists():
        raise UserError(f"previous score table not found: {previous} (check --previous)")
    previous_scores, previous_run = None, None
    if previous is not None:
        previous_scores = score_table(previous)
        previous_run = str(previous_scores.as_of.date()) if previous_scores.as_of else previous.stem
    target = report_file(params, previous_run, output)
    transactions = optional_input(paths.transactions, "the monthly KPIs", "ingest", "report")
    labelled = labelled_input(paths.train_features)
    return ReportInputs(scores, targets, transactions, labelled, previous_scores, target)


def labelled_input(path: Path) -> LabelledSource | None:
    """The churn rate per cutoff's input: the file's three columns, as ever; a folder of
    parts Spark wrote is passed on as a path, for DuckDB to count as it streams it."""
    if path.exists() and is_spark_dataset(input_file(path, "features")):
        return path
    what = "the churn rate per cutoff"
    return read_optional_parquet(path, KPI_LABELLED_COLUMNS, what, "features", "report")


def score_table(path: Path) -> ScoreDigest:
    """What the report reads of a score table: a file read whole, as ever; a folder of
    parts Spark wrote (``engine: pyspark``, up to 100 M rows) aggregated by DuckDB as it
    streams the parts, so the table never reaches memory (churn.scoring.score_digest)."""
    if is_spark_dataset(input_file(path, "score")):
        return digest_parquet(path)
    return digest_frame(read_parquet(path, "score"))


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
