"""The model a stage scores with, loaded through churn.model.loader from params' store."""

from __future__ import annotations

from churn.config import Params
from churn.model.loader import LoadedModel, load_model


def scoring_model(params: Params, uri: str | None) -> LoadedModel:
    """The model behind ``uri`` (default ``paths.model_dir``) and which one it is; a
    registry URI is looked up in the tracking store params name."""
    import mlflow

    from churn.model import tracking

    mlflow.set_tracking_uri(tracking.tracking_uri(params.tracking))
    return load_model(uri or str(params.paths.model_dir), params.paths.train_run)
