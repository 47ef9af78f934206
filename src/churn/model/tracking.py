"""MLflow: where runs go, how they are tagged, how the model is logged and registered.

The tracking URI comes from ``MLFLOW_TRACKING_URI`` when set (a shared server),
else from params (a local SQLite file), so the same command works on a laptop
and against the team's server. Every run carries the git commit and a data
fingerprint so a number in the UI can be traced back to code and data; its name
and the rest of its tags come from ``churn.model.run_context``.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from pydantic import BaseModel

from churn.config import TrackingConfig
from churn.model.churn_model import ChurnModel
from churn.model.mlflow_noise import known_noise_silenced, quiet_mlflow_logger
from churn.model.model_files import BOOSTER_PATH, SPEC_PATH, write_model_files
from churn.model.model_folder import normalise, served_code
from churn.model.model_record import CODE_PATH, MODEL_PATHS, ModelRecord, sha256_file, tag_key
from churn.model.provenance import tracking_uri
from churn.model.pyfunc import BOOSTER_ARTIFACT, MODEL_CODE, SPEC_ARTIFACT
from churn.model.registration import MODEL_ARTIFACT, REGISTRATION_TAG, set_challenger
from churn.model.training_run import FINGERPRINT_TAG

PLOTS_ARTIFACT = "plots"


def configure(config: TrackingConfig) -> None:
    quiet_mlflow_logger()
    mlflow.set_tracking_uri(tracking_uri(config))
    mlflow.set_experiment(config.experiment)


def params_hash(params: BaseModel) -> str:
    """sha256 of the validated params, so runs with identical settings group together."""
    canonical = json.dumps(params.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# What the served model imports at load time (the wrapper, the model files and
# LightGBM; scikit-learn only fits calibrators). Pinned to the versions running
# now, and listed explicitly because MLflow's own inference costs ~10 s per model.
_SERVING_PACKAGES = ("mlflow", "lightgbm", "pandas", "numpy")


def serving_requirements() -> list[str]:
    return [f"{name}=={metadata.version(name)}" for name in _SERVING_PACKAGES]


def serving_example(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` as a caller sends them: categorical columns as strings.

    Integer columns stay integers. They are counts that are never missing (a
    feature that can be missing is float64 already), and MLflow refuses to cast
    int64 input to a double column (it could lose precision), so declaring them
    as doubles would break every caller that passes the snapshot as read, Spark
    UDFs included. That makes MLflow's hint about integer columns a false alarm
    here (``mlflow_noise``).
    """
    categorical = rows.select_dtypes(include=["category"]).columns
    return rows.astype({c: "string" for c in categorical})


@contextmanager
def _pyfunc_arguments(model: ChurnModel, rows: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """MLflow's save/log arguments for ``model`` as code plus data files: no pickle.

    The booster and spec are written to a scratch folder that MLflow copies
    from; ``python_model`` is the path of the "models from code" file; the code
    is the part of the package the served model imports (churn.model.model_folder),
    and the scratch folder stands in as the uv project, so none is copied.
    """
    example = serving_example(rows)
    with known_noise_silenced():
        signature = infer_signature(example, model.predict(example))
    with tempfile.TemporaryDirectory(prefix="churn-model-") as scratch:
        files = write_model_files(model, Path(scratch))
        code = served_code(Path(scratch) / "code")
        yield {
            "python_model": str(MODEL_CODE),
            "artifacts": {BOOSTER_ARTIFACT: str(files.booster), SPEC_ARTIFACT: str(files.spec)},
            "signature": signature,
            "input_example": example,
            "code_paths": [str(code)],
            "pip_requirements": serving_requirements(),
            "uv_project_path": scratch,
        }


def save_model(model: ChurnModel, example: pd.DataFrame, target: Path) -> dict[str, str]:
    """Write an MLflow model directory (the format the registry serves) to ``target``.

    The same model gives the same bytes on any machine (churn.model.model_folder),
    as the folder is a DVC output. Returns the sha256 of its files
    (``models/train_run.json`` keeps them, and the loader refuses the folder
    when they no longer match).
    """
    with _pyfunc_arguments(model, example) as arguments, known_noise_silenced():
        mlflow.pyfunc.save_model(path=str(target), **arguments)
    normalise(target)
    return dict(ModelRecord.of_folder(target, MODEL_PATHS, str(target)).files)


def log_model(
    model: ChurnModel, example: pd.DataFrame, config: TrackingConfig, *, register: bool = True
) -> str | None:
    """Log the model to the active run, record its checksums there, then register it as
    the challenger when ``register`` and ``tracking.register_model`` both say so.

    The checksums go to the run as tag ``churn.model_sha256.<model id>`` before
    the model is registered, so no registered version lacks its record; their
    fingerprint as tag ``churn.model_fingerprint`` (churn.model.training_run).
    Returns the registered version (None when not registered).
    """
    with _pyfunc_arguments(model, example) as arguments, known_noise_silenced():
        record = ModelRecord(
            {
                BOOSTER_PATH: sha256_file(Path(arguments["artifacts"][BOOSTER_ARTIFACT])),
                SPEC_PATH: sha256_file(Path(arguments["artifacts"][SPEC_ARTIFACT])),
                CODE_PATH: sha256_file(MODEL_CODE),
            },
            "training",
        )
        info = mlflow.pyfunc.log_model(name=MODEL_ARTIFACT, **arguments)
    if info.run_id is None:
        raise RuntimeError("log_model needs an active MLflow run to record the checksums in")
    client = MlflowClient()
    client.set_tag(info.run_id, tag_key(info.model_id), record.to_json())
    client.set_tag(info.run_id, FINGERPRINT_TAG, record.fingerprint)
    if not (register and config.register_model):
        return None
    version = set_challenger(client, config.registered_model, info.model_uri, info.run_id)
    client.set_tag(info.run_id, REGISTRATION_TAG, f"challenger v{version}")
    return version


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
    the run's ``plots/`` artifacts, so DVC and MLflow show the same files. Beside
    them go PNG pictures of ROC, PR, reliability and gains for the MLflow UI;
    those stay out of ``folder`` (DVC draws its own from the CSVs).
    """
    from churn.atomic import write_csv
    from churn.model.plots import render_curves

    log_json_metrics({k: v for k, v in metrics.items() if k != "cutoff"}, prefix="test_")
    mlflow.set_tag("test_cutoff", str(metrics.get("cutoff")))
    for name, frame in curves.items():
        write_csv(frame, folder / name)
        mlflow.log_artifact(str(folder / name), artifact_path=PLOTS_ARTIFACT)
    with tempfile.TemporaryDirectory(prefix="churn-plots-") as scratch:
        render_curves(curves, metrics, Path(scratch))
        mlflow.log_artifacts(scratch, artifact_path=PLOTS_ARTIFACT)


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
