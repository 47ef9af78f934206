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
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

import pg_server
from churn import cli
from churn.nightly.partitions import LATEST, STAGING
from churn.stages import export as export_stage
from nightly_shop import (
    FIRST,
    NAME,
    PIPELINE_AS_OF,
    TOP_N,
    Shop,
    build_shop,
    copy_published,
)
from nightly_shop import refused as _refused
from nightly_shop import run_nightly as _run
from nightly_shop import tree as _tree
from nightly_shop import write_params as _params
from nightly_shop import write_raw as _write_raw


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    yield from build_shop(tmp_path_factory.mktemp("shop"))


@pytest.fixture
def workspace(shop: Shop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the published tree from the first run, private to one test."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return copy_published(shop, tmp_path)


def _raw(shop: Shop) -> Path:
    return shop.raw_csv


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
    # The manifest's shape, as the job has always written it (schedulers parse it).
    assert set(manifest) == {
        "as_of",
        "status",
        "model",
        "data",
        "rows",
        "quarantine",
        "psi",
        "new_orders",
        "thresholds",
        "outputs",
        "code",
        "timings",
        "save_rates",  # issue 16: the rates the list used, and whence
        "ranking",  # issue 16: risk or uplift, and why
        "drift_accepted",  # issue 18: what --accept-drift let through (None: not given)
    }
    assert manifest["drift_accepted"] is None
    assert manifest["save_rates"]["mode"] == "assumed"
    assert set(manifest["model"]) == {"requested", "uri", "name", "version"}
    assert set(manifest["rows"]) == {
        "raw",
        "transactions",
        "quarantined",
        "malformed",
        "customers_in_master",
        "scored",
        "contactable",
        "selected",
        "targets",
    }
    assert set(manifest["quarantine"]) == {"malformed_fraction", "reasons"}
    assert set(manifest["psi"]) == {"reference", "values", "skipped", "score_enforced"}
    assert set(manifest["code"]) == {"churn_version", "git_commit"}
    # The job's list summary names no files: its paths are the run's staging folder.
    summary = json.loads((partition / "retention_targets.summary.json").read_text())
    assert "files" not in summary and summary["exported"] == len(targets)

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


def test_accept_drift_publishes_one_shifted_run_and_records_it(
    shop: Shop, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """#18: --accept-drift overrides the drift guards for one run, and the manifest says
    word for word what it let through; the same date replayed without it is refused."""
    cents = shop.raw.copy()  # the orders since the published run arrive in cents
    later = pd.to_datetime(cents["InvoiceDate"]) >= pd.Timestamp(FIRST)
    cents.loc[later, "Amount"] = cents.loc[later, "Amount"] * 100
    params = _params(shop, workspace, _write_raw(cents, workspace / "cents.csv"))
    nxt = FIRST + dt.timedelta(days=7)
    assert _run(params, nxt, "--accept-drift") == 0
    manifest = json.loads((workspace / "nightly" / f"as_of={nxt}" / "manifest.json").read_text())
    accepted = manifest["drift_accepted"]
    assert any("are valued unlike" in line for line in accepted), accepted
    assert manifest["new_orders"]["judged"] and manifest["new_orders"]["median_ratio"] > 50
    assert "drift accepted for this run (--accept-drift)" in capsys.readouterr().err
    code, line = _refused(params, nxt, capsys)
    assert code == 13 and line.endswith(accepted[0])


def test_backfill_before_every_published_run_has_no_later_reference(
    shop: Shop, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """#18: replaying a date earlier than every published run and than the pipeline's own
    snapshot compares with nothing later: no reference, said in the log and manifest;
    between two published runs it compares with the nearest earlier one."""
    params = _params(shop, workspace, _raw(shop))
    early = PIPELINE_AS_OF - dt.timedelta(days=60)
    capsys.readouterr()
    assert _run(params, early) == 0
    manifest = json.loads((workspace / "nightly" / f"as_of={early}" / "manifest.json").read_text())
    assert manifest["psi"]["reference"].startswith(f"none (no run published before {early}")
    assert manifest["psi"]["values"] == {}
    assert "PSI not measured: reference none (no run published before" in capsys.readouterr().err
    between = FIRST - dt.timedelta(days=7)
    assert _run(params, between) == 0
    manifest = json.loads(
        (workspace / "nightly" / f"as_of={between}" / "manifest.json").read_text()
    )
    assert manifest["psi"]["reference"] == f"the run of {early}"


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
    shop: Shop,
    workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def half_written(frame: pd.DataFrame, target: Path) -> None:
        target.write_text(frame.head(3).to_csv(index=False))
        raise OSError("disk full")

    monkeypatch.setattr(export_stage, "write_csv", half_written)  # the list
    params = _params(shop, workspace, _raw(shop))
    root = workspace / "nightly"
    before = _tree(root)
    # A replay: the published folder of that date is at stake. An OS error is one line
    # and exit 2 (issue 13), and the run is still recorded as failed.
    assert _refused(params, FIRST, capsys) == (2, "churn: error: disk full")
    assert _tree(root) == before
    assert not any((root / STAGING).iterdir())
    failed = mlflow.search_runs(
        experiment_names=["churn-nightly"], filter_string="tags.status = 'failed'"
    )
    assert "OSError: disk full" in set(failed["tags.reason"])


_KILLED_MID_WRITE = """
import os, signal, sys
from churn.stages import export as export_stage

def killed(frame, target):
    target.write_text(frame.head(3).to_csv(index=False))
    os.kill(os.getpid(), signal.SIGKILL)

export_stage.write_csv = killed  # the list, written by the export stage
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


def test_a_database_source_replays_the_file_run(
    shop: Shop, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same export held in PostgreSQL (typed columns) instead of a CSV file: the job
    reads it through `paths.raw_transactions: {url, table}` and publishes the same scores
    and list as the first run did from the file."""
    raw = shop.raw
    rows = [
        (r.Invoice, r.InvoiceDate.to_pydatetime(), r.CustomerID, r.Amount, r.Country)
        for r in raw.itertuples()
    ]
    with pg_server.running_server() as server:
        import psycopg  # needs libpq (a host without PostgreSQL has skipped above)

        with psycopg.connect(
            host="127.0.0.1", port=server.port, user=pg_server.USER,
            password=pg_server.PASSWORD, dbname=pg_server.DATABASE, autocommit=True,
        ) as con:  # fmt: skip
            con.execute(
                'CREATE TABLE orders ("Invoice" text, "InvoiceDate" timestamp,'
                ' "CustomerID" text, "Amount" double precision, "Country" text)'
            )
            with con.cursor() as cur:
                cur.executemany("INSERT INTO orders VALUES (%s, %s, %s, %s, %s)", rows)
        monkeypatch.setenv("PGPASSWORD", pg_server.PASSWORD)
        params = _params(shop, workspace, _raw(shop))
        settings = yaml.safe_load(params.read_text())
        settings["paths"]["raw_transactions"] = {"url": server.url, "table": "orders"}
        params.write_text(yaml.safe_dump(settings))
        assert _run(params, FIRST) == 0
    part = workspace / "nightly" / f"as_of={FIRST}"
    for name in ("scores.parquet", "targets.parquet", "retention_targets.csv"):
        assert (part / name).read_bytes() == (shop.published / part.name / name).read_bytes()
    manifest = json.loads((part / "manifest.json").read_text())
    assert manifest["data"]["source"] == f"table orders in postgresql 127.0.0.1:{server.port}/shop"
