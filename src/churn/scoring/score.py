"""Batch scoring: every active customer at the as-of date gets a churn probability.

The model is loaded through MLflow whether it is a local model directory or a
registry URI (``models:/churn-classifier@champion``), so the nightly job and a
data scientist's notebook run the very same object.
"""

from __future__ import annotations

import warnings

import mlflow.pyfunc
import pandas as pd

from churn.errors import UserError
from churn.model.churn_model import ChurnModel

SCORE_COLUMNS = [
    "customer_id",
    "as_of",
    "churn_probability",
    "risk_rank",
    "recency_days",
    "n_orders",
    "revenue",
    "model_uri",
]


def load_churn_model(uri: str) -> ChurnModel:
    """Load a logged ChurnModel; an unknown path or registry name is the user's to fix."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = mlflow.pyfunc.load_model(uri)
    except Exception as exc:  # MLflow raises many types for "not found"
        raise UserError(f"cannot load model {uri!r}: {str(exc).splitlines()[0]}") from exc
    model = loaded.unwrap_python_model()
    if not isinstance(model, ChurnModel):
        raise UserError(f"model {uri!r} is not a churn model (got {type(model).__name__})")
    return model


def score_customers(snapshot: pd.DataFrame, model: ChurnModel, model_uri: str) -> pd.DataFrame:
    """Probabilities for one cutoff's snapshot, riskiest first (rank 1 = most at risk)."""
    if snapshot.empty:
        raise UserError("no active customers to score at the as-of date")
    scores = snapshot[["customer_id", "cutoff", "recency_days", "n_orders", "revenue"]].copy()
    scores = scores.rename(columns={"cutoff": "as_of"})
    scores["churn_probability"] = model.churn_probability(snapshot)
    scores = scores.sort_values(
        ["churn_probability", "customer_id"], ascending=[False, True], kind="stable"
    )
    scores["risk_rank"] = range(1, len(scores) + 1)
    scores["model_uri"] = model_uri
    return scores[SCORE_COLUMNS].reset_index(drop=True)
