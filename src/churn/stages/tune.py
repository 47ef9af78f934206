"""The `churn tune` command's work: search the booster's settings, log them, write the best.

Not a DVC stage (it costs minutes and its result is a suggestion, not an output of
the pipeline): the best settings go to ``paths.tune_metrics`` with every trial's
score, to MLflow (experiment ``tune.experiment``: a parent run holding the best
params and score, a child run per trial), and back to the user as the exact
`dvc exp run -S ...` command that tries them, since DVC experiments set params in
params.yaml. ``apply_to`` rewrites the train.* keys there in place instead.

Only the training and validation cutoffs are handed to the search: the test
cutoff, where evaluate judges the model, never reaches it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from churn.atomic import write_json
from churn.config import Params
from churn.model import provenance, tracking
from churn.model.mlflow_noise import quiet_mlflow_logger
from churn.model.tuning import TUNED_KEYS, Trial, TuneResult, tune
from churn.schema import SPLIT, TRAIN_SPLIT, VALID_SPLIT
from churn.stages.params_file import set_section_values

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tuned:
    """The search's result, its MLflow parent run and the command that tries the best."""

    result: TuneResult
    run_id: str
    command: str
    applied: bool


def dvc_command(params: dict[str, Any]) -> str:
    """`dvc exp run -S train.key=value ...` for ``params`` (the searched keys, in order)."""
    return "dvc exp run " + " ".join(f"-S train.{k}={params[k]}" for k in TUNED_KEYS)


def run_tune(params: Params, snapshots: pd.DataFrame, apply_to: Path | None = None) -> Tuned:
    """Tune on ``snapshots``' train and valid cutoffs; log, write, and optionally apply."""
    train = snapshots[snapshots[SPLIT] == TRAIN_SPLIT]
    valid = snapshots[snapshots[SPLIT] == VALID_SPLIT]
    quiet_mlflow_logger()
    mlflow.set_tracking_uri(tracking.tracking_uri(params.tracking))
    mlflow.set_experiment(params.tune.experiment)
    with mlflow.start_run(run_name="tune") as parent:
        mlflow.set_tags({"stage": "tune", "git_commit": provenance.git_commit()})
        mlflow.log_params({f"tune.{k}": v for k, v in params.tune.model_dump().items()})
        result = tune(train, valid, params.train, params.tune, on_trial=_log_trial)
        mlflow.log_params({f"best.{k}": v for k, v in result.best.params.items()})
        mlflow.log_metric("n_trials_complete", sum(t.complete for t in result.trials))
        if result.best.log_loss is not None:
            mlflow.log_metric("best_log_loss", result.best.log_loss)
        if result.trials[0].log_loss is not None:
            mlflow.log_metric("current_log_loss", result.trials[0].log_loss)
        mlflow.set_tags({"folds": ",".join(result.folds), "budget_hit": str(result.budget_hit)})
    command = dvc_command(result.best.params)
    write_json(_summary(result, command, params), params.paths.tune_metrics)
    if apply_to is not None:
        set_section_values(apply_to, "train", result.best.params)
    return Tuned(result, str(parent.info.run_id), command, apply_to is not None)


def _log_trial(trial: Trial) -> None:
    """One child run per trial: its settings and out-of-time log loss (or that it was cut)."""
    with mlflow.start_run(run_name=f"trial {trial.number}", nested=True):
        mlflow.log_params(trial.params)
        mlflow.set_tag("state", "complete" if trial.complete else "cut by the time budget")
        if trial.log_loss is not None:
            mlflow.log_metric("log_loss", trial.log_loss)
            mlflow.log_metrics({f"log_loss.{k}": v for k, v in trial.fold_log_loss.items()})


def _summary(result: TuneResult, command: str, params: Params) -> dict[str, Any]:
    """``paths.tune_metrics``: the best settings and score, the command, every trial."""
    return {
        "best": {
            "trial": result.best.number,
            "params": result.best.params,
            "log_loss": result.best.log_loss,
        },
        "current": {"params": result.trials[0].params, "log_loss": result.trials[0].log_loss},
        "dvc_exp_run": command,
        "folds": result.folds,
        "budget_hit": result.budget_hit,
        "n_trials": params.tune.n_trials,
        "seed": params.tune.seed,
        "trials": [
            {
                "number": t.number,
                "params": t.params,
                "log_loss": t.log_loss,
                "fold_log_loss": t.fold_log_loss,
            }
            for t in result.trials
        ],
    }
