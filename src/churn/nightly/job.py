"""`churn nightly --as-of DATE`: ingest, guard, score with the champion, export, publish.

One command for cron or Airflow. The run holds a lock on the output tree,
works in a private staging folder and publishes by renaming that folder into
``as_of=YYYY-MM-DD/`` (churn.nightly.partitions), so a refused or crashed run
leaves the previously published lists exactly as they were. The same as-of
date replayed on the same raw data and model gives byte-identical Parquet and
CSV files and a manifest that differs only under ``timings``.

The steps (churn.nightly.steps) call the same stage functions as the CLI
(churn.stages); this module runs them in order and records the run. With
``engine: pyspark`` the steps after ingest are churn.nightly.spark_steps, which keep
the snapshot and the score table on the executors.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from churn.atomic import record_json, write_record
from churn.config import Params
from churn.model.provenance import file_fingerprint, git_commit
from churn.nightly import guards, partitions, reachability, run_log, spark_steps, steps
from churn.nightly.lock import RunLockedError, exclusive_lock
from churn.nightly.manifest import (
    EXPORT_SUMMARY_FILE,
    INGEST_REPORT_FILE,
    SCORES_FILE,
    TARGETS_FILE,
    TARGETS_TABLE_FILE,
    CodeVersion,
    DataRead,
    ModelUsed,
    NightlyManifest,
    PreviousRun,
    PsiRecord,
    QuarantineShare,
    RowCounts,
    previous_run,
)
from churn.nightly.model import ModelUnavailableError, default_model_uri, load_pinned
from churn.nightly.spark_steps import SparkRun
from churn.scoring.kpi_engine import FactsOfEvents
from churn.stages.score import score_snapshot
from churn.stages.snapshot import build_snapshot

log = logging.getLogger(__name__)

# The limits the manifest records beside what was measured against them.
THRESHOLDS = {
    "max_malformed_fraction",
    "max_feature_psi",
    "max_score_psi",
    "psi_bins",
    "min_new_orders",
    "max_new_order_median_ratio",
    "max_new_order_psi",
    "new_order_history_days",
}


@dataclass(frozen=True)
class NightlyResult:
    partition: Path
    manifest: NightlyManifest


def run_nightly(
    as_of: dt.date,
    params: Params,
    model_uri: str | None = None,
    log_run: bool = True,
    accept_drift: bool = False,
) -> NightlyResult:
    """Run every step for ``as_of`` and publish, or raise the guard that refused.

    The MLflow tracking URI must be set by the caller (``run_log.configure``):
    the model may come from that registry and the run is recorded in that store.
    Every MLflow call is bounded (``nightly.mlflow_*``) and the store is probed
    first: a registry model with the registry down refuses at once (exit 14); a
    local model folder publishes anyway, with one warning that the run was not
    recorded. A refused run is recorded too (status ``refused``, the exit code
    and the reason), and so is a crash (``failed``), so the MLflow experiment is
    the job's complete history. The record is written after the lock is
    released: it is slow when the server is, and the published list does not
    depend on it. ``accept_drift`` lets the drift guards (exit 13) warn instead, for
    this run only; the manifest records what they let through.
    """
    config = params.nightly
    uri = model_uri or default_model_uri(params)
    started = time.perf_counter()
    with (
        reachability.bounded(config.mlflow_timeout_seconds, config.mlflow_retries),
        reachability.tracking_probe(log_run, reachability.needs_server(uri)) as probed,
    ):
        try:
            _require_registry(uri, probed)
            result = _publish(as_of, params, uri, accept_drift)
        except RunLockedError:
            raise  # the run holding the lock records itself
        except Exception as exc:
            unrecordable = probed()
            if log_run and unrecordable is None:
                run_log.log_unpublished(
                    as_of, exc, time.perf_counter() - started, config.experiment
                )
            elif log_run:
                log.info("nightly: not recorded in MLflow: %s", unrecordable)
            raise
        if log_run:
            _record(result, probed(), config.experiment)
    return result


def _require_registry(model_uri: str, probed: Callable[[], str | None]) -> None:
    """Refuse at once (exit 14) when the model comes from a registry that does not answer,
    rather than after ingest and features, or after MLflow's minutes of retries.
    ``probed`` gives the tracking store's problem (asked only for a registry model: for a
    local one the probe may still be running)."""
    if not reachability.needs_server(model_uri):
        return
    import mlflow

    tracking_problem = probed()
    same_store = mlflow.get_registry_uri() == mlflow.get_tracking_uri()
    problem = tracking_problem if same_store and tracking_problem else None
    problem = problem or reachability.registry_problem()
    if problem:
        raise ModelUnavailableError(
            f"{problem}, and {model_uri} comes from it: start the tracking server or pass"
            " --model with a local model folder; previous list left in place"
        )


def _publish(
    as_of: dt.date, params: Params, model_uri: str, accept_drift: bool = False
) -> NightlyResult:
    """The steps and the publication, under the lock (released on return)."""
    root = params.nightly.output_root
    with exclusive_lock(root):
        partitions.recover(root)
        with (
            partitions.staging_dir(root, as_of) as staging,
            partitions.temp_files_in(staging / "tmp"),
        ):
            work, out = staging / "work", staging / "out"
            work.mkdir()
            out.mkdir()
            manifest = _run_steps(as_of, params, model_uri, work, out, accept_drift)
            target = partitions.publish(root, as_of, out)
    log.info("nightly: published %s", target)
    return NightlyResult(partition=target, manifest=manifest)


def _record(result: NightlyResult, problem: str | None, experiment: str) -> None:
    """Log the published run's manifest to MLflow, or say in one warning why it was not
    (the list is out and correct; the manifest beside it holds the same record)."""
    where = result.partition / partitions.MANIFEST
    if problem is None:
        try:
            run_id = run_log.log_manifest(record_json(result.manifest), "published", experiment)
        except Exception as exc:
            problem = f"MLflow failed ({reachability.describe(exc)})"
        else:
            log.info("nightly: manifest logged to MLflow run %s", run_id)
            return
    log.warning(
        "nightly: published, but the run could not be recorded in MLflow: %s; the manifest"
        " is in %s",
        problem,
        where,
    )


def _run_steps(
    as_of: dt.date,
    params: Params,
    model_uri: str,
    work: Path,
    out: Path,
    accept_drift: bool = False,
) -> NightlyManifest:
    """Every step in order, each guard right after what it checks; the manifest last."""
    timings = steps.Timings()
    acceptance = guards.DriftAcceptance(accept_drift)
    with timings.step("ingest"):
        ingested = steps.ingest(as_of, params, work, out)
    guards.check_quarantine(ingested.report, params.nightly.max_malformed_fraction)
    previous = previous_run(params.nightly.output_root, as_of)
    news = steps.check_new_data(ingested, previous, params.nightly, acceptance)
    with timings.step("load_model"):
        loaded = load_pinned(model_uri, params)
    if params.engine == "pyspark":  # the tables stay on the executors
        spark = SparkRun(as_of, params, ingested, previous, loaded, work, out)
        made = spark_steps.score_and_list(spark, acceptance, timings)
        run = _Run(as_of, params, ingested, previous, news, made, acceptance)
        return _finish(run, ModelUsed.of(loaded.identity), out, timings)
    # The report's purchase facts come from the feature step's order events (issue 20).
    kpi_facts = FactsOfEvents(params.snapshots.active_window_days, params.snapshots.horizon_days)
    with timings.step("features"):
        snapshot = build_snapshot(ingested.transactions, as_of, params, kpi_facts.collect)
    with timings.step("score"):
        scores = score_snapshot(snapshot, loaded, params)
    with steps.scores_written(scores, out) as scores_file:
        with timings.step("psi"):
            drift = steps.check_drift(scores, previous, loaded, params, acceptance)
        with timings.step("export"):
            chosen = steps.retention_list(
                scores, snapshot, loaded, ingested.customers, params, ingested.transactions
            )
        del snapshot  # the feature rows (~1 GB at 2 M customers) are not needed past the list
        with timings.step("write"):
            steps.write_outputs(scores_file, chosen, out)
    with timings.step("report"):
        reports = steps.report(
            scores,
            chosen.targets,
            ingested.transactions,
            drift.reference,
            params,
            out,
            kpi_facts.facts,
        )
    made = steps.Scored(chosen, drift, reports, steps.ScoreCounts.of(scores, ingested.customers))
    run = _Run(as_of, params, ingested, previous, news, made, acceptance)
    return _finish(run, ModelUsed.of(loaded.identity), out, timings)


def _finish(run: _Run, model: ModelUsed, out: Path, timings: steps.Timings) -> NightlyManifest:
    """The manifest, written last: its presence marks a whole run."""
    manifest = _manifest(run, model, out, run.made.reports, timings)
    write_record(manifest, out / partitions.MANIFEST)
    return manifest


@dataclass(frozen=True)
class _Run:
    """What the steps produced, for the manifest."""

    as_of: dt.date
    params: Params
    ingested: steps.Ingested
    previous: PreviousRun | None
    news: steps.NewData
    made: steps.Scored  # the list, the drift measured, the reports, the counts
    acceptance: guards.DriftAcceptance


def _manifest(
    run: _Run, model: ModelUsed, out: Path, reports: list[str], timings: steps.Timings
) -> NightlyManifest:
    report, drift = run.ingested.report, run.made.drift
    outputs = [
        SCORES_FILE,
        TARGETS_TABLE_FILE,
        TARGETS_FILE,
        EXPORT_SUMMARY_FILE,
        INGEST_REPORT_FILE,
        *reports,
    ]
    return NightlyManifest(
        as_of=run.as_of.isoformat(),
        status="published",
        model=model,
        data=_data_read(run),
        rows=_row_counts(run),
        quarantine=QuarantineShare(report.malformed_fraction, report.reasons),
        psi=PsiRecord(drift.psi.reference, drift.psi.values, drift.psi.skipped, drift.same_model),
        new_orders=run.news.orders,
        thresholds=run.params.nightly.model_dump(mode="json", include=THRESHOLDS),
        outputs={name: file_fingerprint(out / name) for name in outputs},
        code=CodeVersion(metadata.version("churn"), git_commit()),
        timings=timings.record(),
        save_rates=run.made.chosen.summary.get("save_rates"),
        ranking=run.made.chosen.summary.get("ranking"),
        drift_accepted=run.acceptance.record(),
    )


def _data_read(run: _Run) -> DataRead:
    report = run.ingested.report
    return DataRead(
        source=str(run.params.paths.raw_transactions),
        fingerprint=file_fingerprint(run.ingested.transactions),
        first_ts=report.first_ts,
        last_ts=report.last_ts,
        new_transactions=run.news.new,
        previous_as_of=run.previous.as_of.isoformat() if run.previous else None,
    )


def _row_counts(run: _Run) -> RowCounts:
    report, customers, chosen = run.ingested.report, run.ingested.customers, run.made.chosen
    return RowCounts(
        raw=report.rows_in,
        transactions=run.news.transactions,
        quarantined=report.rows_quarantined,
        malformed=report.malformed_rows,
        customers_in_master=len(customers),
        scored=run.made.counts.scored,
        contactable=run.made.counts.contactable,
        selected=int(chosen.targets["selected"].sum()),
        targets=len(chosen.contact_list),
    )


__all__ = [
    "ModelUnavailableError",
    "NightlyResult",
    "run_nightly",
]
