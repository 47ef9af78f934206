"""Issue 13 item 2: a crafted model folder or registry version must never run code.

The bait is a real MLflow model folder pickled the old way, whose unpickling
runs ``touch MARKER`` (tests/pickled_models.py); the old loader ran it. Every
case goes through the real CLI and asserts the exit code, the one
``churn: error:`` line, that the marker was never created, and that the
previously published list (nightly tree, or the score table) is byte-identical.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from churn.model import tracking
from churn.model.loader import load_churn_model
from nightly_shop import FIRST, NAME, Shop, refused, run_cli, run_nightly, tree, write_params
from pickled_models import log_pickled_model, pickle_bytes, save_pickled_model, unpickle_marker

NEXT = FIRST + dt.timedelta(days=1)
OLD_FORMAT = (
    "it is in the old pickled format (python_model.pkl), which churn no longer loads because"
    " unpickling can run any code; retrain it with `churn train` (and `churn promote` for the"
    " registry)"
)


def _params(shop: Shop, folder: Path, **nightly: Any) -> Path:
    """Nightly params on the shop's raw export, plus local model paths inside ``folder``."""
    path = write_params(shop, folder, shop.raw_csv, **nightly)
    params = yaml.safe_load(path.read_text())
    params["paths"].update(
        train_run=str(folder / "train_run.json"),
        model_dir=str(folder / "model"),
        scores=str(folder / "scores.parquet"),
    )
    path.write_text(yaml.safe_dump(params))
    return path


def _genuine_model(shop: Shop, folder: Path) -> Path:
    """The champion saved as `churn train` saves a local model, with its train_run.json."""
    mlflow.set_tracking_uri(shop.tracking_uri)
    try:
        model = load_churn_model(f"models:/{NAME}@champion")
    finally:
        mlflow.set_tracking_uri(None)
    example = pd.read_parquet(shop.root / "score.parquet")[model.features].head(3)
    checksums = tracking.save_model(model, example, folder / "model")
    (folder / "train_run.json").write_text(
        json.dumps({"registered_model": NAME, "version": "", "model_sha256": checksums})
    )
    return folder / "model"


def _score_refused(
    params: Path, model: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    capsys.readouterr()
    code = run_cli("--params", str(params), "score", "--model", str(model))
    lines = [line for line in capsys.readouterr().err.splitlines() if "churn: error:" in line]
    assert len(lines) == 1, lines
    return code, lines[0]


def test_pickled_model_folder_is_refused_by_score_and_nightly(
    shop: Shop, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params, marker = _params(shop, workspace), workspace / "marker"
    _genuine_model(shop, workspace)
    assert run_cli("--params", str(params), "score") == 0  # the previous score table
    scores = (workspace / "scores.parquet").read_bytes()
    before = tree(workspace / "nightly")
    bait = save_pickled_model(workspace / "bait", marker)

    code, line = _score_refused(params, bait, capsys)
    assert code == 2
    assert line == f"churn: error: cannot load model {str(bait)!r}: {OLD_FORMAT}"
    code, line = refused(params, NEXT, capsys, "--model", str(bait))
    assert code == 14
    assert line == f"churn: error: cannot load model {str(bait)!r}: {OLD_FORMAT}"

    assert not marker.exists()
    assert (workspace / "scores.parquet").read_bytes() == scores
    assert tree(workspace / "nightly") == before
    unpickle_marker(bait / "python_model.pkl")  # the bait is live: unpickling runs it
    assert marker.exists()


@pytest.mark.parametrize(
    ("planted", "how"),
    [
        ("artifacts/booster.txt", "edited"),
        ("artifacts/churn_model.json", "pickle"),
        ("served_model.py", "code"),
    ],
)
def test_model_files_changed_after_training_are_refused(
    shop: Shop, workspace: Path, capsys: pytest.CaptureFixture[str], planted: str, how: str
) -> None:
    params, marker = _params(shop, workspace), workspace / "marker"
    model = _genuine_model(shop, workspace)
    copy = shutil.copytree(model, workspace / "copy")
    assert run_cli("--params", str(params), "score", "--model", str(copy)) == 0
    (written,) = workspace.glob("scores.model=*.parquet")  # a one-off: beside the tracked table
    scores = written.read_bytes()
    before = tree(workspace / "nightly")
    target = copy / planted
    if how == "edited":  # one tree's leaf values, the kind of edit nobody would notice
        text = target.read_text()
        target.write_text(text.replace("leaf_value=", "leaf_value=1", 1))
    elif how == "pickle":
        target.write_bytes(pickle_bytes(marker))
    else:
        target.write_text(f"import os\nos.system('touch {marker}')\n")
    reason = (
        f"{planted} does not match the sha256 recorded by {workspace / 'train_run.json'}:"
        " the model was changed after training (restore it, or retrain with `churn train`)"
    )

    code, line = _score_refused(params, copy, capsys)
    assert (code, line) == (2, f"churn: error: cannot load model {str(copy)!r}: {reason}")
    code, line = refused(params, NEXT, capsys, "--model", str(copy))
    assert (code, line) == (
        14,
        f"churn: error: cannot load model {str(copy)!r}: {reason}",
    )
    assert not marker.exists()
    assert written.read_bytes() == scores
    assert not (workspace / "scores.parquet").exists()
    assert tree(workspace / "nightly") == before


def test_old_pickled_registry_version_is_refused_with_a_retrain_line(
    shop: Shop, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params, marker = _params(shop, workspace, model_alias="legacy"), workspace / "marker"
    mlflow.set_tracking_uri(shop.tracking_uri)
    try:
        mlflow.set_experiment("churn-test")
        with mlflow.start_run():
            version = log_pickled_model(marker, NAME)
        MlflowClient().set_registered_model_alias(NAME, "legacy", version)
    finally:
        mlflow.set_tracking_uri(None)
    before = tree(workspace / "nightly")

    code, line = refused(params, NEXT, capsys)
    assert code == 14
    assert line == (f"churn: error: cannot load model 'models:/{NAME}/{version}': {OLD_FORMAT}")
    assert not marker.exists()
    assert tree(workspace / "nightly") == before

    # The same run with the genuine champion publishes, every raw row accounted for.
    assert run_nightly(_params(shop, workspace), NEXT) == 0
    report = json.loads(
        (workspace / "nightly" / f"as_of={NEXT}" / "ingest_report.json").read_text()
    )
    assert report["rows_in"] == report["rows_out"] + report["rows_quarantined"]
    assert report["rows_in"] > 0 and not marker.exists()
