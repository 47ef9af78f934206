"""The `train` stage: fit out of time, log and register in MLflow, save the model folder.

Fitting is churn.model.train; this module runs it, records the run (params, metrics,
the model and its checksums) in one MLflow run, and writes the DVC outputs: the model
folder, its metrics and ``paths.train_run``, which the loader checks the folder against.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd

from churn.atomic import atomic_dir, record_json, write_json
from churn.config import Params
from churn.model import provenance, registration, tracking
from churn.model.model_record import TRAIN_RUN_KEY
from churn.model.run_context import RunContext, run_context, snapshot_as_of
from churn.model.train import TrainingResult, lightgbm_params, train_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainMetrics:
    """``paths.train_metrics``: the validation AUC and the rows and trees behind it."""

    valid_auc: float
    best_iteration: int
    n_train: int
    n_valid: int
    n_fit: int


@dataclass(frozen=True)
class Trained:
    """The fitted model, its metrics, MLflow run and registry version (None: unregistered)."""

    result: TrainingResult
    metrics: TrainMetrics
    run_id: str
    version: str | None


def train(params: Params, snapshots: pd.DataFrame) -> Trained:
    """Train on the labelled ``snapshots``; log to MLflow; save ``paths.model_dir``."""
    result = train_model(snapshots, params.train)
    example = snapshots[result.model.features].head(5)
    metrics = TrainMetrics(
        valid_auc=result.valid_auc,
        best_iteration=result.best_iteration,
        n_train=result.n_train,
        n_valid=result.n_valid,
        n_fit=result.n_fit,
    )
    context = run_context("train", snapshot_as_of(snapshots, params.snapshots.horizon_days))
    run_id, version = _log_run(result, example, metrics, context, params)
    checksums = _save_model(result, example, params.paths.model_dir)
    # The candidates' validation metrics beside the fit's, and which was served (labels).
    write_json(
        {**record_json(metrics), **result.selection.metrics(), **result.selection.labels()},
        params.paths.train_metrics,
    )
    # Only what a rerun reproduces (a DVC output): the run id and the registry version
    # live in MLflow, whose run is found by the model's fingerprint (model.training_run).
    write_json(
        {
            "registered_model": params.tracking.registered_model,
            # The loader refuses paths.model_dir unless its files still match these.
            TRAIN_RUN_KEY: checksums,
        },
        params.paths.train_run,
    )
    return Trained(result, metrics, run_id, version)


def _log_run(
    result: TrainingResult,
    example: pd.DataFrame,
    metrics: TrainMetrics,
    context: RunContext,
    params: Params,
) -> tuple[str, str | None]:
    """Fit's record in one MLflow run: tags, params, metrics, the model; (run id, version).

    The model is registered as the challenger unless the run context forbids it
    (a DVC experiment, an uncommitted tree): then the run says why, and so does the log.
    """
    refusal = registration.refusal(context)
    tracking.configure(params.tracking)
    with mlflow.start_run(run_name=context.run_name()) as run:
        mlflow.set_tags(
            {
                **context.tags(),
                "data_fingerprint": provenance.file_fingerprint(params.paths.transactions),
                "params_hash": tracking.params_hash(params),
            }
        )
        mlflow.log_params({**lightgbm_params(params.train), **params.snapshots.model_dump()})
        logged = {**record_json(metrics), **result.selection.metrics()}
        mlflow.log_metrics({k: float(v) for k, v in logged.items()})
        mlflow.set_tags(result.selection.labels())
        version = tracking.log_model(
            result.model, example, params.tracking, register=refusal is None
        )
        if refusal is not None and params.tracking.register_model:
            mlflow.set_tag(registration.REGISTRATION_TAG, f"skipped: {refusal}")
            log.info(
                "train: @challenger left as it was because %s; `churn register %s`"
                " makes this model the challenger",
                refusal,
                context.experiment.name if context.experiment else run.info.run_id,
            )
    return str(run.info.run_id), version


def _save_model(result: TrainingResult, example: pd.DataFrame, model_dir: Path) -> dict[str, str]:
    """The model folder at ``model_dir``, replaced whole; returns its files' checksums."""
    with atomic_dir(model_dir) as tmp:
        checksums = tracking.save_model(result.model, example, tmp / "model")
        for item in (tmp / "model").iterdir():
            item.rename(tmp / item.name)
        (tmp / "model").rmdir()
    return checksums
