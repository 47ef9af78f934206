"""`churn nightly --as-of DATE`: ingest, guard, score with the champion, export, publish.

One command for cron or Airflow. The run holds a lock on the output tree,
works in a private staging folder and publishes by renaming that folder into
``as_of=YYYY-MM-DD/`` (churn.scoring.partitions), so a refused or crashed run
leaves the previously published lists exactly as they were. The same as-of
date replayed on the same raw data and model gives byte-identical Parquet and
CSV files and a manifest that differs only under ``timings``.

Each step is a plain function (config and frames in, frames out) collected in
``NightlySteps``, so a better scorer, exporter or report can be swapped in
without touching the flow or the guards.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from churn.atomic import atomic_path, write_csv, write_json, write_parquet
from churn.config import (
    CsvOptions,
    CustomersConfig,
    FeaturesConfig,
    IngestConfig,
    Params,
    SnapshotConfig,
)
from churn.data.customers import ingest_customers
from churn.data.ingest import IngestOutputs, ingest
from churn.data.session import connect as duckdb_connect
from churn.errors import UserError
from churn.model.churn_model import ChurnModel
from churn.model.loader import ModelLoadError, load_churn_model
from churn.scoring import guards, partitions, reachability, run_log
from churn.scoring import new_orders as order_values
from churn.scoring.export import CONSENT_OK, ExportFilters, consent_status
from churn.scoring.lock import RunLockedError, exclusive_lock
from churn.scoring.retention import RetentionList, retention_list
from churn.scoring.score import (
    ModelIdentity,
    explain,
    identify_model,
    score_customers,
)

log = logging.getLogger(__name__)

SCORE_COLUMN = "churn_probability"
SCORES_FILE = "scores.parquet"
TARGETS_FILE = "retention_targets.csv"
TARGETS_TABLE_FILE = "targets.parquet"
EXPORT_SUMMARY_FILE = "retention_targets.summary.json"
REPORT_FILE = "retention_report.html"
INGEST_REPORT_FILE = "ingest_report.json"


class ModelUnavailableError(UserError):
    """The model to score with cannot be resolved or loaded (registry down, no alias, bad URI)."""

    exit_code = 14


@dataclass(frozen=True)
class ModelRef:
    """Which model scored the run; ``uri`` is pinned to a version when it came from the
    registry, so an alias moved mid-run cannot mix two models in one list."""

    uri: str
    name: str = ""
    version: str = ""
    requested: str = ""


@dataclass(frozen=True)
class Ingested:
    report: dict[str, Any]
    transactions: Path
    customers: pd.DataFrame


# --- steps ---------------------------------------------------------------------------


def ingest_step(
    source: Path,
    config: IngestConfig,
    customers: CustomersConfig,
    csv: CsvOptions,
    as_of: dt.date,
    folder: Path,
) -> Ingested:
    """Ingest the whole raw source up to ``as_of`` into the run's private folder.

    ingest's own malformed-share check is switched off here: the nightly
    quarantine guard applies its own threshold and exit code instead.
    """
    unchecked = config.model_copy(update={"max_bad_fraction": 1.0})
    outputs = IngestOutputs(folder / "transactions.parquet", folder / "quarantine.parquet")
    report = dict(ingest(source, unchecked, as_of, outputs).report)
    report["customers_table"] = ingest_customers(
        customers, csv, folder / "customers.parquet", null_values=config.null_values
    )
    return Ingested(report, outputs.transactions, pd.read_parquet(folder / "customers.parquet"))


def transactions_since(transactions: Path, since: str | None) -> tuple[int, int]:
    """(all transactions, those later than ``since``), counted by DuckDB on the file."""
    con = duckdb_connect()
    try:
        row = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE ? IS NULL OR ts > CAST(? AS TIMESTAMP))"
            " FROM read_parquet(?)",
            [since, since, str(transactions)],
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    return int(row[0]), int(row[1])


def load_model_step(uri: str, train_run: Path | None = None) -> tuple[ChurnModel, ModelRef]:
    """The model behind ``uri``, pinned to its registry version for the whole run.

    Loaded by churn.model.loader (checksums first, no unpickling); ``train_run``
    holds the local model directory's checksums.
    """
    try:
        identity = identify_model(uri)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = load_churn_model(identity.pinned_uri, train_run)
    except ModelLoadError as exc:  # its line already says what to do
        raise ModelUnavailableError(str(exc)) from exc
    except UserError as exc:
        raise ModelUnavailableError(
            f"{exc} (set the alias with `churn promote` or pass --model)"
        ) from exc
    ref = ModelRef(
        uri=identity.pinned_uri, name=identity.name, version=identity.version, requested=uri
    )
    return model, ref


def snapshot_step(
    transactions: Path,
    engine: str,
    spark_master: str,
    snapshots: SnapshotConfig,
    features: FeaturesConfig,
    as_of: dt.date,
) -> pd.DataFrame:
    """The scoring snapshot at ``as_of``, through the same feature code as training."""
    from churn.features import backend
    from churn.features.tables import build_scoring_snapshot

    con = backend.connect(engine, spark_master=spark_master)
    table = backend.read_transactions(con, transactions)
    return build_scoring_snapshot(table, as_of, snapshots, features)


def score_step(
    snapshot: pd.DataFrame, model: ChurnModel, ref: ModelRef, params: Params
) -> pd.DataFrame:
    identity = ModelIdentity(uri=ref.uri, name=ref.name, version=ref.version)
    return score_customers(snapshot, model, identity, params.scoring)


def export_step(
    scores: pd.DataFrame,
    snapshot: pd.DataFrame,
    model: ChurnModel,
    customers: pd.DataFrame,
    params: Params,
) -> RetentionList:
    """The same retention list as `churn export`, with its default filters from params."""
    settings = params.export
    filters = ExportFilters(
        segments=settings.segments,
        bands=settings.bands,
        min_value=settings.min_value,
        actions=settings.actions,
        top_n=settings.top_n,
    )
    from churn.outcomes.in_effect import rates_in_effect  # issue 16: measured save rates

    targeting, rates = rates_in_effect(
        params.targeting, params.paths.save_rates, params.outcomes.min_control
    )
    chosen = retention_list(
        scores,
        customers,
        targeting,
        filters,
        lambda wanted: explain(snapshot, model, wanted, params.attribution),
    )
    chosen.summary["save_rates"] = rates
    return chosen


def report_step(
    scores: pd.DataFrame,
    targets: pd.DataFrame,
    transactions: Path,
    previous_scores: pd.DataFrame | None,
    params: Params,
    folder: Path,
) -> list[str]:
    """The marketing HTML report beside the list; returns the file names written."""
    from churn.outcomes.for_report import readout_for_report  # issue 16: "Did it work?"
    from churn.scoring.report import render_pipeline_report

    history = pd.read_parquet(transactions, columns=["customer_id", "order_id", "ts", "amount"])
    readout = readout_for_report(params.paths.outcomes_metrics, params.outcomes.min_control)
    html = render_pipeline_report(scores, targets, history, None, previous_scores, params, readout)
    with atomic_path(folder / REPORT_FILE) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return [REPORT_FILE]


@dataclass(frozen=True)
class NightlySteps:
    """The swappable steps; the flow and the guards around them stay the same."""

    ingest: Callable[..., Ingested] = ingest_step
    load_model: Callable[[str, Path], tuple[ChurnModel, ModelRef]] = load_model_step
    snapshot: Callable[..., pd.DataFrame] = snapshot_step
    score: Callable[[pd.DataFrame, ChurnModel, ModelRef, Params], pd.DataFrame] = score_step
    export: Callable[..., RetentionList] = export_step
    report: Callable[..., list[str]] = report_step


# --- the flow --------------------------------------------------------------------------


@dataclass
class _Timings:
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - started, 3)
        log.info("nightly: %s done in %.1fs", name, self.seconds[name])


@dataclass(frozen=True)
class NightlyResult:
    partition: Path
    manifest: dict[str, Any]


def default_model_uri(params: Params) -> str:
    return f"models:/{params.tracking.registered_model}@{params.nightly.model_alias}"


def run_nightly(
    as_of: dt.date,
    params: Params,
    model_uri: str | None = None,
    steps: NightlySteps | None = None,
    log_run: bool = True,
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
    depend on it.
    """
    steps = steps or NightlySteps()
    config = params.nightly
    uri = model_uri or default_model_uri(params)
    started = time.perf_counter()
    with reachability.bounded(config.mlflow_timeout_seconds, config.mlflow_retries):
        unrecordable = reachability.tracking_problem() if log_run else None
        try:
            _require_registry(uri, unrecordable)
            result = _publish(as_of, params, uri, steps)
        except RunLockedError:
            raise  # the run holding the lock records itself
        except Exception as exc:
            if log_run and unrecordable is None:
                run_log.log_unpublished(
                    as_of, exc, time.perf_counter() - started, config.experiment
                )
            elif log_run:
                log.info("nightly: not recorded in MLflow: %s", unrecordable)
            raise
        if log_run:
            _record(result, unrecordable, config.experiment)
    return result


def _require_registry(model_uri: str, tracking_problem: str | None) -> None:
    """Refuse at once (exit 14) when the model comes from a registry that does not answer,
    rather than after ingest and features, or after MLflow's minutes of retries."""
    if not reachability.needs_server(model_uri):
        return
    import mlflow

    same_store = mlflow.get_registry_uri() == mlflow.get_tracking_uri()
    problem = tracking_problem if same_store and tracking_problem else None
    problem = problem or reachability.registry_problem()
    if problem:
        raise ModelUnavailableError(
            f"{problem}, and {model_uri} comes from it: start the tracking server or pass"
            " --model with a local model folder; previous list left in place"
        )


def _publish(as_of: dt.date, params: Params, model_uri: str, steps: NightlySteps) -> NightlyResult:
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
            manifest = _run_steps(as_of, params, model_uri, steps, work, out)
            target = partitions.publish(root, as_of, out)
    log.info("nightly: published %s", target)
    return NightlyResult(partition=target, manifest=manifest)


def _record(result: NightlyResult, problem: str | None, experiment: str) -> None:
    """Log the published run's manifest to MLflow, or say in one warning why it was not
    (the list is out and correct; the manifest beside it holds the same record)."""
    where = result.partition / partitions.MANIFEST
    if problem is None:
        try:
            run_id = run_log.log_manifest(result.manifest, "published", experiment)
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
    steps: NightlySteps,
    work: Path,
    out: Path,
) -> dict[str, Any]:
    config = params.nightly
    root = config.output_root
    timings = _Timings()
    started = dt.datetime.now(dt.UTC)

    with timings.step("ingest"):
        ingested = steps.ingest(
            params.paths.raw_transactions,
            params.ingest,
            params.ingest.customers,
            params.ingest.csv,
            as_of,
            work,
        )
    report = ingested.report
    malformed_fraction = guards.check_quarantine(report, config.max_malformed_fraction)

    previous = partitions.previous_date(root, as_of)
    previous_manifest = partitions.read_manifest(root, previous) if previous else None
    previous_last_ts = previous_manifest["data"]["last_ts"] if previous_manifest else None
    n_transactions, n_new = transactions_since(ingested.transactions, previous_last_ts)
    guards.check_new_data(
        n_transactions,
        n_new,
        previous.isoformat() if previous else None,
        previous_last_ts,
    )
    new_orders = order_values.check(
        order_values.measure(
            ingested.transactions,
            previous_last_ts,
            config.new_order_history_days,
            config.psi_bins,
        ),
        config.min_new_orders,
        config.max_new_order_median_ratio,
        config.max_new_order_psi,
    )
    log.info(
        "nightly: %s new orders, median value %sx the history's, PSI %s%s",
        new_orders.orders,
        new_orders.median_ratio,
        new_orders.psi,
        "" if new_orders.judged else f"; not judged: {new_orders.skipped}",
    )

    with timings.step("load_model"):
        model, ref = steps.load_model(model_uri, params.paths.train_run)
    with timings.step("features"):
        snapshot = steps.snapshot(
            ingested.transactions,
            params.engine,
            params.spark_master,
            params.snapshots,
            params.features,
            as_of,
        )
    with timings.step("score"):
        scores = steps.score(snapshot, model, ref, params)
    with timings.step("psi"):
        reference, reference_name = _psi_reference(root, previous, params, model, ref, steps)
        if reference is None:
            psi = guards.PsiResult(values={}, reference=reference_name, skipped=[])
        else:
            psi = guards.distribution_psi(
                reference,
                scores,
                config.psi_features,
                SCORE_COLUMN,
                config.psi_bins,
                reference_name,
            )
        log.info("nightly: PSI against %s: %s", psi.reference, psi.values)
        if psi.skipped:
            log.warning("nightly: no PSI for %s (not in both frames)", ", ".join(psi.skipped))
        previous_model = previous_manifest["model"]["uri"] if previous_manifest else ref.uri
        same_model = previous_model == ref.uri
        if not same_model:
            log.warning(
                "nightly: model changed since the previous run (%s -> %s): score PSI recorded,"
                " not enforced",
                previous_model,
                ref.uri,
            )
        guards.check_psi(
            psi, SCORE_COLUMN, config.max_feature_psi, config.max_score_psi, same_model
        )
    with timings.step("export"):
        exported = steps.export(scores, snapshot, model, ingested.customers, params)
    with timings.step("write"):
        write_parquet(scores, out / SCORES_FILE)
        write_parquet(exported.targets, out / TARGETS_TABLE_FILE)
        write_csv(exported.contact_list, out / TARGETS_FILE)
        write_json(exported.summary, out / EXPORT_SUMMARY_FILE)
        write_json(_portable_report(report), out / INGEST_REPORT_FILE)
    with timings.step("report"):
        previous_scores = reference if previous is not None else None
        report_files = steps.report(
            scores, exported.targets, ingested.transactions, previous_scores, params, out
        )

    from churn.model.tracking import file_fingerprint, git_commit

    outputs = [
        SCORES_FILE,
        TARGETS_TABLE_FILE,
        TARGETS_FILE,
        EXPORT_SUMMARY_FILE,
        INGEST_REPORT_FILE,
        *report_files,
    ]
    manifest: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "status": "published",
        "model": {
            "requested": ref.requested,
            "uri": ref.uri,
            "name": ref.name,
            "version": ref.version,
        },
        "data": {
            "source": str(params.paths.raw_transactions),
            "fingerprint": file_fingerprint(ingested.transactions),
            "first_ts": report["first_ts"],
            "last_ts": report["last_ts"],
            "new_transactions": n_new,
            "previous_as_of": previous.isoformat() if previous else None,
        },
        "rows": {
            "raw": report["rows_in"],
            "transactions": n_transactions,
            "quarantined": report["rows_quarantined"],
            "malformed": report["malformed_rows"],
            "customers_in_master": len(ingested.customers),
            "scored": len(scores),
            "contactable": int(
                (consent_status(scores["customer_id"], ingested.customers) == CONSENT_OK).sum()
            ),
            "selected": int(exported.targets["selected"].sum()),
            "targets": len(exported.contact_list),
        },
        "quarantine": {
            "malformed_fraction": round(malformed_fraction, 6),
            "reasons": report["reasons"],
        },
        "psi": {
            "reference": psi.reference,
            "values": psi.values,
            "skipped": psi.skipped,
            "score_enforced": same_model,
        },
        "new_orders": new_orders.as_manifest(),
        "save_rates": exported.summary.get("save_rates"),
        "thresholds": config.model_dump(
            mode="json",
            include={
                "max_malformed_fraction",
                "max_feature_psi",
                "max_score_psi",
                "psi_bins",
                "min_new_orders",
                "max_new_order_median_ratio",
                "max_new_order_psi",
                "new_order_history_days",
            },
        ),
        "outputs": {name: file_fingerprint(out / name) for name in outputs},
        "code": {"churn_version": metadata.version("churn"), "git_commit": git_commit()},
    }
    timings.seconds["total"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 3)
    manifest["timings"] = {"started_at": started.isoformat(), **timings.seconds}
    write_json(manifest, out / partitions.MANIFEST)  # last: its presence marks a whole run
    return manifest


def _portable_report(report: dict[str, Any]) -> dict[str, Any]:
    """The ingest report as written beside the scores (JSON-safe, deterministic)."""
    return json.loads(json.dumps(report, sort_keys=True, default=str))


def _psi_reference(
    root: Path,
    previous: dt.date | None,
    params: Params,
    model: ChurnModel,
    ref: ModelRef,
    steps: NightlySteps,
) -> tuple[pd.DataFrame | None, str]:
    """The previous published scores, else the pipeline's own scoring snapshot scored now.

    Never the training table's test cutoff: it lies a horizon earlier, often in
    another season, and would make a healthy first run look like drift.
    """
    if previous is not None:
        path = partitions.partition_dir(root, previous) / SCORES_FILE
        return pd.read_parquet(path), f"the run of {previous.isoformat()}"
    snapshot_path = params.paths.score_features
    if snapshot_path.exists():
        snapshot = pd.read_parquet(snapshot_path)
        if not snapshot.empty:
            cutoff = pd.Timestamp(snapshot["cutoff"].iloc[0]).date().isoformat()
            scored = steps.score(snapshot, model, ref, params)
            return scored, f"{snapshot_path} (cutoff {cutoff})"
    return None, "none (first run, no pipeline snapshot)"


__all__ = [
    "ModelRef",
    "ModelUnavailableError",
    "NightlyResult",
    "NightlySteps",
    "run_nightly",
]
