"""The real pipeline, end to end: `dvc repro` in a temporary git repository.

Nothing is mocked: DVC runs each stage as a subprocess calling the installed
`churn` command, MLflow writes to a real SQLite store, every artifact is real
Parquet/CSV/JSON. The sample is shrunk so the suite stays fast.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient
from sklearn.metrics import roc_auc_score

from churn.data.ingest import CANONICAL_COLUMNS
from churn.model.training_run import find_local_training_run
from churn.scoring.export import EXPORT_COLUMNS
from churn.scoring.score import SCORE_COLUMNS
from churn.scoring.targeting import TARGET_COLUMNS

pytestmark = pytest.mark.e2e

PROJECT_ROOT = Path(__file__).resolve().parents[1]
EVAL_KEYS = {"roc_auc", "pr_auc", "brier", "log_loss", "top_decile_lift", "base_rate", "n"}


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{output[-4000:]}"
    return output


def _stages_run(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", output)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    repo = tmp_path_factory.mktemp("project")
    for name in ("dvc.yaml", "params.yaml", ".dvcignore", ".gitignore"):
        shutil.copy2(PROJECT_ROOT / name, repo / name)
    shutil.copytree(
        PROJECT_ROOT / ".dvc", repo / ".dvc", ignore=shutil.ignore_patterns("tmp", "cache")
    )
    shutil.copytree(
        PROJECT_ROOT / "src", repo / "src", ignore=shutil.ignore_patterns("__pycache__")
    )
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["generate"]["n_customers"] = 4_000
    params["train"]["n_estimators"] = 400
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{repo / 'mlflow.db'}",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    _run(["git", "init", "-q"], repo, env)
    _run(["git", "add", "-A"], repo, env)
    _run(["git", "commit", "-qm", "project"], repo, env)
    yield repo, env


@pytest.fixture(scope="module")
def first_repro(project: tuple[Path, dict[str, str]]) -> str:
    repo, env = project
    return _run([sys.executable, "-m", "dvc", "repro"], repo, env)


def test_every_stage_runs_in_order(first_repro: str) -> None:
    assert _stages_run(first_repro) == [
        "generate",
        "ingest",
        "features",
        "train",
        "evaluate",
        "score",
        "export",
        "report",
    ]


def test_outputs_have_their_schemas(project: tuple[Path, dict[str, str]], first_repro: str) -> None:
    repo, _ = project
    transactions = pd.read_parquet(repo / "data/interim/transactions.parquet")
    assert list(transactions.columns) == CANONICAL_COLUMNS
    report = json.loads((repo / "data/interim/ingest_report.json").read_text())
    assert report["rows_in"] == report["rows_out"] + report["rows_quarantined"] > 0
    assert (
        len(pd.read_parquet(repo / "data/interim/quarantine.parquet")) == report["rows_quarantined"]
    )

    snapshots = pd.read_parquet(repo / "data/features/train.parquet")
    assert set(snapshots["split"]) == {"train", "valid", "test"}
    assert set(snapshots["churned"].unique()) == {0, 1}
    assert not snapshots.duplicated(["customer_id", "cutoff"]).any()
    for column in (
        "recency_days",
        "tenure_days",
        "n_orders",
        "revenue",
        "n_orders_90d",
        "revenue_365d",
    ):
        assert column in snapshots.columns
    assert (snapshots["recency_days"] >= 0).all()
    assert (snapshots["tenure_days"] >= snapshots["recency_days"]).all()

    assert (repo / "models/churn_model/MLmodel").exists()
    metrics = json.loads((repo / "metrics/eval.json").read_text())
    assert set(metrics) >= EVAL_KEYS
    assert 0 < metrics["base_rate"] < 1 and metrics["n"] > 500
    for plot in ("roc.csv", "pr.csv", "calibration.csv"):
        assert len(pd.read_csv(repo / "plots" / plot)) > 2

    scores = pd.read_parquet(repo / "data/scores/scores.parquet")
    assert list(scores.columns) == SCORE_COLUMNS
    assert scores["churn_probability"].between(0, 1).all()
    assert scores["customer_id"].is_unique
    assert set(scores["risk_band"]) <= {"low", "medium", "high"}
    table = pd.read_parquet(repo / "data/scores/targets.parquet")
    assert list(table.columns) == [*SCORE_COLUMNS, *TARGET_COLUMNS]
    assert not (table["selected"] & table["control_group"]).any()
    targets = pd.read_csv(repo / "data/exports/retention_targets.csv")
    assert list(targets.columns) == list(EXPORT_COLUMNS.values())
    assert 0 < len(targets) <= 500
    assert targets["Expected gain"].is_monotonic_decreasing
    assert (targets["Why (1)"].notna()).mean() > 0.5
    summary = json.loads((repo / "data/exports/retention_targets.summary.json").read_text())
    assert summary["exported"] == len(targets) == table["selected"].sum()
    assert (repo / "data/exports/retention_targets.xlsx").exists()

    report_html = (repo / "reports/retention_report.html").read_text(encoding="utf-8")
    assert "Customers at risk" in report_html and "<script" not in report_html


def test_model_beats_recency_rule(project: tuple[Path, dict[str, str]], first_repro: str) -> None:
    repo, _ = project
    metrics = json.loads((repo / "metrics/eval.json").read_text())
    assert metrics["roc_auc"] > metrics["baselines"]["recency"]["roc_auc"]
    assert metrics["top_decile_lift"] > 1.0


def test_model_finds_the_hidden_dropouts(
    project: tuple[Path, dict[str, str]], first_repro: str
) -> None:
    """Customers who truly left before the test cutoff must look riskier than those still alive.

    The model is trained for the 90-day label, not for the hidden dropout (most
    90-day churners are alive but slow), so the bar is clear signal, not perfection:
    a model that learned artefacts of the sample would sit near 0.5.
    """
    repo, _ = project
    snapshots = pd.read_parquet(repo / "data/features/train.parquet")
    test = snapshots[snapshots["split"] == "test"]
    truth = pd.read_parquet(repo / "data/raw/dropout_truth.parquet")
    merged = test.merge(truth, on="customer_id", how="inner")
    assert len(merged) == len(test)
    gone = (merged["dropout_at"].notna() & (merged["dropout_at"] <= merged["cutoff"])).to_numpy()
    model = mlflow.pyfunc.load_model(str(repo / "models/churn_model"))
    probability = model.predict(merged)["churn_probability"].to_numpy()
    assert roc_auc_score(gone, probability) > 0.62
    assert np.mean(probability[gone]) > np.mean(probability[~gone])


def test_mlflow_holds_the_run_and_registered_model(
    project: tuple[Path, dict[str, str]], first_repro: str
) -> None:
    repo, env = project
    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    run_id = find_local_training_run(client, "churn", repo / "models/train_run.json")
    assert run_id is not None
    run = client.get_run(run_id)
    assert "test_roc_auc" in run.data.metrics and "valid_auc" in run.data.metrics
    assert run.data.tags["git_commit"] != "unknown"
    assert len(run.data.tags["data_fingerprint"]) == 16
    version = client.get_model_version_by_alias("churn-classifier", "challenger")
    assert version.run_id == run_id
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    try:
        loaded = mlflow.pyfunc.load_model("models:/churn-classifier@challenger")
    finally:
        mlflow.set_tracking_uri(None)
    assert loaded.metadata.run_id == run_id


def test_train_elsewhere_with_other_threads_changes_nothing(
    project: tuple[Path, dict[str, str]], first_repro: str
) -> None:
    """A fresh clone on another machine must reproduce the committed dvc.lock. Here
    `churn train` runs again with another thread count (a param, so DVC reruns it), under
    another BLAS kernel, other OpenMP threads and without NumPy's SIMD loops, and writes
    the same bytes: model folder (MLmodel included), train_run.json, metrics. So no later
    stage reruns, and every output hash in dvc.lock stays as it was."""
    repo, env = project
    outs_before = _locked_outputs(repo)
    models_before = _tree_bytes(repo / "models")
    params_path = repo / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["train"]["num_threads"] = 1
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    simd = np.show_config(mode="dicts")["SIMD Extensions"]["found"]  # type: ignore[index]
    elsewhere = {
        **env,
        "OPENBLAS_CORETYPE": "Prescott",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "3",
        "NPY_DISABLE_CPU_FEATURES": " ".join(simd),
    }
    output = _run([sys.executable, "-m", "dvc", "repro"], repo, elsewhere)
    assert _stages_run(output) == ["train"]
    assert _tree_bytes(repo / "models") == models_before
    assert _locked_outputs(repo) == outs_before
    assert "run_id" not in json.loads((repo / "models/train_run.json").read_text())


def _locked_outputs(repo: Path) -> dict[str, str]:
    """Every output's hash in dvc.lock, by stage and path."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return {
        f"{stage}:{out['path']}": out["md5"]
        for stage, entry in lock["stages"].items()
        for out in entry.get("outs", [])
    }


def _tree_bytes(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_second_repro_does_nothing(project: tuple[Path, dict[str, str]], first_repro: str) -> None:
    repo, env = project
    output = _run([sys.executable, "-m", "dvc", "repro"], repo, env)
    assert _stages_run(output) == []
    status = _run([sys.executable, "-m", "dvc", "status"], repo, env)
    assert "up to date" in status


def test_train_param_change_reruns_only_train_and_later(
    project: tuple[Path, dict[str, str]], first_repro: str
) -> None:
    repo, env = project
    params_path = repo / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["train"]["num_leaves"] = 7
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    output = _run([sys.executable, "-m", "dvc", "repro"], repo, env)
    assert _stages_run(output) == ["train", "evaluate", "score", "export", "report"]
