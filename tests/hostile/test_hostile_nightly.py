"""Hostile and unlucky runs of `churn nightly` (issue 13 items 3, 10 and 12), through the CLI.

* 3: a unit change in only the newest daily file, which the whole-history guards
  cannot see, is refused by the new-orders guard (exit 13), while the same day
  without it publishes;
* 10: a real ``mlflow server`` started and then stopped, and a port nothing
  listens on: a registry model refuses at once (exit 14), a local model folder
  publishes with one warning, and the run's record is written after the lock is
  released;
* 12: real SIGKILLs at the two moments that used to leave debris for good (inside
  ingest, and between the partition rename and ``latest.json``); the next run
  repairs the pointer and removes the pointer's temp file and the ingest scratch.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from churn.model import tracking
from churn.model.loader import load_churn_model
from churn.nightly import run_log
from churn.nightly.lock import exclusive_lock
from churn.nightly.partitions import LATEST, STAGING
from nightly_shop import (
    FIRST,
    NAME,
    Shop,
    refused,
    run_cli,
    run_nightly,
    tree,
    write_params,
    write_raw,
)

NEXT = FIRST + dt.timedelta(days=1)  # the day after the published run: new rows = FIRST's


def _daily_export(raw: pd.DataFrame, folder: Path, until: dt.date) -> Path:
    """The export as a shop sends it, up to (not including) ``until``: the last week one
    file a day, the older history in one archive file (sorted first)."""
    folder.mkdir()
    ts = pd.to_datetime(raw["InvoiceDate"])
    raw, ts = raw[ts < pd.Timestamp(until)], ts[ts < pd.Timestamp(until)]
    cut = pd.Timestamp(until - dt.timedelta(days=7))
    write_raw(raw[ts < cut], folder / "orders-0000-archive.csv")
    for day, rows in raw[ts >= cut].groupby(ts[ts >= cut].dt.date):
        write_raw(rows, folder / f"orders-{day}.csv")
    return folder


def _ingest_report(params: Path, folder: Path, as_of: dt.date) -> dict[str, Any]:
    """`churn ingest` on the same source and as-of date, outputs in ``folder``."""
    settings = yaml.safe_load(params.read_text())
    settings["paths"].update(
        {
            name: str(folder / "ingest" / file)
            for name, file in {
                "transactions": "transactions.parquet",
                "quarantine": "quarantine.parquet",
                "ingest_report": "ingest_report.json",
                "customers": "customers.parquet",
            }.items()
        }
    )
    settings["snapshots"] = {"as_of": as_of.isoformat()}
    path = folder / "ingest-params.yaml"
    path.write_text(yaml.safe_dump(settings))
    assert run_cli("--params", str(path), "ingest") == 0
    report: dict[str, Any] = json.loads((folder / "ingest" / "ingest_report.json").read_text())
    return report


def _accounted(report: dict[str, Any], rows: int) -> None:
    assert report["rows_in"] == rows
    assert report["rows_in"] == report["rows_out"] + report["rows_quarantined"]


# --- 3: the newest daily file in cents ---------------------------------------------------


def test_newest_daily_file_in_cents_exits_13(
    shop: Shop, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _daily_export(shop.raw, workspace / "raw", NEXT)
    newest = sorted(folder.iterdir())[-1]
    assert newest.name == f"orders-{FIRST}.csv"
    day = pd.read_csv(newest, dtype={"CustomerID": str, "Invoice": str})
    day["Amount"] = (day["Amount"] * 100).round(2)
    day.to_csv(newest, index=False)
    # This small shop has about ten orders a day; the default minimum (20) would not judge.
    params = write_params(shop, workspace, folder, min_new_orders=5)
    root = workspace / "nightly"
    before = tree(root)

    code, line = refused(params, NEXT, capsys)
    assert code == 13
    assert f"orders after {FIRST - dt.timedelta(days=1)}" in line
    assert "are valued unlike the" in line and "of the 365 days before" in line
    assert "beyond nightly.max_new_order_median_ratio=3.0" in line
    assert "above nightly.max_new_order_psi=1.0" in line
    assert tree(root) == before
    _accounted(_ingest_report(params, workspace, NEXT), _rows_before(shop, NEXT))


def _rows_before(shop: Shop, day: dt.date) -> int:
    return int((pd.to_datetime(shop.raw["InvoiceDate"]) < pd.Timestamp(day)).sum())


def test_the_same_day_without_the_unit_change_publishes(shop: Shop, workspace: Path) -> None:
    folder = _daily_export(shop.raw, workspace / "raw", NEXT)
    params = write_params(shop, workspace, folder, min_new_orders=5)
    assert run_nightly(params, NEXT) == 0
    partition = workspace / "nightly" / f"as_of={NEXT}"
    manifest = json.loads((partition / "manifest.json").read_text())
    new = manifest["new_orders"]
    assert new["judged"] and new["min_orders"] == 5 and new["skipped"] == ""
    first = json.loads((workspace / "nightly" / f"as_of={FIRST}" / "manifest.json").read_text())
    assert new["since"] == first["data"]["last_ts"]
    assert new["orders"] >= 5 and new["history_orders"] > 1_000
    assert 1 / 3 < new["median_ratio"] < 3 and new["psi"] < 1
    assert manifest["thresholds"]["max_new_order_median_ratio"] == 3.0
    _accounted(json.loads((partition / "ingest_report.json").read_text()), _rows_before(shop, NEXT))


# --- 10: the tracking server goes down ----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # uvicorn runs in a child process
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture(scope="module")
def mlflow_server(shop: Shop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real `mlflow server` on 127.0.0.1 over a copy of the shop's registry."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    shutil.copy(shop.root / "mlflow.db", folder / "mlflow.db")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no job-runner process to start
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1"),
            *("--port", str(port), "--workers", "1"),
            *("--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}"),
        ],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Server(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + 300  # a loaded 2-core host needs a while to import it
        while True:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{server.url}/health", timeout=2).read()
                break
            assert process.poll() is None, (folder / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "mlflow server did not start"
            time.sleep(0.3)
        yield server
    finally:
        server.stop()
        log.close()


@pytest.fixture(scope="module")
def local_model(shop: Shop, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The champion saved as a local model folder, the way `churn train` writes
    models/churn_model: its checksums in a train_run.json beside it (``paths.train_run``),
    so it can be verified with no tracking store at all."""
    folder = tmp_path_factory.mktemp("local-model")
    mlflow.set_tracking_uri(shop.tracking_uri)
    try:
        model = load_churn_model(f"models:/{NAME}/1")
    finally:
        mlflow.set_tracking_uri(None)
    example = pd.read_parquet(shop.root / "score.parquet")[model.features].head(3)
    example = example.astype({c: "string" for c in example.select_dtypes("object")})
    checksums = tracking.save_model(model, example, folder / "churn_model")
    (folder / "train_run.json").write_text(json.dumps({"model_sha256": checksums}))
    return folder / "churn_model"


def test_tracking_server_down(
    shop: Shop,
    workspace: Path,
    mlflow_server: Server,
    local_model: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = workspace / "nightly"
    params = write_params(shop, workspace, shop.raw_csv)
    settings = yaml.safe_load(params.read_text())
    settings["paths"]["train_run"] = str(local_model.parent / "train_run.json")
    params.write_text(yaml.safe_dump(settings))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)

    # Up: the champion comes from the server's registry; the record is written once the
    # lock is free (a second run could take it while MLflow is slow).
    lock_free_while_logging = []
    log_manifest = run_log.log_manifest

    def logging_after_release(*args: Any, **kwargs: Any) -> str:
        with exclusive_lock(root):
            lock_free_while_logging.append(True)
        return log_manifest(*args, **kwargs)

    monkeypatch.setattr(run_log, "log_manifest", logging_after_release)
    client = MlflowClient(mlflow_server.url)
    experiment = client.get_experiment_by_name("churn-nightly")
    assert experiment is not None  # the shop's first run created it

    def runs() -> dict[str, str]:
        found = client.search_runs([experiment.experiment_id], f"tags.as_of = '{NEXT}'")
        return {r.info.run_id: r.data.tags["status"] for r in found}

    earlier = runs()
    assert run_nightly(params, NEXT) == 0
    assert lock_free_while_logging == [True]
    assert [status for run, status in runs().items() if run not in earlier] == ["published"]

    mlflow_server.stop()
    later = NEXT + dt.timedelta(days=1)
    for url in (mlflow_server.url, f"http://127.0.0.1:{_free_port()}"):  # stopped; never up
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        before = tree(root)
        code, line = refused(params, later, capsys)
        assert code == 14, line
        assert f"the MLflow tracking store at {url} is unavailable (Connection refused" in line
        assert f"models:/{NAME}@champion comes from it" in line and "--model" in line
        assert tree(root) == before

    # A local model folder does not need the server: publish, and say once it was not logged.
    capsys.readouterr()
    assert run_nightly(params, later, "--model", str(local_model)) == 0
    err = capsys.readouterr().err
    assert (root / f"as_of={later}" / "manifest.json").is_file()
    assert json.loads((root / LATEST).read_text())["as_of"] == later.isoformat()
    unlogged = [line for line in err.splitlines() if "MLflow" in line and "WARNING" in line]
    assert len(unlogged) == 1, err
    assert "published, but the run could not be recorded in MLflow" in unlogged[0]
    assert "is unavailable (Connection refused" in unlogged[0]
    assert "Traceback" not in err and "Retrying" not in err


# --- 12: killed at the wrong moment -------------------------------------------------------

_KILLED = """
import contextlib, os, signal, sys
from churn.data import ingest
from churn.nightly import partitions

moment = sys.argv.pop(1)
real_connect, real_atomic_path = ingest.connect, partitions.atomic_path

@contextlib.contextmanager
def connect(*args, **kwargs):  # killed while ingest holds its scratch folder
    with real_connect(*args, **kwargs) as (con, scratch):
        os.kill(os.getpid(), signal.SIGKILL)
        yield con, scratch

@contextlib.contextmanager
def atomic_path(target):  # killed with latest.json's temp file written, not renamed
    with real_atomic_path(target) as tmp:
        yield tmp
        if target.name == partitions.LATEST:
            os.kill(os.getpid(), signal.SIGKILL)

if moment == "ingest":
    ingest.connect = connect
else:
    partitions.atomic_path = atomic_path
from churn.cli import main
main(sys.argv[1:])
"""


def _killed(moment: str, params: Path, as_of: dt.date, tmp: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["TMPDIR"] = str(tmp)
    command = ["nightly", "--as-of", as_of.isoformat()]
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED, moment, "--params", str(params), *command],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]


def test_killed_runs_leave_nothing_the_next_run_does_not_repair(
    shop: Shop, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, tmp = workspace / "nightly", workspace / "tmp"
    tmp.mkdir()
    stale = shop.raw[pd.to_datetime(shop.raw["InvoiceDate"]) < pd.Timestamp(NEXT)]
    params = write_params(shop, workspace, write_raw(stale, workspace / "raw.csv"))
    published = tree(root)

    # Killed inside ingest: its scratch is in the run's staging folder, not in $TMPDIR.
    _killed("ingest", params, NEXT, tmp)
    assert not list(tmp.iterdir())
    (scratch,) = root.glob(f"{STAGING}/*/tmp/churn-ingest-*")
    assert {k: v for k, v in tree(root).items() if not k.startswith(STAGING)} == published

    # Killed after as_of=NEXT was renamed in, while latest.json was being rewritten. The
    # run began by clearing the first kill's staging folder.
    _killed("pointer", params, NEXT, tmp)
    assert not scratch.parent.parent.exists()
    assert (root / f"as_of={NEXT}" / "manifest.json").is_file()
    assert (root / LATEST).read_bytes() == published[LATEST]  # stale: still FIRST
    assert len(list(root.glob(".latest.json.*.tmp"))) == 1
    killed = tree(root)

    # The next run (refused: nothing new since NEXT's run) repairs and cleans first.
    code, line = refused(params, NEXT + dt.timedelta(days=1), capsys)
    assert code == 11 and "no transactions after" in line
    latest = json.loads((root / LATEST).read_text())
    assert latest["as_of"] == NEXT.isoformat() and "retention_targets.csv" in latest["files"]
    assert not list(root.glob(".latest.json.*")) and not any((root / STAGING).iterdir())
    assert not list(tmp.iterdir())
    debris = {k for k in killed if k.startswith((STAGING, ".latest.json.")) or k == LATEST}
    assert {k: v for k, v in tree(root).items() if k != LATEST} == {
        k: v for k, v in killed.items() if k not in debris
    }
