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
from churn.stages.model import scoring_model
from churn.stages.snapshot import scoring_snapshot


@dataclass(frozen=True)
class Scored:
    """The score table written, how many customers were in the snapshot, and the model."""

    scores: pd.DataFrame
    snapshot_rows: int
    identity: ModelIdentity
    target: Path


def score(params: Params, model_uri: str | None, as_of: dt.date | None, target: Path) -> Scored:
    """Score the snapshot at ``as_of`` with the model at ``model_uri``; write ``target``."""
    snapshot = scoring_snapshot(params, as_of)
    loaded = scoring_model(params, model_uri)
    scores = score_snapshot(snapshot, loaded, params)
    write_parquet(scores, target)
    return Scored(scores, len(snapshot), loaded.identity, target)


def score_snapshot(snapshot: pd.DataFrame, loaded: LoadedModel, params: Params) -> pd.DataFrame:
    """The score table of ``snapshot``, naming the model that scored it."""
    return score_customers(snapshot, loaded.model, loaded.identity, params.scoring)
