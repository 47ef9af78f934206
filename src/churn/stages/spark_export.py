"""The `export` stage's input on Spark (``engine: pyspark``): the candidates, not the table.

When Spark wrote the score table and the pick ranks by churn risk, the executors
keep only the customers worth contacting (churn.scoring.spark_candidates) and the
driver reads those, with the number scored and the as-of date; the pick, reasons
and list then run as on DuckDB's path, so the list is the same byte for byte. The
targets table then holds those candidates (every selected, targeted and control
customer), not every scored customer. Ranking by a measured uplift model needs
every customer's features, so it reads the whole table as before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import pandas as pd

from churn.config import Params
from churn.features import backend
from churn.scoring.export import ExportFilters, why_empty
from churn.scoring.retention import RetentionList
from churn.scoring.spark_candidates import spark_candidates
from churn.stages.inputs import dataset_frame, input_file, is_spark_dataset
from churn.stages.spark_features import PARTITION

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PickInput:
    """The score rows the pick may choose from, and the counts of the whole table."""

    scores: pd.DataFrame
    scored: int
    as_of: pd.Timestamp | None


def spark_pick_input(params: Params) -> PickInput | None:
    """The candidates of ``paths.scores`` computed on Spark, or None where the driver
    must read the table (DuckDB's engine, a file, or ranking by uplift)."""
    path = params.paths.scores
    if params.engine != "pyspark" or params.targeting.rank_by != "risk":
        return None
    if not is_spark_dataset(input_file(path, "score")):
        return None
    spark = backend.spark_session(backend.resolve_spark_master(params.spark_master))
    frame = spark.read.parquet(str(path.resolve()))
    if PARTITION in frame.columns:
        frame = frame.drop(PARTITION)
    found = spark_candidates(frame, params.targeting)
    log.info(
        "export: %d of %d scored customers worth contacting came back from Spark",
        found.scores.num_rows,
        found.scored,
    )
    return PickInput(dataset_frame(found.scores), found.scored, found.as_of)


def over_all_scored(
    chosen: RetentionList, pushed: PickInput, filters: ExportFilters
) -> RetentionList:
    """The summary of a list built from candidates counts every scored customer, as the
    same list built from the whole table does (and says so when nobody was worth it)."""
    summary = dict(chosen.summary)
    summary["scored_customers"] = pushed.scored
    if pushed.as_of is not None:
        summary["as_of"] = str(pushed.as_of.date())
    empty = chosen.empty_reason
    if empty is not None and not summary["worth_contacting"]:
        empty = why_empty(chosen.targets, pd.Series(dtype="object"), summary, filters)
    return replace(chosen, summary=summary, empty_reason=empty)
