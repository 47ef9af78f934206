"""The promotion gate against a real `mlflow server` (SQLite backend) on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import ibis
import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from churn.config import FeaturesConfig, SnapshotConfig, TrackingConfig, TrainConfig
from churn.features.tables import build_feature_tables
from churn.model import tracking
from churn.model.churn_model import LABEL
from churn.model.loader import load_churn_model
from churn.model.registry import CHAMPION, GateMetrics, judge, promote
from churn.model.train import train_model
from synthetic import canonical_transactions

NAME = "churn-classifier"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("mlflow server did not start")
        time.sleep(0.5)
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def snapshots() -> pd.DataFrame:
    transactions = canonical_transactions(seed=21, n_customers=2_500)
    tables = build_feature_tables(
        ibis.memtable(transactions), SnapshotConfig(n_train_cutoffs=6), FeaturesConfig()
    )
    return tables.labelled


def _register(snapshots: pd.DataFrame, *, scramble: bool) -> str:
    frame = snapshots.copy()
    if scramble:  # a broken challenger: trained and validated on inverted labels
        # (scrambling only the training labels no longer breaks it: the candidates include
        # the unsupervised BTYD probabilities, which validation then rightly serves)
        fitted = frame["split"].isin(["train", "valid"])
        frame.loc[fitted, LABEL] = 1 - frame.loc[fitted, LABEL]
    result = train_model(frame, TrainConfig(n_estimators=150, early_stopping_rounds=30))
    config = TrackingConfig(registered_model=NAME)
    tracking.configure(config)
    with mlflow.start_run():
        version = tracking.log_model(result.model, frame[result.model.features].head(3), config)
    assert version is not None
    return version


def test_gate_promotes_first_refuses_worse_accepts_equal(
    server: str, snapshots: pd.DataFrame
) -> None:
    client = MlflowClient(tracking_uri=server)
    test = snapshots[snapshots["split"] == "test"]

    def gate() -> object:
        return promote(client, NAME, test, load_churn_model, 0.002, 0.0005)

    first = _register(snapshots, scramble=False)
    decision = gate()
    assert decision.promoted and "no champion" in decision.reason
    assert client.get_model_version_by_alias(NAME, CHAMPION).version == first

    _register(snapshots, scramble=True)
    decision = gate()
    assert not decision.promoted
    assert "worse on AUC" in decision.reason
    assert client.get_model_version_by_alias(NAME, CHAMPION).version == first

    same = _register(snapshots, scramble=False)
    decision = gate()
    assert decision.promoted, decision.reason
    assert client.get_model_version_by_alias(NAME, CHAMPION).version == same


def test_cli_exit_code_tells_promoted_from_refused(
    server: str, snapshots: pd.DataFrame, tmp_path: Path
) -> None:
    snapshots.to_parquet(tmp_path / "train.parquet")
    (tmp_path / "params.yaml").write_text(
        f"paths:\n  train_features: {tmp_path / 'train.parquet'}\n"
    )
    _register(snapshots, scramble=True)
    env = {**os.environ, "MLFLOW_TRACKING_URI": server}
    proc = subprocess.run(
        [sys.executable, "-m", "churn", "promote"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "kept the champion" in proc.stdout and "worse on" in proc.stdout


def test_judge_tolerances() -> None:
    champion = GateMetrics(roc_auc=0.70, brier=0.150)
    assert judge(GateMetrics(0.699, 0.1502), champion, 0.002, 0.0005)[0]
    assert not judge(GateMetrics(0.690, 0.149), champion, 0.002, 0.0005)[0]
    ok, reason = judge(GateMetrics(0.71, 0.152), champion, 0.002, 0.0005)
    assert not ok and "worse on Brier" in reason
