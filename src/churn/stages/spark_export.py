"""The `export` stage's input on Spark (``engine: pyspark``): the pick, not the table.

When Spark wrote the score table and the pick ranks by churn risk, the executors
send back the pick's columns of the customers worth contacting
(churn.scoring.spark_candidates); the driver checks consent and runs the budgeted
pick on those, exactly as :func:`churn.scoring.targeting.select_targets` does on
the whole table, then fetches the full score rows of the targeted customers only.
The reasons and the list then run as on DuckDB's path on those rows (a set the
budget already allows, so the pick keeps all of them), so the list is the same
byte for byte; the summary's counts over everyone worth contacting (left out,
the pick's bound) come from the first pick. The targets table holds the targeted
customers (selected and control), not every scored customer. Ranking by a measured
uplift model adds the uplift column on the executors from the Spark scoring snapshot
(churn.outcomes.spark_uplift): the nightly job passes its own, `churn export` the
features stage's when it is a Spark folder of the scores' date (else the driver
reads the score table, as DuckDB's path does). The uplift and the reasons of the
targeted customers then come from their snapshot rows only, fetched by id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.dataset as ds

from churn.config import Params, TargetingConfig
from churn.features import backend
from churn.outcomes.in_effect import rates_in_effect
from churn.outcomes.ranking import uplift_in_effect
from churn.outcomes.spark_uplift import with_spark_uplift
from churn.schema import CUTOFF
from churn.scoring.export import CONSENT_OK, ExportFilters, consent_status, why_empty
from churn.scoring.retention import RetentionList
from churn.scoring.spark_candidates import (
    Candidates,
    rows_with_ids,
    spark_candidates,
    spark_rows_of,
)
from churn.scoring.targeting import budgeted_pick
from churn.stages.inputs import dataset_frame, input_file, is_spark_dataset
from churn.stages.spark_features import PARTITION

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PickInput:
    """The targeted customers' score rows, and what the summary says of everyone else."""

    scores: pd.DataFrame
    scored: int
    as_of: pd.Timestamp | None
    counts: dict[str, Any]  # worth_contacting, left_out, budget_pick: over every candidate
    # The Spark snapshot's rows of some ids (the targeted), when the picker had it.
    snapshot_rows: Callable[[pd.Series], pd.DataFrame] | None = None


def spark_pick_input(params: Params, customers: pd.DataFrame | None) -> PickInput | None:
    """The targeted rows of ``paths.scores`` picked from Spark's candidates, or None where
    the driver must read the table (DuckDB's engine, a file, or ranking by uplift without
    a Spark scoring snapshot of the scores' date)."""
    path = params.paths.scores
    if params.engine != "pyspark" or not is_spark_dataset(input_file(path, "score")):
        return None
    snapshot = _snapshot_of(params, path)
    if snapshot is None and params.targeting.rank_by != "risk":
        return None  # the uplift is predicted from the snapshot scoring_snapshot builds
    pushed = pick_input_of(spark_table(params, path), params, customers, snapshot)
    if snapshot is None:
        return pushed
    return replace(pushed, snapshot_rows=lambda ids: dataset_frame(rows_with_ids(snapshot, ids)))


def _snapshot_of(params: Params, scores: Path) -> Any:
    """The features stage's scoring snapshot as a Spark DataFrame when Spark wrote it and
    it is of the date ``scores`` were made at (what scoring_snapshot would read), else None."""
    path = params.paths.score_features
    if not is_spark_dataset(path):
        return None
    cutoff, as_of = first_date(path, CUTOFF), first_date(scores, "as_of")
    if cutoff is None or cutoff != as_of:
        return None
    return spark_table(params, path)


def first_date(folder: Path, column: str) -> pd.Timestamp | None:
    """``column`` of the first row of the Parquet parts in ``folder`` (None: no rows)."""
    dataset = ds.dataset(folder, format="parquet", partitioning=None)
    if dataset.count_rows() == 0:  # an empty snapshot's one file has no columns
        return None
    return pd.Timestamp(dataset.head(1, columns=[column]).column(column)[0].as_py())


def spark_table(params: Params, path: Path) -> Any:
    """The Parquet folder (or file) at ``path`` as a Spark DataFrame, without the folder
    level the snapshots are partitioned by (the cutoff is in the rows)."""
    spark = backend.spark_session(backend.resolve_spark_master(params.spark_master))
    frame = spark.read.parquet(str(path.resolve()))
    return frame.drop(PARTITION) if PARTITION in frame.columns else frame


def pick_input_of(
    frame: Any, params: Params, customers: pd.DataFrame | None, snapshot: Any = None
) -> PickInput:
    """The targeted rows of the Spark score table ``frame``, picked from its candidates
    (the export stage's and the nightly job's, ``engine: pyspark``). Ranking by uplift
    needs the Spark scoring snapshot ``snapshot``: the uplift column is added on the
    executors (churn.outcomes.spark_uplift) and comes back with the targeted rows."""
    model, _ = uplift_in_effect(
        params.targeting, params.paths.outcomes_dir, params.paths.outcomes_metrics
    )
    if model is not None:
        if snapshot is None:
            raise ValueError("ranking by uplift on Spark needs the scoring snapshot")
        frame = with_spark_uplift(frame, snapshot, model)
    # The save rates the driver's pick will use (measured ones may replace the assumed).
    targeting, _ = rates_in_effect(
        params.targeting, params.paths.save_rates, params.outcomes.min_control
    )
    found = spark_candidates(frame, targeting)
    targeted, counts = _first_pick(found, customers, targeting)
    rows = dataset_frame(spark_rows_of(frame, targeted))
    log.info(
        "export: %d of %d scored customers worth contacting came back as pick columns,"
        " %d targeted as full rows",
        found.pick.num_rows,
        found.scored,
        len(rows),
    )
    return PickInput(rows, found.scored, found.as_of, counts)


def _first_pick(
    found: Candidates, customers: pd.DataFrame | None, config: TargetingConfig
) -> tuple[pd.Series, dict[str, Any]]:
    """The budgeted pick over every candidate, as select_targets makes it (rank order,
    no consent: no gain); the targeted ids and the summary's counts over candidates."""
    pick = found.pick.to_pandas()
    consent = consent_status(pick["customer_id"], customers)
    chosen = budgeted_pick(pick, (consent == CONSENT_OK).to_numpy(), config)
    counts = {
        "worth_contacting": len(pick),
        "left_out": {
            status: int((consent == status).sum())
            for status in consent.unique()
            if status != CONSENT_OK
        },
        "budget_pick": chosen.summary(),
    }
    return pick.loc[chosen.chosen, "customer_id"], counts


def over_all_scored(
    chosen: RetentionList,
    pushed: PickInput,
    filters: ExportFilters,
    customers: pd.DataFrame | None,
) -> RetentionList:
    """The summary of a list built from the targeted rows counts every scored customer
    and every candidate, as the same list built from the whole table does (and says why
    when it came out empty)."""
    summary = dict(chosen.summary)
    summary["scored_customers"] = pushed.scored
    if pushed.as_of is not None:
        summary["as_of"] = str(pushed.as_of.date())
    summary["worth_contacting"] = pushed.counts["worth_contacting"]
    summary["left_out"] = {
        status: pushed.counts["left_out"].get(status, 0) for status in summary["left_out"]
    }
    summary["budget_pick"] = pushed.counts["budget_pick"]
    empty = chosen.empty_reason
    if empty is not None:
        consent = consent_status(chosen.targets["customer_id"], customers)
        empty = why_empty(chosen.targets, consent, summary, filters)
    return replace(chosen, summary=summary, empty_reason=empty)
