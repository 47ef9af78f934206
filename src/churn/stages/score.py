"""The `score` stage: every active customer at the as-of date, riskiest first."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from churn.atomic import write_parquet
from churn.config import Params
from churn.model.identity import ModelIdentity
from churn.model.loader import LoadedModel
from churn.scoring.score import score_customers
from churn.stages.inputs import is_spark_dataset
from churn.stages.model import scoring_model
from churn.stages.snapshot import scoring_snapshot


@dataclass(frozen=True)
class ScoreInputs:
    """The snapshot to score and the model to score it with."""

    snapshot: pd.DataFrame
    loaded: LoadedModel
    # engine: pyspark: the snapshot is this Spark-written folder, never read on the driver
    folder: Path | None = None


@dataclass(frozen=True)
class Scored:
    """The score table written, how many customers were in the snapshot, and the model."""

    scores: pd.DataFrame
    snapshot_rows: int
    identity: ModelIdentity
    target: Path


def score_inputs(params: Params, model_uri: str | None, as_of: dt.date | None) -> ScoreInputs:
    """The snapshot at ``as_of`` (see churn.stages.snapshot) and the model at ``model_uri``
    (default ``paths.model_dir``)."""
    folder = params.paths.score_features
    if params.engine == "pyspark" and as_of is None and is_spark_dataset(folder):
        return ScoreInputs(pd.DataFrame(), scoring_model(params, model_uri), folder)
    return ScoreInputs(scoring_snapshot(params, as_of), scoring_model(params, model_uri))


def score(params: Params, inputs: ScoreInputs, target: Path) -> Scored:
    """Score the snapshot and write the score table to ``target`` (on the executors when
    the snapshot is a Spark folder: churn.stages.spark_score)."""
    if inputs.folder is not None:
        from churn.stages.spark_score import spark_score_folder

        scores, rows = spark_score_folder(params, inputs.folder, inputs.loaded, target)
        return Scored(scores, rows, inputs.loaded.identity, target)
    scores = score_snapshot(inputs.snapshot, inputs.loaded, params)
    write_parquet(scores, target)
    return Scored(scores, len(inputs.snapshot), inputs.loaded.identity, target)


def score_snapshot(snapshot: pd.DataFrame, loaded: LoadedModel, params: Params) -> pd.DataFrame:
    """The score table of ``snapshot``, naming the model that scored it."""
    return score_customers(snapshot, loaded.model, loaded.identity, params.scoring)
