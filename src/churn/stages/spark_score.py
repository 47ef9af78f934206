"""The `score` stage on Spark (``engine: pyspark``): the executors score, Spark writes.

The features stage's scoring snapshot (a Spark-written folder) is read by Spark,
scored by ``mapInPandas`` (:mod:`churn.scoring.spark_score`) and written as a
Parquet folder at the score table's path, swapped in whole. The table is read
back for the stages that follow on the driver (export's budgeted pick, the
report); see README "Spark end to end" for what that costs at scale.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds

from churn.atomic import atomic_dir
from churn.config import Params
from churn.data.spark_parts import fix_part_names
from churn.errors import UserError
from churn.features import backend
from churn.model.loader import LoadedModel
from churn.scoring.spark_score import spark_scores
from churn.stages.inputs import read_dataset
from churn.stages.spark_features import PARTITION

# The words of score_customers' refusal, kept the same so both engines say it alike.
NO_ACTIVE_CUSTOMERS = "no active customers to score at the as-of date"


def spark_score_folder(
    params: Params, snapshot: Path, loaded: LoadedModel, target: Path
) -> tuple[pd.DataFrame, int]:
    """Score the snapshot folder into ``target`` on Spark; (the scores, snapshot rows)."""
    rows = write_spark_scores(params, snapshot, loaded, target)
    return read_dataset(target), rows


def write_spark_scores(params: Params, snapshot: Path, loaded: LoadedModel, target: Path) -> int:
    """Score the snapshot at ``snapshot`` (a Spark folder or a file) into the Parquet folder
    ``target`` on the executors, swapped in whole; the snapshot's rows. Nothing comes back
    to the driver (the nightly job reads aggregates and the pick from the folder).

    A snapshot without a row (no customer active at its date) is refused with the
    error DuckDB's scoring gives (:func:`churn.scoring.score.score_customers`), so the
    stage and the nightly job stop there on either engine, before anything is written.
    """
    rows = ds.dataset(snapshot, format="parquet", partitioning=None).count_rows()
    if not rows:  # an empty snapshot folder holds one column-less file: nothing to read
        raise UserError(NO_ACTIVE_CUSTOMERS)
    spark = backend.spark_session(backend.resolve_spark_master(params.spark_master))
    frame = spark.read.parquet(str(snapshot.resolve()))
    if PARTITION in frame.columns:
        frame = frame.drop(PARTITION)
    scores = spark_scores(frame, loaded.model, loaded.identity, params.scoring)
    with atomic_dir(target) as tmp:
        shutil.rmtree(tmp)
        scores.write.parquet(str(tmp))
        fix_part_names(tmp)  # a replay of the same date writes the same folder
    return rows
