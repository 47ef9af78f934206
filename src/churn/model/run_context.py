"""What ran, as a person browsing MLflow needs to see it: stage, as-of date, code version.

A run list of random names ("bold-sheep-42") says nothing; ``train 2026-10-01
4dea271`` says which stage ran on which data date with which commit. Whether the
commit really is the code that ran is the ``git_dirty`` tag: true when files git
would commit differ from that commit. Files DVC itself rewrites while a pipeline
runs (``dvc.lock``, the stage outputs it lists, the ``.gitignore`` entries it
adds) do not count: they are results, not inputs, and counting them would call
every ``dvc repro`` after an upstream change dirty.

``dvc exp run`` sets ``DVC_EXP_NAME`` and ``DVC_EXP_BASELINE_REV`` in every stage's
environment (dvc/repo/experiments/queue/base.py), in the workspace and in the
temporary workspaces of ``--temp``/``--queue`` alike. Those temporary workspaces
are real git checkouts of the baseline commit with the experiment's changes
applied but not committed, so git's own answer there is the honest one.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from churn.schema import CUTOFF, SPLIT, TEST_SPLIT

DVC_EXP_NAME = "DVC_EXP_NAME"
DVC_EXP_BASELINE_REV = "DVC_EXP_BASELINE_REV"
DVC_LOCK = "dvc.lock"
SHORT_COMMIT = 7
# Shown in a refusal, so a long list of changes stays one readable line.
_LISTED_CHANGES = 3


@dataclass(frozen=True)
class GitState:
    """The code version a run used; ``commit`` None outside a git checkout."""

    commit: str | None
    changed: tuple[str, ...] = ()

    @property
    def dirty(self) -> bool:
        return bool(self.changed)

    @property
    def short(self) -> str:
        return self.commit[:SHORT_COMMIT] if self.commit else "no-git"


@dataclass(frozen=True)
class DvcExperiment:
    """The ``dvc exp run`` a stage runs under: its name and the commit it started from."""

    name: str
    baseline: str


@dataclass(frozen=True)
class RunContext:
    stage: str
    as_of: dt.date | None
    git: GitState
    experiment: DvcExperiment | None

    def run_name(self) -> str:
        """``train 2026-10-01 4dea271``, ``-dirty`` like ``git describe --dirty``, and the
        experiment's name when ``dvc exp run`` ran it (the name ``dvc exp show`` lists)."""
        parts = [self.stage]
        if self.as_of is not None:
            parts.append(self.as_of.isoformat())
        parts.append(self.git.short + ("-dirty" if self.git.dirty else ""))
        if self.experiment is not None:
            parts.append(f"exp:{self.experiment.name}")
        return " ".join(parts)

    def tags(self) -> dict[str, str]:
        tags = {
            "stage": self.stage,
            "as_of": self.as_of.isoformat() if self.as_of is not None else "",
            "git_commit": self.git.commit or "unknown",
        }
        if self.git.commit is not None:
            tags["git_dirty"] = str(self.git.dirty).lower()
        if self.experiment is not None:
            tags["dvc_exp_name"] = self.experiment.name
            tags["dvc_exp_baseline"] = self.experiment.baseline
        return tags


def dvc_experiment(environ: Mapping[str, str] | None = None) -> DvcExperiment | None:
    """The experiment when this process runs inside ``dvc exp run``, else None."""
    env = os.environ if environ is None else environ
    name, baseline = env.get(DVC_EXP_NAME, ""), env.get(DVC_EXP_BASELINE_REV, "")
    if not (name or baseline):
        return None
    return DvcExperiment(name=name or baseline[:SHORT_COMMIT], baseline=baseline)


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout


def _porcelain_paths(status: str) -> list[str]:
    """Paths from ``git status --porcelain=v1 -z``: "XY path", a rename's source follows it."""
    entries = status.split("\0")
    paths: list[str] = []
    index = 0
    while index < len(entries):
        entry = entries[index]
        index += 1
        if len(entry) < 4:
            continue
        paths.append(entry[3:])
        if entry[0] in "RC":
            index += 1  # the original path of a rename or copy
    return paths


def _dvc_outputs(project: Path) -> list[str]:
    """Every output path the project's ``dvc.lock`` lists, relative to the project."""
    try:
        lock = yaml.safe_load((project / DVC_LOCK).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return []
    stages = lock.get("stages") if isinstance(lock, dict) else None
    if not isinstance(stages, dict):
        return []
    return [
        str(out["path"]).rstrip("/")
        for stage in stages.values()
        if isinstance(stage, dict)
        for out in stage.get("outs") or []
        if isinstance(out, dict) and out.get("path")
    ]


def _written_by_dvc(path: str, prefix: str, outputs: list[str]) -> bool:
    if Path(path).name == ".gitignore" or path == f"{prefix}{DVC_LOCK}":
        return True
    return any(path == f"{prefix}{out}" or path.startswith(f"{prefix}{out}/") for out in outputs)


def git_state(cwd: Path | None = None) -> GitState:
    """HEAD and the uncommitted changes that make it not the code that ran.

    Counts modified, staged, deleted and untracked (not ignored) files anywhere in
    the repository, except what DVC writes in the project at ``cwd`` (see the
    module docstring).
    """
    where = Path.cwd() if cwd is None else cwd
    head = _git(["rev-parse", "HEAD"], where)
    if head is None:
        return GitState(commit=None)
    prefix = (_git(["rev-parse", "--show-prefix"], where) or "").strip()
    status = _git(["status", "--porcelain=v1", "-z", "--untracked-files=all"], where) or ""
    outputs = _dvc_outputs(where)
    changed = tuple(
        path for path in _porcelain_paths(status) if not _written_by_dvc(path, prefix, outputs)
    )
    return GitState(commit=head.strip(), changed=changed)


def describe_changes(changed: tuple[str, ...]) -> str:
    listed = ", ".join(changed[:_LISTED_CHANGES])
    more = len(changed) - _LISTED_CHANGES
    return listed + (f" and {more} more" if more > 0 else "")


def snapshot_as_of(snapshots: pd.DataFrame, horizon_days: int) -> dt.date | None:
    """The as-of date the training snapshots were built for: test cutoff + horizon.

    Read from the data rather than params, because ``snapshots.as_of: null``
    means "the day after the latest transaction", which only the data knows.
    """
    test = snapshots.loc[snapshots[SPLIT] == TEST_SPLIT, CUTOFF]
    if test.empty:
        return None
    cutoff = pd.Timestamp(test.iloc[0]).date()
    return cutoff + dt.timedelta(days=horizon_days)


def run_context(
    stage: str,
    as_of: dt.date | None,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> RunContext:
    return RunContext(
        stage=stage, as_of=as_of, git=git_state(cwd), experiment=dvc_experiment(environ)
    )
