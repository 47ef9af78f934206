"""Log a read-out to MLflow (experiment ``outcomes.experiment``, default churn-outcomes).

Metric names are the dotted keys of metrics/outcomes.json (``by_action.Personal
call.save_rate``); characters MLflow refuses in a name (an apostrophe in the
segment "Can't lose them") become ``_``.
"""

from __future__ import annotations

import re
from typing import Any

import mlflow

from churn.config import TrackingConfig
from churn.model.mlflow_noise import quiet_mlflow_logger
from churn.model.provenance import git_commit, tracking_uri

_UNSAFE = re.compile(r"[^0-9A-Za-z_\-. /]")


def flat_metrics(node: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Every number (bools excluded) of a nested dict, under its dotted, MLflow-safe key."""
    flat: dict[str, float] = {}
    for key, value in node.items():
        name = _UNSAFE.sub("_", f"{prefix}{key}")
        if isinstance(value, dict):
            flat.update(flat_metrics(value, f"{name}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


def log_readout(
    metrics: dict[str, Any], save_rates: dict[str, Any], tracking: TrackingConfig, experiment: str
) -> str:
    """One MLflow run with the read-out's numbers and both JSON files; returns its id."""
    quiet_mlflow_logger()
    mlflow.set_tracking_uri(tracking_uri(tracking))
    mlflow.set_experiment(experiment)
    campaigns = metrics.get("campaigns", [])
    with mlflow.start_run(run_name=f"outcomes {campaigns[-1] if campaigns else ''}") as run:
        mlflow.set_tags(
            {
                "stage": "outcomes",
                "campaigns": ",".join(campaigns),
                "data_end": str(metrics.get("data_end")),
                "git_commit": git_commit(),
            }
        )
        mlflow.log_metrics(flat_metrics(metrics))
        mlflow.log_dict(metrics, "outcomes.json")
        mlflow.log_dict(save_rates, "save_rates.json")
    return str(run.info.run_id)
