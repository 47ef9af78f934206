"""`churn register` and `churn promote`: moving the registry's aliases."""

from __future__ import annotations

from dataclasses import dataclass

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from churn.config import Params
from churn.errors import UserError
from churn.model import registration, tracking
from churn.model.loader import load_churn_model
from churn.model.registry import PromotionDecision
from churn.model.registry import promote as run_gate
from churn.schema import LABEL, SPLIT, TEST_SPLIT
from churn.stages.inputs import labelled_snapshots


@dataclass(frozen=True)
class Registered:
    """The training run whose model is now the challenger, and its registry version."""

    run: Run
    version: str


def register(params: Params, run: str) -> Registered:
    """Make the model of training run ``run`` (an id or a `dvc exp run` name) the challenger."""
    tracking.configure(params.tracking)
    client = MlflowClient()
    found = registration.find_training_run(client, params.tracking.experiment, run)
    version = registration.register_run(client, found, params.tracking.registered_model)
    return Registered(found, str(version))


def promote(params: Params) -> PromotionDecision:
    """Judge the challenger against the champion on the test cutoff; move the alias if due."""
    snapshots = labelled_snapshots(params)
    test = snapshots[snapshots[SPLIT] == TEST_SPLIT]
    if test.empty or test[LABEL].nunique() < 2:
        raise UserError("the test cutoff needs both churners and retained customers to compare")
    tracking.configure(params.tracking)
    return run_gate(
        MlflowClient(),
        params.tracking.registered_model,
        test,
        load_churn_model,
        params.promote.auc_tolerance,
        params.promote.brier_tolerance,
    )
