"""Which MLflow run trained a model: found by the model's content, not remembered by id.

``models/train_run.json`` is a DVC output that a fresh clone must reproduce, so
it holds only what a rerun gives again (the model's checksums and registered
name); a run id is new on every run, and a registry version depends on the
store's history. `churn train` tags its run with the model's fingerprint (the
sha256 of its checksum record); `churn evaluate` and the review notebook look
the run up by that tag: the newest run in the experiment that trained these
very files (an identical retrain gives the same files, so its run is as good).
When none did (outputs pulled from a DVC remote into a clone with a fresh
MLflow store), evaluate logs to a new run with the same tag.
"""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from churn.model.model_record import ModelRecord

FINGERPRINT_TAG = "churn.model_fingerprint"

log = logging.getLogger(__name__)


def find_training_run(client: MlflowClient, experiment: str, record: ModelRecord) -> str | None:
    """Id of the newest run in ``experiment`` tagged with ``record``'s fingerprint; None if none."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    runs = client.search_runs(
        [found.experiment_id],
        filter_string=f"tags.`{FINGERPRINT_TAG}` = '{record.fingerprint}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return str(runs[0].info.run_id) if runs else None


def find_local_training_run(client: MlflowClient, experiment: str, train_run: Path) -> str | None:
    """The run that trained the local model folder, by the record in ``paths.train_run``."""
    return find_training_run(client, experiment, ModelRecord.of_train_run(train_run))


def resume_training_run(experiment: str, record: ModelRecord) -> mlflow.ActiveRun:
    """The training run of ``record``'s model, reopened as the active run (a ``with`` block).

    Without one, a new run tagged with the fingerprint, and a warning saying so.
    ``experiment`` must be the active experiment (``tracking.configure``).
    """
    run_id = find_training_run(MlflowClient(), experiment, record)
    if run_id is not None:
        return mlflow.start_run(run_id=run_id)
    log.warning(
        "no run in MLflow experiment %r trained this model (tag %s=%s); logging to a new run",
        experiment,
        FINGERPRINT_TAG,
        record.fingerprint[:12],
    )
    return mlflow.start_run(tags={FINGERPRINT_TAG: record.fingerprint})
