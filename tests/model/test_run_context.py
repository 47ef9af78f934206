"""Run names and the git_dirty tag say what ran, against real git repositories."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from churn.model.registration import refusal
from churn.model.run_context import (
    DvcExperiment,
    GitState,
    RunContext,
    dvc_experiment,
    git_state,
    snapshot_as_of,
)

GIT_ENV = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}
LOCK = """\
schema: '2.0'
stages:
  train:
    cmd: churn train
    outs:
    - path: models/churn_model
      md5: 1.dir
    - path: metrics/train.json
      md5: abc
"""


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", *args],
        cwd=repo,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A committed DVC-style project: params, code, a lock file and a git-tracked metric."""
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "metrics").mkdir()
    (repo / "params.yaml").write_text("train:\n  num_leaves: 31\n")
    (repo / "src" / "model.py").write_text("LEAVES = 31\n")
    (repo / "dvc.lock").write_text(LOCK)
    (repo / "metrics" / "train.json").write_text("{}\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "project")
    return repo


def test_a_committed_tree_is_clean_and_names_head(project: Path) -> None:
    state = git_state(project)
    assert state == GitState(commit=git(project, "rev-parse", "HEAD"))
    assert not state.dirty and len(state.short) == 7


def test_what_dvc_writes_is_not_a_change(project: Path) -> None:
    """dvc.lock, the outputs it lists (even deleted before a stage reruns) and the
    .gitignore entries DVC adds are results of the run, not its inputs."""
    (project / "dvc.lock").write_text(LOCK + "# rewritten\n")
    (project / "metrics" / "train.json").unlink()
    (project / "models" / "churn_model").mkdir(parents=True)
    (project / "models" / "churn_model" / "MLmodel").write_text("x\n")
    (project / "models" / ".gitignore").write_text("/churn_model\n")
    assert not git_state(project).dirty


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (
            lambda repo: (repo / "params.yaml").write_text("train:\n  num_leaves: 63\n"),
            "params.yaml",
        ),
        (lambda repo: (repo / "src" / "new.py").write_text("X = 1\n"), "src/new.py"),
        (lambda repo: (repo / "src" / "model.py").unlink(), "src/model.py"),
    ],
    ids=["edited-params", "new-untracked-code", "deleted-code"],
)
def test_code_and_params_changes_are_dirty(project: Path, change: object, path: str) -> None:
    change(project)  # type: ignore[operator]
    state = git_state(project)
    assert state.dirty and state.changed == (path,)


def test_a_dvc_temp_workspace_is_the_baseline_plus_staged_changes(project: Path) -> None:
    """`dvc exp run --temp` checks the baseline out in .dvc/tmp/exps/... and applies the
    experiment's params as uncommitted (staged) changes: HEAD is the baseline, tree dirty."""
    baseline = git(project, "rev-parse", "HEAD")
    workspace = project.parent / "exp-workspace"
    git(project, "clone", "-q", str(project), str(workspace))
    (workspace / "params.yaml").write_text("train:\n  num_leaves: 63\n")
    git(workspace, "add", "params.yaml")
    state = git_state(workspace)
    assert state.commit == baseline and state.changed == ("params.yaml",)


def test_a_project_in_a_subfolder_matches_its_own_lock(project: Path) -> None:
    sub = project / "pipeline"
    sub.mkdir()
    (sub / "dvc.lock").write_text(LOCK)
    (sub / "metrics").mkdir()
    (sub / "metrics" / "train.json").write_text("{}\n")
    assert not git_state(sub).dirty  # pipeline/dvc.lock lists pipeline/metrics/train.json
    assert git_state(project).changed == ("pipeline/dvc.lock", "pipeline/metrics/train.json")


def test_outside_git_there_is_no_commit(tmp_path: Path) -> None:
    state = git_state(tmp_path)
    assert state.commit is None and state.short == "no-git"


def test_dvc_experiment_comes_from_the_variables_dvc_exp_run_sets() -> None:
    assert dvc_experiment({}) is None
    assert dvc_experiment({"DVC_ROOT": "/x", "DVC_STAGE": "train"}) is None  # plain dvc repro
    found = dvc_experiment({"DVC_EXP_NAME": "big-leaves", "DVC_EXP_BASELINE_REV": "4dea271abc"})
    assert found == DvcExperiment(name="big-leaves", baseline="4dea271abc")


def test_run_names_and_tags_say_what_ran() -> None:
    commit = "4dea271" + "0" * 33
    clean = RunContext("train", dt.date(2026, 10, 1), GitState(commit), None)
    assert clean.run_name() == "train 2026-10-01 4dea271"
    assert clean.tags() == {
        "stage": "train",
        "as_of": "2026-10-01",
        "git_commit": commit,
        "git_dirty": "false",
    }
    experiment = DvcExperiment("big-leaves", commit)
    tried = RunContext(
        "train", dt.date(2026, 10, 1), GitState(commit, ("params.yaml",)), experiment
    )
    assert tried.run_name() == "train 2026-10-01 4dea271-dirty exp:big-leaves"
    assert tried.tags()["git_dirty"] == "true"
    assert tried.tags()["dvc_exp_name"] == "big-leaves"
    assert RunContext("train", None, GitState(None), None).tags()["git_commit"] == "unknown"
    assert "git_dirty" not in RunContext("train", None, GitState(None), None).tags()


def test_only_a_committed_run_outside_experiments_may_move_the_challenger() -> None:
    day, commit = dt.date(2026, 10, 1), "a" * 40
    assert refusal(RunContext("train", day, GitState(commit), None)) is None
    tried = RunContext("train", day, GitState(commit), DvcExperiment("big-leaves", commit))
    assert "DVC experiment 'big-leaves'" in str(refusal(tried))
    dirty = RunContext("train", day, GitState(commit, ("a", "b", "c", "d", "e")), None)
    assert "uncommitted changes (a, b, c and 2 more)" in str(refusal(dirty))
    assert "outside a git checkout" in str(refusal(RunContext("train", day, GitState(None), None)))


def test_as_of_is_the_test_cutoff_plus_the_horizon() -> None:
    snapshots = pd.DataFrame(
        {
            "cutoff": pd.to_datetime(["2026-04-04", "2026-07-03"]),
            "split": ["valid", "test"],
        }
    )
    assert snapshot_as_of(snapshots, 90) == dt.date(2026, 10, 1)
    assert snapshot_as_of(snapshots[snapshots["split"] == "valid"], 90) is None
