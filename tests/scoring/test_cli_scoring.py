"""`churn score`, `export` and `explain` as a user runs them (real files, subprocesses)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook
from trained_model import Trained

from churn.model import tracking
from churn.scoring.export import EXPORT_COLUMNS
from churn.scoring.score import SCORE_COLUMNS

CHURN = [sys.executable, "-m", "churn"]


def _churn(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CHURN, *args], cwd=cwd, capture_output=True, text=True, check=False)


def _error_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if "error" in line.lower()]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "--band", "extreme"], "churn: error: --band 'extreme' is not one of:"),
        (["export", "--segment", "VIP"], "churn: error: --segment 'VIP' is not one of:"),
        (["export", "--format", "pdf"], "churn: error: --format 'pdf' is not one of:"),
        (["score", "--as-of", "2026-13-01"], "churn: error: --as-of '2026-13-01' is not a date"),
    ],
)
def test_bad_option_values_are_one_line_and_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "params.yaml").write_text("{}\n")
    proc = _churn(args, tmp_path)
    assert proc.returncode == 2
    errors = _error_lines(proc)
    assert len(errors) == 1 and errors[0].startswith(message), proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def project(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scoring-project")
    (root / "data/interim").mkdir(parents=True)
    (root / "data/features").mkdir(parents=True)
    trained.transactions.to_parquet(root / "data/interim/transactions.parquet", index=False)
    trained.scoring.to_parquet(root / "data/features/score.parquet", index=False)
    ids = trained.scoring["customer_id"].tolist()
    pd.DataFrame(
        {
            "customer_id": ids[:-50],  # the last 50 are not in the customer master
            "email": [f"{i}@example.com" for i in ids[:-50]],
            "name": [f"Customer {i}" for i in ids[:-50]],
            "country": "DE",
            "marketing_consent": pd.array(
                [None if k % 10 == 0 else k % 4 != 0 for k in range(len(ids) - 50)], "boolean"
            ),
        }
    ).to_parquet(root / "data/interim/customers.parquet", index=False)
    example = trained.scoring[trained.model.features].head(3)
    example = example.astype({c: "string" for c in example.select_dtypes("object")})
    checksums = tracking.save_model(trained.model, example, root / "models/churn_model")
    (root / "models/train_run.json").write_text(
        json.dumps({"registered_model": "churn-test", "model_sha256": checksums})
    )
    (root / "params.yaml").write_text(
        "snapshots:\n  n_train_cutoffs: 3\n"
        "targeting:\n  max_contacts: 120\n  max_budget: 400\n"
        "export:\n  top_n: 500\n"
    )
    return root


def test_score_export_explain_on_a_replayed_date(project: Path, trained: Trained) -> None:
    as_of = pd.Timestamp(trained.scoring["cutoff"].iloc[0]).date() - dt.timedelta(days=30)
    proc = _churn(["score", "--as-of", as_of.isoformat()], project)
    assert proc.returncode == 0, proc.stderr
    scores = pd.read_parquet(project / "data/scores/scores.parquet")
    assert list(scores.columns) == SCORE_COLUMNS
    assert set(scores["as_of"].dt.date) == {as_of}
    assert set(scores["model_name"]) == {"churn-test"} and set(scores["model_version"]) == {""}

    proc = _churn(["export"], project)
    assert proc.returncode == 0, proc.stderr
    targets = pd.read_parquet(project / "data/scores/targets.parquet")
    chosen = targets[targets["targeted"]]
    assert len(chosen) <= 120 and chosen["contact_cost"].sum() <= 400 + 1e-9
    selected = targets[targets["selected"]]
    assert (selected["reason_1"] != "").mean() > 0.5  # reasons filled for the list ...
    assert (targets.loc[~targets["selected"], "reason_1"] == "").all()  # ... and only there
    summary = json.loads((project / "data/exports/retention_targets.summary.json").read_text())
    listed = pd.read_csv(project / "data/exports/retention_targets.csv", dtype={"Customer ID": str})
    assert list(listed.columns) == list(EXPORT_COLUMNS.values())
    assert len(listed) == summary["exported"] == len(selected)
    assert set(listed["Customer ID"]) == set(selected["customer_id"])
    assert summary["left_out"]["not_in_customers_table"] > 0
    assert summary["left_out"]["no_consent"] > 0 and summary["left_out"]["unknown_consent"] > 0
    assert listed["Email"].str.endswith("@example.com").all()
    book = load_workbook(project / "data/exports/retention_targets.xlsx", read_only=True)
    assert sum(1 for _ in book.active.iter_rows()) == len(listed) + 1

    customer = str(listed["Customer ID"].iloc[0])
    proc = _churn(["explain", customer, "--as-of", as_of.isoformat()], project)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"customer {customer} at {as_of}: churn risk")
    assert f"  1. {listed['Why (1)'].iloc[0]}" in proc.stdout
    proc = _churn(["explain", "no-such-customer"], project)
    assert proc.returncode == 2 and "is not an active customer" in proc.stderr
