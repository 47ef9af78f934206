"""The nightly job's steps after ingest on Spark (``engine: pyspark``): no table on the driver.

:func:`churn.nightly.job._run_steps` comes here instead of the pandas steps when the
engine is Spark. The snapshot and the score table are Parquet folders that Spark
writes (the snapshot in the run's private work folder, the scores straight into the
outputs) and the driver only ever holds what it must:

- the drift guards' PSI: bin counts per feature and for the score, DuckDB streaming
  the parts (:mod:`churn.nightly.streamed_psi`), the same values as the pandas path;
- the list: the export stage's Spark path, by risk or by uplift (the candidates' pick
  columns, the budgeted pick on the driver, the targeted customers' full rows, reasons
  from their snapshot rows fetched by id: :mod:`churn.stages.spark_export`);
- the report: the score table's aggregates (:func:`churn.scoring.score_digest.digest_parquet`)
  and the targeted rows; the KPIs come from the transactions as on DuckDB's path;
- the manifest's counts: rows from the parts' metadata, the contactable by a join.

Ranking by a measured uplift model adds the uplift column on the executors
(:mod:`churn.outcomes.spark_uplift`) before the pick, and the targeted customers'
snapshot rows give theirs again for the list.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds

from churn.atomic import write_parquet
from churn.config import Params
from churn.data.countries import latest_countries
from churn.data.session import connect as duckdb_connect
from churn.data.session import parquet_files
from churn.features import backend
from churn.model.loader import LoadedModel
from churn.nightly import guards, steps
from churn.nightly.manifest import REPORT_FILE, SCORES_FILE, PreviousRun
from churn.nightly.streamed_psi import parquet_psi
from churn.schema import CUSTOMER_ID, CUTOFF
from churn.scoring.export import CONSENT_OK, Contacts, consent_status
from churn.scoring.retention import RetentionList
from churn.scoring.score import explain
from churn.scoring.score_digest import digest_parquet
from churn.scoring.spark_candidates import rows_with_ids
from churn.stages.export import param_filters, retention
from churn.stages.inputs import dataset_frame, is_spark_dataset
from churn.stages.report import write_report
from churn.stages.spark_export import first_date, over_all_scored, pick_input_of, spark_table
from churn.stages.spark_features import write_spark_scoring_snapshot
from churn.stages.spark_score import write_spark_scores

log = logging.getLogger(__name__)

SNAPSHOT_FOLDER = "snapshot.parquet"  # in the run's private work folder
REFERENCE_FOLDER = "reference_scores.parquet"  # the pipeline snapshot scored, for PSI


@dataclass(frozen=True)
class SparkRun:
    """One nightly run's inputs after ingest: the date, what was read, where it goes."""

    as_of: dt.date
    params: Params
    ingested: steps.Ingested
    previous: PreviousRun | None
    loaded: LoadedModel
    work: Path
    out: Path


def score_and_list(
    run: SparkRun, acceptance: guards.DriftAcceptance, timings: steps.Timings
) -> steps.Scored:
    """Snapshot, scores, drift guards, list and report, each table written by Spark."""
    snapshot, scores = run.work / SNAPSHOT_FOLDER, run.out / SCORES_FILE
    with timings.step("features"):
        rows = _snapshot(run, snapshot)
    with timings.step("score"):
        write_spark_scores(run.params, snapshot, run.loaded, scores)
    scored_on = run.as_of if rows else None
    with timings.step("psi"):
        drift = check_drift(run, scores, scored_on, acceptance)
    with timings.step("export"):
        chosen = retention_list(run, scores, snapshot, scored_on)
    with timings.step("write"):
        steps.write_outputs(None, chosen, run.out)  # the scores are in place already
    with timings.step("report"):
        previous = digest_parquet(run.previous.scores) if run.previous else None
        write_report(
            digest_parquet(scores),
            chosen.targets,
            run.ingested.transactions,
            None,
            previous,
            run.params,
            run.out / REPORT_FILE,
        )
    counts = score_counts(scores, run.ingested.customers)
    return steps.Scored(chosen, drift, [REPORT_FILE], counts)


def _snapshot(run: SparkRun, target: Path) -> int:
    """The scoring snapshot at the run's date, written by Spark into ``target``; its rows."""
    params = run.params
    con = backend.connect(params.engine, spark_master=params.spark_master)
    table = backend.read_transactions(con, run.ingested.transactions)
    return write_spark_scoring_snapshot(table, run.as_of, params.snapshots, params.features, target)


def check_drift(
    run: SparkRun,
    scores: Path,
    as_of: dt.date | None,
    acceptance: guards.DriftAcceptance,
) -> steps.Drift:
    """:func:`churn.nightly.steps.check_drift` on the Parquet parts: the same reference,
    the same PSI values and the same refusal, from bin counts."""
    params = run.params
    config = params.nightly
    reference, name = psi_reference(run, as_of)
    if reference is None:
        psi = guards.PsiResult(values={}, reference=name, skipped=[])
    else:
        psi = parquet_psi(
            reference, scores, config.psi_features, steps.SCORE_COLUMN, config.psi_bins, name
        )
    same_model = steps.judge_drift(
        psi, reference is not None, run.previous, run.loaded.identity.uri, config, acceptance
    )
    return steps.Drift(psi, None, same_model)


def psi_reference(run: SparkRun, as_of: dt.date | None) -> tuple[Path | None, str]:
    """:func:`churn.nightly.steps.psi_reference` as a score table on disk: the previous
    run's (a file or a folder), else the pipeline's scoring snapshot scored now into the
    work folder when it is not later than ``as_of``, else none."""
    previous, params = run.previous, run.params
    if previous is not None:
        return previous.scores, f"the run of {previous.as_of.isoformat()}"
    snapshot_path, target = params.paths.score_features, run.work / REFERENCE_FOLDER
    if not is_spark_dataset(snapshot_path):
        # None, or the DuckDB pipeline's one file (nanosecond times, which Spark cannot
        # read): one machine's snapshot, judged and scored exactly as the DuckDB nightly does.
        scored, name = steps.psi_reference(None, run.loaded, params, as_of)
        if scored is None:
            return None, name
        write_parquet(scored, target)
        return target, name
    first = first_date(snapshot_path, CUTOFF)
    if first is None:
        return None, "none (first run, the pipeline snapshot is empty)"
    cutoff = first.date()
    if as_of is not None and cutoff > as_of:
        return None, steps.later_snapshot(as_of, snapshot_path, cutoff)
    write_spark_scores(params, snapshot_path, run.loaded, target)
    return target, f"{snapshot_path} (cutoff {cutoff.isoformat()})"


def retention_list(
    run: SparkRun, scores: Path, snapshot: Path, as_of: dt.date | None
) -> RetentionList:
    """The list `churn export` makes on Spark: picked from the candidates' pick columns,
    with the targeted customers' full rows and reasons from their snapshot rows only."""
    params, customers = run.params, run.ingested.customers
    features = spark_table(params, snapshot)
    pushed = pick_input_of(spark_table(params, scores), params, customers, features)

    def targeted_rows(wanted: pd.Series) -> pd.DataFrame:
        return dataset_frame(rows_with_ids(features, wanted))

    def reasons_for(wanted: pd.Series) -> pd.DataFrame:
        return explain(targeted_rows(wanted), run.loaded.model, wanted, params.attribution)

    contacts: Contacts | None = None
    if customers["country"].replace("", None).isna().all():
        transactions = run.ingested.transactions
        contacts = lambda listed: latest_countries(transactions, as_of, listed)  # noqa: E731
    filters = param_filters(params.export)
    chosen = retention(
        pushed.scores,
        customers,
        params,
        filters,
        reasons_for,
        lambda: targeted_rows(pushed.scores[CUSTOMER_ID]),  # uplift: the targeted only
        contacts,
    )
    return over_all_scored(chosen, pushed, filters, customers)


def score_counts(scores: Path, customers: pd.DataFrame) -> steps.ScoreCounts:
    """Customers scored (the parts' metadata) and those with consent (a join by DuckDB
    of the score ids with the consenting ids), as ``consent_status`` counts them."""
    scored = ds.dataset(scores, format="parquet", partitioning=None).count_rows()
    if customers.empty:  # no customers table: everyone may be contacted
        return steps.ScoreCounts(scored, scored)
    ids = customers[CUSTOMER_ID].drop_duplicates()
    consenting = ids[(consent_status(ids, customers) == CONSENT_OK).to_numpy()]
    con = duckdb_connect()
    try:
        con.register("consenting", pd.DataFrame({CUSTOMER_ID: consenting}))
        row = con.execute(
            f"SELECT count(*) FROM read_parquet(?) WHERE {CUSTOMER_ID} IN"
            f" (SELECT {CUSTOMER_ID} FROM consenting)",
            [parquet_files(scores)],
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    return steps.ScoreCounts(scored, int(row[0]))
