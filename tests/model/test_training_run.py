"""Finding the run that trained a model by its fingerprint tag (train_run.json has no run id).

A real MLflow store (SQLite in a temporary folder), as `churn train` and
`churn evaluate` use it.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from churn.model.model_record import ModelRecord, RecordError
from churn.model.training_run import (
    FINGERPRINT_TAG,
    find_local_training_run,
    find_training_run,
    resume_training_run,
)

EXPERIMENT = "churn"


def _record(digit: str) -> ModelRecord:
    files = {p: digit * 64 for p in ("artifacts/booster.txt", "artifacts/churn_model.json")}
    return ModelRecord(files, "test")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowClient]:
    """One store for the module (each test trains its own fingerprints)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(EXPERIMENT)
    try:
        yield MlflowClient(uri)
    finally:
        mlflow.set_tracking_uri(None)


_CLOCK = itertools.count(1_700_000_000_000, 1_000)  # start times a second apart, in order


def _trained(record: ModelRecord) -> str:
    """A finished run tagged as `churn train` tags it, started after every earlier one."""
    client = MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None
    run = client.create_run(
        experiment.experiment_id,
        start_time=next(_CLOCK),
        tags={FINGERPRINT_TAG: record.fingerprint},
    )
    client.set_terminated(run.info.run_id)
    return str(run.info.run_id)


def test_the_fingerprint_names_the_files() -> None:
    assert _record("a").fingerprint == _record("a").fingerprint
    assert _record("a").fingerprint != _record("b").fingerprint
    assert len(_record("a").fingerprint) == 64


def test_the_newest_run_that_trained_these_files_is_found(store: MlflowClient) -> None:
    ours, other = _record("a"), _record("b")
    _trained(ours)
    _trained(other)
    newest = _trained(ours)
    assert find_training_run(store, EXPERIMENT, ours) == newest
    assert find_training_run(store, EXPERIMENT, _record("c")) is None
    assert find_training_run(store, "no-such-experiment", ours) is None


def test_a_reader_gets_the_newest_evaluated_run(store: MlflowClient) -> None:
    """An identical retrain is a newer run that DVC does not evaluate again."""
    record = _record("g")
    assert find_training_run(store, EXPERIMENT, record, evaluated=True) is None
    first = _trained(record)
    assert find_training_run(store, EXPERIMENT, record, evaluated=True) == first
    store.log_metric(first, "test_roc_auc", 0.7)
    retrained = _trained(record)
    assert find_training_run(store, EXPERIMENT, record) == retrained
    assert find_training_run(store, EXPERIMENT, record, evaluated=True) == first


def test_the_local_model_is_found_from_train_run_json(store: MlflowClient, tmp_path: Path) -> None:
    record = _record("d")
    run_id = _trained(record)
    train_run = tmp_path / "train_run.json"
    train_run.write_text(json.dumps({"registered_model": "x", "model_sha256": dict(record.files)}))
    assert find_local_training_run(store, EXPERIMENT, train_run) == run_id
    train_run.write_text(json.dumps({"run_id": "old"}))
    with pytest.raises(RecordError, match="no checksum record"):
        find_local_training_run(store, EXPERIMENT, train_run)


def test_evaluating_is_logged_to_the_training_run(store: MlflowClient) -> None:
    record = _record("e")
    run_id = _trained(record)
    with resume_training_run(EXPERIMENT, record) as run:
        mlflow.log_metric("test_roc_auc", 0.7)
    assert run.info.run_id == run_id
    assert store.get_run(run_id).data.metrics["test_roc_auc"] == 0.7


def test_without_a_training_run_a_new_tagged_run_and_a_warning(
    store: MlflowClient, caplog: pytest.LogCaptureFixture
) -> None:
    record = _record("f")
    with caplog.at_level(logging.WARNING), resume_training_run(EXPERIMENT, record) as run:
        mlflow.log_metric("test_roc_auc", 0.7)
    assert "no run in MLflow experiment 'churn' trained this model" in caplog.text
    assert store.get_run(run.info.run_id).data.tags[FINGERPRINT_TAG] == record.fingerprint
    assert find_training_run(store, EXPERIMENT, record) == run.info.run_id
