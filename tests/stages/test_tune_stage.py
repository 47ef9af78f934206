"""`churn tune` end to end in process: never the test cutoff, MLflow runs, the best written."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from churn.cli import main
from churn.model.tuning import TUNED_KEYS
from churn.schema import LABEL, SPLIT, TEST_SPLIT
from labelled_sample import labelled_snapshots

PARAMS = """\
paths:
  train_features: train.parquet
  tune_metrics: metrics/tune.json
train:
  num_leaves: 15          # leaves per tree
  learning_rate: 0.03
  n_estimators: 40
  early_stopping_rounds: 10
  min_child_samples: 50
  feature_fraction: 0.8   # share of features per tree
  lambda_l2: 1.0
tune:
  n_trials: 3
  seed: 5
  folds: 2
tracking:
  uri: sqlite:///{db}
"""


def _project(root: Path, snapshots: pd.DataFrame) -> Path:
    root.mkdir()
    snapshots.to_parquet(root / "train.parquet")
    params = root / "params.yaml"
    params.write_text(PARAMS.format(db=root / "mlflow.db"))
    return params


def _tune(params: Path, *options: str) -> dict[str, object]:
    """Run `churn tune` from the project folder (paths in params are relative to it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(params.parent)
        # mlflow.set_tracking_uri exports the URI, which would win over the next project's.
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        main(["--params", str(params), "tune", *options])
    written: dict[str, object] = json.loads((params.parent / "metrics/tune.json").read_text())
    return written


@pytest.fixture(scope="module")
def flipped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The search with every test-cutoff label flipped: it must not notice."""
    snapshots = labelled_snapshots().copy()
    test = snapshots[SPLIT] == TEST_SPLIT
    assert test.sum() > 100
    snapshots.loc[test, LABEL] = 1 - snapshots.loc[test, LABEL]
    return _tune(_project(tmp_path_factory.mktemp("flipped") / "p", snapshots))


def test_the_test_cutoff_never_reaches_the_search_the_best_is_applied_and_in_mlflow(
    tmp_path: Path, flipped: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    params = _project(tmp_path / "p", labelled_snapshots())
    written = _tune(params, "--apply")
    assert written["trials"] == flipped["trials"]
    assert written["best"] == flipped["best"]
    best = written["best"]
    assert isinstance(best, dict) and isinstance(written["trials"], list)
    losses = [t["log_loss"] for t in written["trials"]]
    assert best["log_loss"] == min(losses)
    assert best["params"] == written["trials"][losses.index(min(losses))]["params"]
    # The exact command on stdout, and the same values rewritten in place in params.yaml.
    command = " ".join(f"-S train.{k}={best['params'][k]}" for k in TUNED_KEYS)
    assert capsys.readouterr().out.splitlines()[-1] == f"dvc exp run {command}"
    assert written["dvc_exp_run"] == f"dvc exp run {command}"
    text = params.read_text()
    assert yaml.safe_load(text)["train"] | best["params"] == yaml.safe_load(text)["train"]
    assert "# leaves per tree" in text and "# share of features per tree" in text
    assert yaml.safe_load(text)["train"]["n_estimators"] == 40
    _check_mlflow(params, written)


def _check_mlflow(params: Path, written: dict[str, object]) -> None:
    """A parent run holding the best params and score, and a child run per trial."""
    client = MlflowClient(f"sqlite:///{params.parent / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("churn-tune")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(parents) == 1 and len(children) == 3
    best = written["best"]
    assert isinstance(best, dict)
    assert parents[0].data.metrics["best_log_loss"] == pytest.approx(best["log_loss"])
    logged = parents[0].data.params
    assert {k: logged[f"best.{k}"] for k in best["params"]} == {
        k: str(v) for k, v in best["params"].items()
    }
    assert sorted(r.data.metrics["log_loss"] for r in children)[0] == pytest.approx(
        best["log_loss"]
    )


def test_a_budget_too_small_for_one_trial_is_one_line_naming_the_knob(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = _project(tmp_path / "p", labelled_snapshots())
    params.write_text(params.read_text().replace("tune:\n", "tune:\n  max_seconds: 0.001\n"))
    with pytest.raises(SystemExit) as exited:
        _tune(params)
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "churn: error: churn tune: no trial finished within tune.max_seconds=0.001;"
        " raise it (one trial trains one booster per fold)"
    )
