"""Which training runs may move the ``challenger`` alias, and registering one on request.

``churn promote`` turns the challenger into the production champion, so the
challenger must be a model someone can rebuild: one trained from a commit, not
from a try-out. A ``dvc exp run`` (its params changed by ``-S``, its result
perhaps never applied), a working tree with uncommitted changes and a directory
outside git all log their model to their run and leave the alias alone. To make
such a model the challenger anyway, say so: ``churn register RUN``, where RUN is
the run id or the ``dvc exp run`` experiment's name.
"""

from __future__ import annotations

import re

import mlflow
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from churn.errors import UserError
from churn.model.registry import CHALLENGER
from churn.model.run_context import RunContext, describe_changes

MODEL_ARTIFACT = "model"
REGISTRATION_TAG = "registration"
_RUN_ID = re.compile(r"[0-9a-f]{32}")


def refusal(context: RunContext) -> str | None:
    """Why a run in ``context`` may not move the challenger alias (None: it may)."""
    if context.experiment is not None:
        return f"it ran as the DVC experiment {context.experiment.name!r} (dvc exp run)"
    if context.git.commit is None:
        return "it ran outside a git checkout, so no commit names its code"
    if context.git.dirty:
        return f"the working tree had uncommitted changes ({describe_changes(context.git.changed)})"
    return None


def set_challenger(client: MlflowClient, name: str, model_uri: str, run_id: str) -> str:
    """Register ``model_uri`` (once per run: a second call reuses the run's version) and
    point ``challenger`` at that version. Registers through the active tracking URI."""
    existing = [
        int(version.version)
        for version in client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
        if version.run_id == run_id
    ]
    if existing:
        version = str(max(existing))
    else:
        version = str(mlflow.register_model(model_uri, name).version)
    client.set_registered_model_alias(name, CHALLENGER, version)
    return version


def find_training_run(client: MlflowClient, experiment: str, ref: str) -> Run:
    """The training run ``ref`` names: a run id, else the latest ``train`` run of that
    ``dvc exp run`` experiment name (tag ``dvc_exp_name``)."""
    if _RUN_ID.fullmatch(ref):
        try:
            return client.get_run(ref)
        except MlflowException:
            raise UserError(
                f"no MLflow run {ref} in {client.tracking_uri} (check MLFLOW_TRACKING_URI"
                " or tracking.uri)"
            ) from None
    found = client.get_experiment_by_name(experiment)
    runs = (
        client.search_runs(
            [found.experiment_id],
            filter_string=f"tags.dvc_exp_name = '{ref}' and tags.stage = 'train'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if found is not None and "'" not in ref
        else []
    )
    if not runs:
        raise UserError(
            f"{ref!r} is neither a run id nor a `dvc exp run` experiment with a training run"
            f" in MLflow experiment {experiment!r} (`dvc exp show` lists experiment names;"
            " the MLflow UI lists run ids)"
        )
    return runs[0]


def register_run(client: MlflowClient, run: Run, name: str) -> str:
    """Register the model ``run`` logged and make it the challenger; returns the version."""
    run_id = run.info.run_id
    if run.data.tags.get("stage", "train") != "train":
        raise UserError(f"run {run_id} is a {run.data.tags['stage']} run, not a training run")
    logged = [output.model_id for output in (run.outputs.model_outputs if run.outputs else [])]
    if not logged:
        raise UserError(f"run {run_id} logged no model (pick a run of `churn train`)")
    version = set_challenger(client, name, f"models:/{logged[-1]}", run_id)
    client.set_tag(run_id, REGISTRATION_TAG, f"{CHALLENGER} v{version} (churn register)")
    return version
