"""churn.model.loader: checksums first, then data; never a pickle, never the folder's code.

An audit hook (``sys.addaudithook``) watches every load: Python raises
``pickle.find_class`` whenever anything is unpickled, and ``compile``/``exec``
whenever code runs from a file, so "never unpickles, never runs the folder's
code" is observed, not assumed.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from tiny_model import scoring_rows, tiny_model

from churn.config import TrackingConfig
from churn.errors import UserError
from churn.model import tracking
from churn.model.churn_model import ChurnModel
from churn.model.loader import ModelLoadError, load_churn_model, load_model
from churn.model.model_record import TAG_PREFIX
from pickled_models import log_pickled_model, pickle_bytes, save_pickled_model, unpickle_marker

NAME = "churn-loader-test"
READABLE = {"MLmodel", "artifacts/booster.txt", "artifacts/churn_model.json", "served_model.py"}


class _Watch:
    """What one load did: unpickled globals, code run and files opened under ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = str(folder.resolve())
        self.unpickled: list[str] = []
        self.ran: list[str] = []
        self.opened: set[str] = set()

    def inside(self, path: Any) -> str | None:
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str):
            return None
        full = os.path.realpath(path)
        if full.startswith(self.folder + os.sep):
            return os.path.relpath(full, self.folder)
        return None


_watch: _Watch | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    watch = _watch
    if watch is None:
        return
    try:
        if event == "pickle.find_class":
            watch.unpickled.append(f"{args[0]}.{args[1]}")
        elif event == "compile" and watch.inside(args[1]):
            watch.ran.append(str(args[1]))
        elif event == "exec" and watch.inside(getattr(args[0], "co_filename", None)):
            watch.ran.append(args[0].co_filename)
        elif event == "open" and (relative := watch.inside(args[0])):
            watch.opened.add(relative)
    except Exception:  # an audit hook must never break the code it watches
        pass


sys.addaudithook(_audit)


@contextmanager
def watching(folder: Path) -> Iterator[_Watch]:
    global _watch
    _watch = _Watch(folder)
    try:
        yield _watch
    finally:
        _watch = None


def _same(loaded: ChurnModel, model: ChurnModel) -> None:
    rows = scoring_rows()
    assert np.array_equal(loaded.churn_probability(rows), model.churn_probability(rows))


def _save(model: ChurnModel, folder: Path) -> Path:
    """A model folder as `churn train` writes it, and its train_run.json beside it."""
    checksums = tracking.save_model(model, scoring_rows(3)[model.features], folder)
    record = folder.parent / "train_run.json"
    record.write_text(json.dumps({"run_id": "local", "model_sha256": checksums}))
    return record


def _refused(uri: str | Path, train_run: Path | None, message: str) -> str:
    with pytest.raises(ModelLoadError) as caught:
        load_churn_model(str(uri), train_run)
    text = str(caught.value)
    assert text.startswith(f"cannot load model {str(uri)!r}: ") and "\n" not in text
    assert message in text, text
    return text


def test_local_folder_loads_after_its_checksums_match(tmp_path: Path) -> None:
    model = tiny_model("isotonic")
    folder = tmp_path / "model"
    train_run = _save(model, folder)
    with watching(folder) as watch:
        loaded = load_churn_model(str(folder), train_run)
    _same(loaded, model)
    assert watch.unpickled == [] and watch.ran == []
    assert watch.opened <= READABLE, watch.opened
    assert load_churn_model(folder.resolve().as_uri(), train_run).features == model.features


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("no train run", "its training run recorded no checksums for it"),
        ("train run without checksums", "its training run recorded no checksums for it"),
        ("train run not json", "train_run.json is not readable JSON"),
        ("booster edited", "artifacts/booster.txt does not match the sha256 recorded by"),
        ("spec deleted", "artifacts/churn_model.json is missing (recorded by"),
        ("record escapes the folder", "names a bad path '../booster.txt'"),
        ("no folder", "no such model folder"),
    ],
)
def test_local_folder_is_refused_in_one_line(tmp_path: Path, damage: str, message: str) -> None:
    folder = tmp_path / "model"
    train_run: Path | None = _save(tiny_model(), folder)
    assert train_run is not None
    record = json.loads(train_run.read_text())
    if damage == "no train run":
        train_run = None
    elif damage == "train run without checksums":
        train_run.write_text(json.dumps({"run_id": "local"}))
    elif damage == "train run not json":
        train_run.write_text("{")
    elif damage == "booster edited":
        booster = folder / "artifacts/booster.txt"
        booster.write_text(booster.read_text().replace("shrinkage=", "shrinkage=1", 1))
    elif damage == "spec deleted":
        (folder / "artifacts/churn_model.json").unlink()
    elif damage == "record escapes the folder":
        record["model_sha256"]["../booster.txt"] = "0" * 64
        train_run.write_text(json.dumps(record))
    elif damage == "no folder":
        shutil.rmtree(folder)
    _refused(folder, train_run, message)


@pytest.mark.parametrize("planted", ["artifacts/churn_model.json", "served_model.py"])
def test_a_file_swapped_for_a_pickle_or_code_is_refused_unread(
    tmp_path: Path, planted: str
) -> None:
    folder, marker = tmp_path / "model", tmp_path / "marker"
    train_run = _save(tiny_model(), folder)
    if planted.endswith(".py"):
        (folder / planted).write_text(f"open({str(marker)!r}, 'w').close()\n")
    else:
        (folder / planted).write_bytes(pickle_bytes(marker))
    with watching(folder) as watch:
        _refused(folder, train_run, f"{planted} does not match the sha256")
    assert not marker.exists() and watch.unpickled == [] and watch.ran == []


def test_a_pickled_model_folder_is_refused_without_unpickling(tmp_path: Path) -> None:
    folder, marker = tmp_path / "model", tmp_path / "marker"
    save_pickled_model(folder, marker)
    train_run = _save(tiny_model(), tmp_path / "genuine")  # a record exists, but not for this
    with watching(folder) as watch:
        _refused(folder, train_run, "old pickled format (python_model.pkl)")
        _refused(folder, None, "retrain it with `churn train`")
    assert not marker.exists()
    assert watch.unpickled == [] and watch.ran == [] and "python_model.pkl" not in watch.opened
    unpickle_marker(folder / "python_model.pkl")  # the bait is live: the old loader ran it
    assert marker.exists()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real SQLite MLflow store with its artifacts beside it (created once: ~3 s)."""
    root = tmp_path_factory.mktemp("mlflow")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
        mlflow.create_experiment("loader", artifact_location=str(root / "artifacts"))
        yield root
    mlflow.set_tracking_uri(None)


@pytest.fixture
def registry(store: Path, request: pytest.FixtureRequest) -> TrackingConfig:
    """The store, with a registered model name of this test's own."""
    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    mlflow.set_experiment("loader")
    name = f"{NAME}-{request.node.name.split('_', 2)[-1][:40]}"
    return TrackingConfig(uri=f"sqlite:///{store / 'mlflow.db'}", registered_model=name)


def _log(model: ChurnModel, config: TrackingConfig) -> str:
    with mlflow.start_run():
        version = tracking.log_model(model, scoring_rows(3)[model.features], config)
    assert version is not None
    return version


def test_registered_model_loads_by_alias_version_and_download(
    registry: TrackingConfig, store: Path, tmp_path: Path
) -> None:
    model, name = tiny_model("platt"), registry.registered_model
    version = _log(model, registry)
    with watching(store / "artifacts") as watch:
        _same(load_churn_model(f"models:/{name}@challenger"), model)
        _same(load_churn_model(f"models:/{name}/{version}"), model)
    assert watch.unpickled == [] and watch.ran == []
    assert {Path(p).name for p in watch.opened} <= {Path(p).name for p in READABLE}
    # A folder downloaded from the registry is checked against the run that logged it,
    # even beside a train_run.json of another model.
    downloaded = Path(
        mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=str(tmp_path))
    )
    other = _save(tiny_model("none", seed=1), tmp_path / "other")
    _same(load_churn_model(str(downloaded), other), model)


def test_load_model_names_the_model_and_pins_an_alias_to_its_version(
    registry: TrackingConfig, tmp_path: Path
) -> None:
    """Score, export and the nightly job learn which model scored from ``load_model``."""
    model, name = tiny_model("platt"), registry.registered_model
    version = _log(model, registry)
    loaded = load_model(f"models:/{name}@challenger", None)
    _same(loaded.model, model)
    assert (loaded.identity.name, loaded.identity.version) == (name, version)
    assert loaded.identity.pinned_uri == f"models:/{name}/{version}"
    folder = tmp_path / "model"
    train_run = _save(model, folder)
    train_run.write_text(
        json.dumps({**json.loads(train_run.read_text()), "registered_model": name})
    )
    local = load_model(str(folder), train_run)
    assert (local.identity.uri, local.identity.name, local.identity.version) == (
        str(folder),
        name,
        "",
    )
    with pytest.raises(UserError, match=f"cannot resolve 'models:/{name}@nope'"):
        load_model(f"models:/{name}@nope", None)


def test_registered_model_without_its_record_or_with_edited_files_is_refused(
    registry: TrackingConfig,
) -> None:
    name = registry.registered_model
    version = _log(tiny_model(), registry)
    client = MlflowClient()
    found = client.get_model_version(name, version)
    stored = Path(client.get_model_version_download_uri(name, version))
    booster = stored / "artifacts/booster.txt"
    original = booster.read_bytes()
    booster.write_bytes(original.replace(b"shrinkage=", b"shrinkage=9", 1))
    _refused(f"models:/{name}/{version}", None, "does not match the sha256 recorded by MLflow run")
    booster.write_bytes(original)
    load_churn_model(f"models:/{name}/{version}")
    (tag,) = [k for k in client.get_run(found.run_id).data.tags if k.startswith(TAG_PREFIX)]
    client.delete_tag(found.run_id, tag)
    _refused(f"models:/{name}@challenger", None, "its training run recorded no checksums")
    _refused(f"models:/{name}@nobody", None, "nobody")


def test_old_pickled_registered_model_is_refused_with_a_retrain_line(
    registry: TrackingConfig, tmp_path: Path
) -> None:
    marker, name = tmp_path / "marker", registry.registered_model
    with mlflow.start_run():
        version = log_pickled_model(marker, name)
    text = _refused(f"models:/{name}/{version}", None, "old pickled format (python_model.pkl)")
    assert "retrain it with `churn train` (and `churn promote` for the registry)" in text
    assert not marker.exists()
