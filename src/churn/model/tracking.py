"""MLflow: where runs go, how they are tagged, how the model is logged and registered.

The tracking URI comes from ``MLFLOW_TRACKING_URI`` when set (a shared server),
else from params (a local SQLite file), so the same command works on a laptop
and against the team's server. Every run carries the git commit and a data
fingerprint so a number in the UI can be traced back to code and data.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from pydantic import BaseModel

import churn
from churn.config import TrackingConfig
from churn.model.churn_model import ChurnModel


def tracking_uri(config: TrackingConfig) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or config.uri


def configure(config: TrackingConfig) -> None:
    mlflow.set_tracking_uri(tracking_uri(config))
    mlflow.set_experiment(config.experiment)


def git_commit(cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def file_fingerprint(path: Path) -> str:
    """sha256 of a file's bytes, read in chunks so a large Parquet file costs no memory."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def params_hash(params: BaseModel) -> str:
    """sha256 of the validated params, so runs with identical settings group together."""
    canonical = json.dumps(params.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _package_dir() -> str:
    return str(Path(churn.__file__).parent)


# What the pyfunc needs at load time. Pinned to the versions running now, and
# listed explicitly because MLflow's own inference costs ~10 s per model logged.
_SERVING_PACKAGES = (
    "mlflow",
    "lightgbm",
    "pandas",
    "numpy",
    "scikit-learn",
    "scipy",
    "cloudpickle",
)


def serving_requirements() -> list[str]:
    return [f"{name}=={metadata.version(name)}" for name in _SERVING_PACKAGES]


def save_model(model: ChurnModel, example: pd.DataFrame, target: Path) -> None:
    """Write an MLflow model directory (the format the registry serves) to ``target``."""
    signature = infer_signature(example, model.predict(None, example))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.pyfunc.save_model(
            path=str(target),
            python_model=model,
            signature=signature,
            input_example=example,
            code_paths=[_package_dir()],
            pip_requirements=serving_requirements(),
        )


def log_model(model: ChurnModel, example: pd.DataFrame, config: TrackingConfig) -> str | None:
    """Log the model to the active run and register it; returns the registered version."""
    signature = infer_signature(example, model.predict(None, example))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=model,
            signature=signature,
            input_example=example,
            code_paths=[_package_dir()],
            pip_requirements=serving_requirements(),
            registered_model_name=config.registered_model if config.register_model else None,
        )
    version = getattr(info, "registered_model_version", None)
    if version is not None:
        MlflowClient().set_registered_model_alias(config.registered_model, "challenger", version)
    return None if version is None else str(version)


def log_json_metrics(metrics: dict[str, Any], prefix: str = "") -> None:
    """Log a nested metrics dict as flat MLflow metrics (``baselines.recency.roc_auc``)."""
    flat: dict[str, float] = {}

    def walk(node: dict[str, Any], path: str) -> None:
        for key, value in node.items():
            name = f"{path}{key}"
            if isinstance(value, dict):
                walk(value, f"{name}.")
            elif isinstance(value, int | float):
                flat[name] = float(value)

    walk(metrics, prefix)
    mlflow.log_metrics(flat)


def log_assessment(metrics: dict[str, Any], curves: dict[str, pd.DataFrame], folder: Path) -> None:
    """Log test metrics (prefixed ``test_``) and the curve tables to the active run.

    The curves are written to ``folder`` first (the DVC plots), then uploaded as
    the run's ``plots/`` artifacts, so DVC and MLflow show the same files.
    """
    from churn.atomic import write_csv

    log_json_metrics({k: v for k, v in metrics.items() if k != "cutoff"}, prefix="test_")
    mlflow.set_tag("test_cutoff", str(metrics.get("cutoff")))
    for name, frame in curves.items():
        write_csv(frame, folder / name)
        mlflow.log_artifact(str(folder / name), artifact_path="plots")


def comparison_table(run_metrics: dict[str, float]) -> pd.DataFrame:
    """Model and baselines side by side from a run's flat ``test_*`` metrics."""
    rows: dict[str, dict[str, float]] = {}
    for key, value in run_metrics.items():
        if not key.startswith("test_"):
            continue
        parts = key[len("test_") :].split(".")
        if parts[0] == "baselines" and len(parts) == 3:
            rows.setdefault(parts[1], {})[parts[2]] = value
        elif len(parts) == 1:
            rows.setdefault("model", {})[parts[0]] = value
    columns = ["roc_auc", "pr_auc", "brier", "log_loss", "ece", "top_decile_lift"]
    table = pd.DataFrame.from_dict(rows, orient="index")
    return table.reindex(columns=[c for c in columns if c in table.columns]).sort_values(
        "roc_auc", ascending=False
    )
