"""The pickle-free model still serves: `mlflow models serve` and `spark_udf`, real ones.

Both run MLflow's own loader, which builds the pyfunc from ``served_model.py``
("models from code") and reads the booster text and JSON spec; both must give
the probabilities churn's own loader gives.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tiny_model import scoring_rows, tiny_model

from churn.model import tracking
from churn.model.loader import load_churn_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, pd.DataFrame]:
    """A model folder as `churn train` writes it, and the loader's probabilities for rows."""
    root = tmp_path_factory.mktemp("served")
    model = tiny_model("isotonic")
    rows = scoring_rows()[model.features]
    checksums = tracking.save_model(model, rows.head(3), root / "model")
    (root / "train_run.json").write_text(json.dumps({"model_sha256": checksums}))
    loaded = load_churn_model(str(root / "model"), root / "train_run.json")
    return root / "model", loaded.churn_probability(rows), rows


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _json_rows(rows: pd.DataFrame) -> dict[str, Any]:
    """``dataframe_split`` with exact floats (repr) and JSON null for missing values."""

    def cell(value: Any) -> Any:
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            return None
        return value.item() if hasattr(value, "item") else value

    data = [[cell(v) for v in row] for row in rows.astype(object).itertuples(index=False)]
    return {"dataframe_split": {"columns": list(rows.columns), "data": data}}


@pytest.fixture
def served(model_dir: tuple[Path, np.ndarray, pd.DataFrame], tmp_path: Path) -> Iterator[str]:
    """`mlflow models serve` on the folder, in its own process group (stopped by its id)."""
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            str(model_dir[0]),
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            "1",
        ],
        cwd=tmp_path,
        env={
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow models serve did not start:\n{_tail(tmp_path / 'serve.log')}")
            time.sleep(0.5)
        yield url
    finally:
        _stop_group(proc)
        log.close()


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server and the workers it started: its own process group, by its id."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=30)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:]


def test_mlflow_models_serve_answers_with_the_loaders_probabilities(
    model_dir: tuple[Path, np.ndarray, pd.DataFrame], served: str
) -> None:
    _, expected, rows = model_dir
    request = urllib.request.Request(
        f"{served}/invocations",
        data=json.dumps(_json_rows(rows)).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.loads(response.read())
    got = np.array([p["churn_probability"] for p in answer["predictions"]])
    assert len(got) == len(rows)
    assert np.allclose(got, expected, rtol=0, atol=1e-12), np.abs(got - expected).max()


@pytest.mark.spark
@pytest.mark.skipif(shutil.which("java") is None, reason="spark_udf needs Java 17")
@pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")
def test_spark_udf_gives_the_loaders_probabilities(
    model_dir: tuple[Path, np.ndarray, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pyspark")
    import mlflow.pyfunc
    from pyspark.sql import SparkSession

    from churn.features.backend import spark_session

    # The UDF runs in Spark's Python workers: they must be this interpreter (with MLflow).
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)
    # py4j says goodbye at interpreter exit, after pytest closed the stream the in-process
    # CLI tests bound logging to; keep it quiet so the run does not end on a logging error.
    logging.getLogger("py4j").setLevel(logging.WARNING)
    # Not the run's shared session: spark_udf puts the model folder's partial copy of
    # churn on the Python workers' path, and workers are reused, so a later
    # mapInPandas would import the wrong churn. A fresh session, stopped after.
    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()
    spark = spark_session(
        "local[1]",
        {"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"},
    )
    try:
        folder, expected, rows = model_dir
        frame = spark.createDataFrame(
            rows.astype({c: object for c in rows.select_dtypes("string")})
        )
        predict = mlflow.pyfunc.spark_udf(spark, model_uri=str(folder), result_type="double")
        scored = frame.withColumn("p", predict(*rows.columns)).select("p").toPandas()
    finally:
        spark.stop()
    assert np.allclose(scored["p"].to_numpy(), expected, rtol=0, atol=1e-12)
