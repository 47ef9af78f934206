"""The steps of one nightly run, in the order they run; each guard right after what it checks.

Every step that is also a pipeline stage (ingest, the scoring snapshot, scoring, the
retention list, the report) calls churn.stages, so the job and `churn <stage>` share
one code path; what is the job's own is the guards and the run folder's layout.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from churn.adhoc import ExportFiles
from churn.atomic import write_parquet
from churn.config import NightlyConfig, Params
from churn.data.countries import latest_countries
from churn.data.ingest_report import IngestReport
from churn.data.ingest_stage import IngestTargets
from churn.data.session import connect as duckdb_connect
from churn.data.session import parquet_files
from churn.model.loader import LoadedModel
from churn.nightly import guards
from churn.nightly import new_orders as order_values
from churn.nightly.manifest import (
    EXPORT_SUMMARY_FILE,
    INGEST_REPORT_FILE,
    REPORT_FILE,
    SCORES_FILE,
    TARGETS_FILE,
    TARGETS_TABLE_FILE,
    PreviousRun,
)
from churn.scoring.export import CONSENT_OK, Contacts, consent_status
from churn.scoring.kpi_engine import PurchaseFacts
from churn.scoring.retention import RetentionList
from churn.stages.export import param_filters, reasons_from, retention, write_list
from churn.stages.ingest import ingest_to
from churn.stages.report import write_report
from churn.stages.score import score_snapshot

log = logging.getLogger(__name__)

SCORE_COLUMN = "churn_probability"


@dataclass
class Timings:
    """Seconds per step, for the manifest (the only part of it a replay changes)."""

    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - started, 3)
        log.info("nightly: %s done in %.1fs", name, self.seconds[name])

    def record(self) -> dict[str, Any]:
        total = round((dt.datetime.now(dt.UTC) - self.started).total_seconds(), 3)
        return {"started_at": self.started.isoformat(), **self.seconds, "total": total}


@dataclass(frozen=True)
class Ingested:
    report: IngestReport
    transactions: Path
    customers: pd.DataFrame


def ingest(as_of: dt.date, params: Params, work: Path, out: Path) -> Ingested:
    """Ingest the whole raw source up to ``as_of`` into the run's private folder, the
    report straight into the outputs. Ingest's own malformed-share check is switched
    off: the quarantine guard applies the nightly threshold and exit code instead."""
    unchecked = params.ingest.model_copy(update={"max_bad_fraction": 1.0})
    targets = IngestTargets(
        transactions=work / "transactions.parquet",
        quarantine=work / "quarantine.parquet",
        customers=work / "customers.parquet",
        report=out / INGEST_REPORT_FILE,
    )
    report = ingest_to(
        targets,
        params.paths.raw_transactions,
        unchecked,
        as_of,
        engine=params.engine,
        spark_master=params.spark_master,
    )
    return Ingested(report, targets.transactions, pd.read_parquet(targets.customers))


@dataclass(frozen=True)
class NewData:
    """What arrived since the previous run: transactions and the new orders' values."""

    transactions: int
    new: int
    orders: order_values.NewOrders


def check_new_data(
    ingested: Ingested,
    previous: PreviousRun | None,
    config: NightlyConfig,
    acceptance: guards.DriftAcceptance | None = None,
) -> NewData:
    """Refuse when nothing is newer than the previous run (exit 11), or when the new
    orders are valued unlike the history (exit 13, unless ``acceptance`` lets it pass)."""
    since = previous.last_ts if previous else None
    n_transactions, n_new = transactions_since(ingested.transactions, since)
    guards.check_new_data(
        n_transactions, n_new, previous.as_of.isoformat() if previous else None, since
    )
    measured = order_values.measure(
        ingested.transactions, since, config.new_order_history_days, config.psi_bins
    )
    # Judged and let through by --accept-drift: recorded as judged, the breach in drift_accepted.
    orders = dataclasses.replace(measured, judged=True, min_orders=config.min_new_orders)
    with (acceptance or guards.DriftAcceptance()).guard():
        orders = order_values.check(
            measured,
            config.min_new_orders,
            config.max_new_order_median_ratio,
            config.max_new_order_psi,
        )
    if orders.median_ratio is None:  # nothing measured (e.g. the first run): no "Nonex"
        log.info("nightly: %s new orders; not judged: %s", orders.orders, orders.skipped)
    else:
        log.info(
            "nightly: %s new orders, median value %sx the history's, PSI %s%s",
            orders.orders,
            orders.median_ratio,
            orders.psi,
            "" if orders.judged else f"; not judged: {orders.skipped}",
        )
    return NewData(n_transactions, n_new, orders)


def transactions_since(transactions: Path, since: str | None) -> tuple[int, int]:
    """(all transactions, those later than ``since``), counted by DuckDB on the file."""
    con = duckdb_connect()
    try:
        row = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE ? IS NULL OR ts > CAST(? AS TIMESTAMP))"
            " FROM read_parquet(?)",
            [since, since, parquet_files(transactions)],
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    return int(row[0]), int(row[1])


@dataclass(frozen=True)
class Drift:
    """The PSI measured, the reference scores (the previous run's, for the report) and
    whether the score itself was held to its threshold (the same model on both sides)."""

    psi: guards.PsiResult
    reference: pd.DataFrame | None
    same_model: bool


@dataclass(frozen=True)
class ScoreCounts:
    """For the manifest: customers scored, and those of them who may be contacted."""

    scored: int
    contactable: int

    @classmethod
    def of(cls, scores: pd.DataFrame, customers: pd.DataFrame) -> ScoreCounts:
        consent = consent_status(scores["customer_id"], customers)
        return cls(len(scores), int((consent == CONSENT_OK).sum()))


@dataclass(frozen=True)
class Scored:
    """What the steps after ingest made, on either engine, for the manifest."""

    chosen: RetentionList
    drift: Drift
    reports: list[str]
    counts: ScoreCounts


def check_drift(
    scores: pd.DataFrame,
    previous: PreviousRun | None,
    loaded: LoadedModel,
    params: Params,
    acceptance: guards.DriftAcceptance | None = None,
) -> Drift:
    """PSI of the features and the score against the reference; refuse above (exit 13),
    unless ``acceptance`` (--accept-drift) lets it pass."""
    config, uri = params.nightly, loaded.identity.uri
    as_of = pd.Timestamp(scores["as_of"].iloc[0]).date() if len(scores) else None
    reference, name = psi_reference(previous, loaded, params, as_of)
    if reference is None:
        psi = guards.PsiResult(values={}, reference=name, skipped=[])
    else:
        psi = guards.distribution_psi(
            reference, scores, config.psi_features, SCORE_COLUMN, config.psi_bins, name
        )
    same_model = judge_drift(psi, reference is not None, previous, uri, config, acceptance)
    return Drift(psi, reference if previous else None, same_model)


def judge_drift(
    psi: guards.PsiResult,
    measured: bool,
    previous: PreviousRun | None,
    uri: str,
    config: NightlyConfig,
    acceptance: guards.DriftAcceptance | None = None,
) -> bool:
    """Log the PSI measured (``measured``: against a reference) and refuse above the
    thresholds (exit 13) unless accepted; whether the score was held to its threshold
    (the same model as the reference run). Both engines' drift checks end here."""
    if not measured:
        log.warning("nightly: PSI not measured: reference %s", psi.reference)
    else:
        log.info("nightly: PSI against %s: %s", psi.reference, psi.values)
    if psi.skipped:
        log.warning("nightly: no PSI for %s (not in both frames)", ", ".join(psi.skipped))
    previous_model = previous.model_uri if previous else uri
    same_model = previous_model == uri
    if not same_model:
        log.warning(
            "nightly: model changed since the previous run (%s -> %s): score PSI recorded,"
            " not enforced",
            previous_model,
            uri,
        )
    with (acceptance or guards.DriftAcceptance()).guard():
        guards.check_psi(
            psi, SCORE_COLUMN, config.max_feature_psi, config.max_score_psi, same_model
        )
    return same_model


def psi_reference(
    previous: PreviousRun | None,
    loaded: LoadedModel,
    params: Params,
    as_of: dt.date | None = None,
) -> tuple[pd.DataFrame | None, str]:
    """The nearest earlier published scores, else the pipeline's own scoring snapshot
    scored now, if it is not later than ``as_of``; else no reference (PSI not measured).

    Never anything later than ``as_of``: a backfill of an earlier date compared with a
    later snapshot measures the months between them, not a broken feed, and was refused.
    Never the training table's test cutoff: it lies a horizon earlier, often in
    another season, and would make a healthy first run look like drift.
    """
    if previous is not None:
        return pd.read_parquet(previous.scores), f"the run of {previous.as_of.isoformat()}"
    snapshot_path = params.paths.score_features
    if not snapshot_path.exists():
        return None, "none (first run, no pipeline snapshot)"
    snapshot = pd.read_parquet(snapshot_path)
    if snapshot.empty:
        return None, "none (first run, the pipeline snapshot is empty)"
    cutoff = pd.Timestamp(snapshot["cutoff"].iloc[0]).date()
    if as_of is not None and cutoff > as_of:
        return None, later_snapshot(as_of, snapshot_path, cutoff)
    scored = score_snapshot(snapshot, loaded, params)
    return scored, f"{snapshot_path} (cutoff {cutoff.isoformat()})"


def later_snapshot(as_of: dt.date, snapshot_path: Path, cutoff: dt.date) -> str:
    """Why a pipeline snapshot later than ``as_of`` is no PSI reference (see above)."""
    return (
        f"none (no run published before {as_of.isoformat()}, and the pipeline snapshot"
        f" {snapshot_path} is later: cutoff {cutoff.isoformat()})"
    )


def retention_list(
    scores: pd.DataFrame,
    snapshot: pd.DataFrame,
    loaded: LoadedModel,
    customers: pd.DataFrame,
    params: Params,
    transactions: Path | None = None,
) -> RetentionList:
    """The same list as `churn export` with its default filters, reasons from this run's
    model and snapshot, and the country from ``transactions`` without one in ``customers``."""
    reasons = reasons_from(snapshot, loaded.model, params)
    filters = param_filters(params.export)
    as_of = pd.Timestamp(scores["as_of"].iloc[0]).date() if len(scores) else None
    contacts: Contacts | None = None
    if transactions is not None and customers["country"].replace("", None).isna().all():
        contacts = _latest_countries_of(transactions, as_of)
    return retention(scores, customers, params, filters, reasons, lambda: snapshot, contacts)


def _latest_countries_of(transactions: Path, as_of: dt.date | None) -> Contacts:
    """The country of each listed customer's latest order, looked up for the listed
    customers only, once the list is known."""
    return lambda listed: latest_countries(transactions, as_of, listed)


@contextmanager
def scores_written(scores: pd.DataFrame, out: Path) -> Iterator[Future[None]]:
    """Write the score table into the run's outputs on a thread, beside the next steps.

    The table is final once scored, and Arrow's Parquet encoder releases the GIL, so
    it is written while PSI and the list (pandas, mostly on one core) run: at 2 M
    customers about a second of the write step (issue 20). The frame is only read, by
    both sides. Leaving the block waits for the writer, whatever happened, so no
    thread writes into a staging folder being removed; ``write_outputs`` raises its error.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="scores-writer") as pool:
        yield pool.submit(write_parquet, scores, out / SCORES_FILE)


def write_outputs(scores: Future[None] | None, chosen: RetentionList, out: Path) -> None:
    """The list (table, CSV, summary) into the run's outputs, once the score table
    (``scores``, written by :func:`scores_written`; None when Spark wrote it there
    already) is there."""
    if scores is not None:
        scores.result()
    files = ExportFiles(
        lists={"csv": out / TARGETS_FILE},
        summary=out / EXPORT_SUMMARY_FILE,
        table=out / TARGETS_TABLE_FILE,
    )
    write_list(chosen, files, name_files=False)


def report(
    scores: pd.DataFrame,
    targets: pd.DataFrame,
    transactions: Path,
    previous_scores: pd.DataFrame | None,
    params: Params,
    out: Path,
    facts: PurchaseFacts | None = None,
) -> list[str]:
    """The marketing HTML report beside the list; returns the file names written. Its KPIs
    are computed by the engine on the transactions file (no pandas copy of 10 M rows),
    from the purchase ``facts`` the feature step counted on its order events."""
    target = out / REPORT_FILE
    write_report(scores, targets, transactions, None, previous_scores, params, target, facts)
    return [REPORT_FILE]
