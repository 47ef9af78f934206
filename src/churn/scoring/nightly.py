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
from churn.scoring import guards, partitions, run_log
from churn.scoring.export import CONSENT_OK, ExportFilters, consent_status
from churn.scoring.lock import exclusive_lock
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
    return retention_list(
        scores,
        customers,
        params.targeting,
        filters,
        lambda wanted: explain(snapshot, model, wanted, params.attribution),
    )


def report_step(
    scores: pd.DataFrame,
    targets: pd.DataFrame,
    transactions: Path,
    previous_scores: pd.DataFrame | None,
    params: Params,
    folder: Path,
) -> list[str]:
    """The marketing HTML report beside the list; returns the file names written."""
    from churn.scoring.report import render_pipeline_report

    history = pd.read_parquet(transactions, columns=["customer_id", "order_id", "ts", "amount"])
    html = render_pipeline_report(scores, targets, history, None, previous_scores, params)
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

    The MLflow tracking URI and experiment must be configured by the caller
    (the model is loaded from, and the manifest logged to, that store). A
    refused run is logged too (status ``refused``, the exit code and the reason),
    and so is a crash (status ``failed``), so the MLflow experiment is the job's
    complete history.
    """
    steps = steps or NightlySteps()
    root = params.nightly.output_root
    started = time.perf_counter()
    with exclusive_lock(root):
        partitions.recover(root)
        try:
            with partitions.staging_dir(root, as_of) as staging:
                work, out = staging / "work", staging / "out"
                work.mkdir()
                out.mkdir()
                uri = model_uri or default_model_uri(params)
                manifest = _run_steps(as_of, params, uri, steps, work, out)
                target = partitions.publish(root, as_of, out)
        except Exception as exc:
            if log_run:
                run_log.log_unpublished(as_of, exc, time.perf_counter() - started)
            raise
        log.info("nightly: published %s", target)
        if log_run:
            try:
                run_id = run_log.log_manifest(manifest, "published")
            except Exception as exc:  # the list is out and correct; the record can be redone
                log.error(
                    "nightly: published, but the manifest could not be logged to MLflow: %s"
                    " (it is in %s)",
                    str(exc).splitlines()[0],
                    target / partitions.MANIFEST,
                )
            else:
                log.info("nightly: manifest logged to MLflow run %s", run_id)
    return NightlyResult(partition=target, manifest=manifest)


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
        "thresholds": config.model_dump(
            mode="json",
            include={"max_malformed_fraction", "max_feature_psi", "max_score_psi", "psi_bins"},
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
