"""Which MLflow run trained a model: found by the model's content, not remembered by id.

``models/train_run.json`` is a DVC output that a fresh clone must reproduce, so
it holds only what a rerun gives again (the model's checksums and registered
name); a run id is new on every run, and a registry version depends on the
store's history. `churn train` tags its run with the model's fingerprint (the
sha256 of its checksum record); `churn evaluate` and the review notebook look
the run up by that tag: the newest run in the experiment that trained these
very files (an identical retrain gives the same files, so its run is as good).
When none did (outputs pulled from a DVC remote into a clone with a fresh
MLflow store), evaluate logs to a new run with the same tag. A retrain that
gives the same files (a thread count or a docstring changed) is a new run that
DVC does not evaluate again, so a reader asks for the newest *evaluated* run.
"""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from churn.model.model_record import ModelRecord

FINGERPRINT_TAG = "churn.model_fingerprint"
# Logged by `churn evaluate` (tracking.log_assessment prefixes the test metrics "test_").
EVALUATED_METRIC = "test_roc_auc"

log = logging.getLogger(__name__)


def find_training_run(
    client: MlflowClient, experiment: str, record: ModelRecord, *, evaluated: bool = False
) -> str | None:
    """Id of the newest run in ``experiment`` tagged with ``record``'s fingerprint; None if none.

    ``evaluated``: the newest such run holding test metrics, when there is one.
    """
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    tagged = f"tags.`{FINGERPRINT_TAG}` = '{record.fingerprint}'"
    filters = [f"{tagged} and metrics.{EVALUATED_METRIC} >= 0"] if evaluated else []
    for filter_string in [*filters, tagged]:
        runs = client.search_runs(
            [found.experiment_id],
            filter_string=filter_string,
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if runs:
            return str(runs[0].info.run_id)
    return None


def find_local_training_run(
    client: MlflowClient, experiment: str, train_run: Path, *, evaluated: bool = False
) -> str | None:
    """The run that trained the local model folder, by the record in ``paths.train_run``."""
    record = ModelRecord.of_train_run(train_run)
    return find_training_run(client, experiment, record, evaluated=evaluated)


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
