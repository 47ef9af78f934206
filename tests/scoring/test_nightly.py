"""`churn nightly` end to end on a small generated shop, with a real MLflow registry.

One LightGBM model is trained and registered as champion in a SQLite MLflow
store per module, and one first run is published; every test copies that
published tree and then runs the real command (in process, through
``churn.cli.main``) against it: replays, the next day, each guard, a crash
mid-write and a lock held by another process.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ibis
import mlflow
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from churn import cli
from churn.config import FeaturesConfig, GenerateConfig, SnapshotConfig, TrackingConfig, TrainConfig
from churn.data.generate import generate_shop
from churn.features.tables import build_feature_tables
from churn.model import tracking
from churn.model.registry import CHAMPION
from churn.model.train import train_model
from churn.scoring import nightly as nightly_module
from churn.scoring.partitions import LATEST, STAGING

NAME = "churn-classifier"
FIRST = dt.date(2026, 9, 1)
PIPELINE_AS_OF = dt.date(2026, 8, 1)
TOP_N = 40


@dataclass(frozen=True)
class Shop:
    root: Path
    raw: pd.DataFrame  # the generator's raw export (all dates)
    tracking_uri: str
    published: Path  # an output tree holding the first published run (do not modify)


def _write_raw(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S")
    return path


def _params(shop: Shop, folder: Path, raw: Path, **nightly: object) -> Path:
    """A params.yaml whose every path lands in ``folder`` (outputs) or the shared shop."""
    params = {
        "paths": {
            "raw_transactions": str(raw),
            "score_features": str(shop.root / "score.parquet"),
        },
        "tracking": {"uri": shop.tracking_uri, "registered_model": NAME},
        "export": {"top_n": TOP_N},
        "nightly": {"output_root": str(folder / "nightly"), **nightly},
    }
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _run(params: Path, as_of: dt.date, *extra: str) -> int:
    try:
        cli.main(["--params", str(params), "nightly", "--as-of", as_of.isoformat(), *extra])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def _tree(root: Path) -> dict[str, bytes]:
    """Every published byte under ``root`` (the lock file's pid aside)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    root = tmp_path_factory.mktemp("shop")
    raw = generate_shop(
        GenerateConfig(
            seed=11, n_customers=1_500, start=dt.date(2024, 9, 1), end=dt.date(2026, 10, 1)
        )
    ).transactions
    # The pipeline's own training and scoring tables at its as-of date, from the same export.
    known = raw[raw["CustomerID"] != ""]
    canonical = pd.DataFrame(
        {
            "customer_id": known["CustomerID"].astype(str),
            "order_id": known["Invoice"].astype(str),
            "ts": known["InvoiceDate"].astype("datetime64[us]"),
            "amount": known["Amount"].astype(float),
            "country": known["Country"].astype(str),
        }
    )
    tables = build_feature_tables(
        ibis.memtable(canonical),
        SnapshotConfig(as_of=PIPELINE_AS_OF, n_train_cutoffs=3),
        FeaturesConfig(),
    )
    tables.scoring.to_parquet(root / "score.parquet")
    result = train_model(
        tables.labelled, TrainConfig(n_estimators=40, early_stopping_rounds=10, min_customers=100)
    )
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        config = TrackingConfig(uri=uri, registered_model=NAME, experiment="churn-test")
        tracking.configure(config)
        with mlflow.start_run(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MLflow's hint about integer columns
            version = tracking.log_model(
                result.model, tables.labelled[result.model.features].head(3), config
            )
        assert version is not None
        MlflowClient().set_registered_model_alias(NAME, CHAMPION, version)
        shop = Shop(root, raw, uri, root / "published")
        first = root / "first"
        first.mkdir()
        params = _params(shop, first, _write_raw(raw, root / "raw.csv"))
        assert _run(params, FIRST) == 0
        shutil.copytree(first / "nightly", shop.published)
        yield shop
    mlflow.set_tracking_uri(None)


@pytest.fixture
def workspace(shop: Shop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the published tree from the first run, private to one test."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    shutil.copytree(shop.published, tmp_path / "nightly")
    return tmp_path


def _raw(shop: Shop) -> Path:
    return shop.root / "raw.csv"


def test_first_run_publishes_scores_targets_and_manifest(shop: Shop) -> None:
    partition = shop.published / f"as_of={FIRST}"
    assert sorted(p.name for p in partition.iterdir()) == [
        "ingest_report.json",
        "manifest.json",
        "retention_report.html",
        "retention_targets.csv",
        "retention_targets.summary.json",
        "scores.parquet",
        "targets.parquet",
    ]
    latest = json.loads((shop.published / LATEST).read_text())
    assert latest["as_of"] == FIRST.isoformat() and latest["partition"] == partition.name
    assert not any((shop.published / STAGING).iterdir())

    manifest = json.loads((partition / "manifest.json").read_text())
    assert manifest["model"]["uri"] == f"models:/{NAME}/1"
    assert manifest["model"]["requested"] == f"models:/{NAME}@champion"
    scores = pd.read_parquet(partition / "scores.parquet")
    targets = pd.read_csv(partition / "retention_targets.csv")
    assert manifest["rows"]["scored"] == len(scores) > TOP_N
    assert 0 < manifest["rows"]["targets"] == len(targets) <= TOP_N
    assert (scores["as_of"] == pd.Timestamp(FIRST)).all()
    assert scores["model_uri"].eq(f"models:/{NAME}/1").all()
    assert manifest["data"]["last_ts"] < FIRST.isoformat()
    # First run: PSI against the pipeline's own scoring snapshot, a month earlier.
    assert "score.parquet" in manifest["psi"]["reference"]
    assert set(manifest["psi"]["values"]) == {
        "recency_days",
        "n_orders",
        "revenue",
        "churn_probability",
    }
    assert max(manifest["psi"]["values"].values()) < 0.5
    assert set(manifest["timings"]) >= {"ingest", "features", "score", "total"}

    runs = mlflow.search_runs(experiment_names=["churn-nightly"], output_format="list")
    published = [r for r in runs if r.data.tags.get("status") == "published"]
    assert published and published[-1].data.tags["as_of"] == FIRST.isoformat()
    assert published[-1].data.metrics["rows.targets"] == len(targets)


def _without_timings(path: Path) -> dict[str, object]:
    manifest: dict[str, object] = json.loads(path.read_text())
    manifest.pop("timings")
    return manifest


def test_replay_and_next_day(shop: Shop, workspace: Path) -> None:
    params = _params(shop, workspace, _raw(shop))
    root = workspace / "nightly"
    before = _tree(root)

    assert _run(params, FIRST) == 0  # replay: identical outputs
    after = _tree(root)
    part = f"as_of={FIRST}"
    for name in (
        "scores.parquet",
        "targets.parquet",
        "retention_targets.csv",
        "retention_targets.summary.json",
        "retention_report.html",
        "ingest_report.json",
    ):
        assert after[f"{part}/{name}"] == before[f"{part}/{name}"], name
    assert _without_timings(root / part / "manifest.json") == _without_timings(
        shop.published / part / "manifest.json"
    )
    assert after[LATEST] == before[LATEST]

    nxt = FIRST + dt.timedelta(days=1)
    assert _run(params, nxt) == 0
    manifest = json.loads((root / f"as_of={nxt}" / "manifest.json").read_text())
    assert manifest["data"]["previous_as_of"] == FIRST.isoformat()
    assert manifest["data"]["new_transactions"] > 0
    assert manifest["psi"]["reference"] == f"the run of {FIRST}"
    assert json.loads((root / LATEST).read_text())["as_of"] == nxt.isoformat()

    assert _run(params, FIRST) == 0  # replaying an older date leaves latest where it is
    assert json.loads((root / LATEST).read_text())["as_of"] == nxt.isoformat()
    assert _tree(root)[f"{part}/scores.parquet"] == before[f"{part}/scores.parquet"]


def _refused(
    params: Path, as_of: dt.date, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str]:
    capsys.readouterr()
    code = _run(params, as_of, *extra)
    lines = [line for line in capsys.readouterr().err.splitlines() if "churn: error:" in line]
    assert len(lines) == 1, lines
    return code, lines[0]


def test_no_new_transactions_exits_11(
    shop: Shop, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = shop.raw[pd.to_datetime(shop.raw["InvoiceDate"]) < pd.Timestamp(FIRST)]
    params = _params(shop, workspace, _write_raw(stale, workspace / "stale.csv"))
    before = _tree(workspace / "nightly")
    code, line = _refused(params, FIRST + dt.timedelta(days=3), capsys)
    assert code == 11 and "no transactions after" in line
    assert _tree(workspace / "nightly") == before


def test_malformed_rows_exit_12(
    shop: Shop, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = shop.raw.copy().astype({"Amount": "object"})
    broken.loc[broken.sample(frac=0.08, random_state=0).index, "Amount"] = "n/a"
    params = _params(shop, workspace, _write_raw(broken, workspace / "broken.csv"))
    before = _tree(workspace / "nightly")
    code, line = _refused(params, FIRST + dt.timedelta(days=1), capsys)
    assert code == 12 and "malformed" in line and "non_numeric_amount" in line
    assert _tree(workspace / "nightly") == before


def test_distribution_shift_exits_13(
    shop: Shop, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cents = shop.raw.copy()  # the feed switched to cents overnight
    cents["Amount"] = cents["Amount"] * 100
    params = _params(shop, workspace, _write_raw(cents, workspace / "cents.csv"))
    before = _tree(workspace / "nightly")
    code, line = _refused(params, FIRST + dt.timedelta(days=1), capsys)
    assert code == 13 and "revenue shifted: PSI" in line and f"run of {FIRST}" in line
    assert _tree(workspace / "nightly") == before


def test_unavailable_model_exits_14(
    shop: Shop, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = _params(shop, workspace, _raw(shop), model_alias="nobody")
    before = _tree(workspace / "nightly")
    code, line = _refused(params, FIRST + dt.timedelta(days=1), capsys)
    assert code == 14 and "models:/churn-classifier@nobody" in line
    code, line = _refused(
        params, FIRST + dt.timedelta(days=1), capsys, "--model", str(workspace / "no-model")
    )
    assert code == 14 and "cannot load model" in line
    assert _tree(workspace / "nightly") == before
    refused = mlflow.search_runs(
        experiment_names=["churn-nightly"], filter_string="tags.status = 'refused'"
    )
    assert len(refused) >= 2


def test_crash_mid_write_leaves_previous_outputs(
    shop: Shop, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def half_written(frame: pd.DataFrame, target: Path) -> None:
        target.write_text(frame.head(3).to_csv(index=False))
        raise OSError("disk full")

    monkeypatch.setattr(nightly_module, "write_csv", half_written)
    params = _params(shop, workspace, _raw(shop))
    root = workspace / "nightly"
    before = _tree(root)
    with pytest.raises(OSError, match="disk full"):
        _run(params, FIRST)  # a replay: the published folder of that date is at stake
    assert _tree(root) == before
    assert not any((root / STAGING).iterdir())
    failed = mlflow.search_runs(
        experiment_names=["churn-nightly"], filter_string="tags.status = 'failed'"
    )
    assert "OSError: disk full" in set(failed["tags.reason"])


_KILLED_MID_WRITE = """
import os, signal, sys
from churn.scoring import nightly

def killed(frame, target):
    target.write_text(frame.head(3).to_csv(index=False))
    os.kill(os.getpid(), signal.SIGKILL)

nightly.write_csv = killed
from churn.cli import main
main(sys.argv[1:])
"""


def test_killed_run_leaves_previous_outputs_and_the_next_run_cleans_up(
    shop: Shop, workspace: Path
) -> None:
    """SIGKILL (the OOM killer, a cancelled Airflow task) half-way through writing the list."""
    params = _params(shop, workspace, _raw(shop))
    root = workspace / "nightly"
    before = _tree(root)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _KILLED_MID_WRITE,
            "--params",
            str(params),
            "nightly",
            "--as-of",
            FIRST.isoformat(),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    after = _tree(root)
    leftovers = [k for k in after if k.startswith(STAGING)]
    assert any(k.endswith("retention_targets.csv") for k in leftovers)  # it did die mid-write
    assert {k: v for k, v in after.items() if k not in leftovers} == before

    assert _run(params, FIRST) == 0  # the next run clears the leftovers and publishes
    assert not any((root / STAGING).iterdir())
    assert _tree(root).keys() == before.keys()
    part = f"as_of={FIRST}/scores.parquet"
    assert _tree(root)[part] == before[part]


def test_lock_held_by_another_process_exits_10(
    shop: Shop, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = workspace / "nightly"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(root / '.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "os.pwrite(fd, str(os.getpid()).encode(), 0)\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        params = _params(shop, workspace, _raw(shop))
        before = _tree(root)
        code, line = _refused(params, FIRST + dt.timedelta(days=1), capsys)
        assert code == 10 and f"pid {holder.pid}" in line
        assert _tree(root) == before
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    assert _run(params, FIRST + dt.timedelta(days=1)) == 0  # released with its process


def test_consent_filter_lists_only_customers_who_agreed(shop: Shop, workspace: Path) -> None:
    # The 30 customers most worth contacting (the riskiest may have no positive gain).
    targets = pd.read_parquet(shop.published / f"as_of={FIRST}" / "targets.parquet")
    best = targets.sort_values(["expected_gain", "customer_id"], ascending=[False, True])
    riskiest = best["customer_id"].head(30).tolist()
    customers = pd.DataFrame(
        {
            "Customer ID": riskiest,
            "Email": [f"c{i}@example.com" for i in range(30)],
            "Marketing consent": ["no"] * 10 + ["yes"] * 10 + [""] * 10,
        }
    )
    customers.to_csv(workspace / "customers.csv", index=False)
    params = _params(shop, workspace, _raw(shop))
    settings = yaml.safe_load(params.read_text())
    settings["ingest"] = {"customers": {"source": str(workspace / "customers.csv")}}
    params.write_text(yaml.safe_dump(settings))
    partition = workspace / "nightly" / f"as_of={FIRST}"

    assert _run(params, FIRST) == 0
    listed = pd.read_csv(partition / "retention_targets.csv", dtype={"Customer ID": str})
    # Refused, unknown and not in the customers table: none of them is listed.
    assert len(listed) > 0 and set(listed["Customer ID"]) <= set(riskiest[10:20])
    manifest = json.loads((partition / "manifest.json").read_text())
    assert manifest["rows"]["contactable"] == 10
    assert manifest["rows"]["customers_in_master"] == 30
    assert manifest["rows"]["targets"] == len(listed)


def test_bad_as_of_is_an_input_error(
    shop: Shop, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = _params(shop, workspace, _raw(shop))
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        cli.main(["--params", str(params), "nightly", "--as-of", "2026-13-01"])
    assert info.value.code == 2
    assert "--as-of '2026-13-01' is not a date" in capsys.readouterr().err
