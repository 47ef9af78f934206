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
uplift model adds the uplift column on the executors when the caller passes the Spark
snapshot (the nightly job); `churn export` still reads the whole table for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from churn.config import Params, TargetingConfig
from churn.features import backend
from churn.outcomes.in_effect import rates_in_effect
from churn.outcomes.ranking import uplift_in_effect
from churn.outcomes.spark_uplift import with_spark_uplift
from churn.scoring.export import CONSENT_OK, ExportFilters, consent_status, why_empty
from churn.scoring.retention import RetentionList
from churn.scoring.spark_candidates import Candidates, spark_candidates, spark_rows_of
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


def spark_pick_input(params: Params, customers: pd.DataFrame | None) -> PickInput | None:
    """The targeted rows of ``paths.scores`` picked from Spark's candidates, or None where
    the driver must read the table (DuckDB's engine, a file, or ranking by uplift)."""
    path = params.paths.scores
    if params.engine != "pyspark" or params.targeting.rank_by != "risk":
        return None
    if not is_spark_dataset(input_file(path, "score")):
        return None
    return pick_input_of(spark_table(params, path), params, customers)


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
