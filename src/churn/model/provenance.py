"""What identifies a run without MLflow: the code's commit, a data file's fingerprint and
the tracking store's URI.

Kept apart from churn.model.tracking, which imports MLflow (seconds at start-up): the
nightly job records these in its manifest and names the store before any MLflow call,
and MLflow itself is opened on a thread beside the job's first steps (issue 20).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from churn.config import TrackingConfig

_SQLITE = "sqlite:///"


def _real_project_dir(cwd: Path) -> Path:
    """Where ``cwd`` is in the real project when a stage runs in a ``dvc exp run --temp``
    or ``--queue`` workspace (a copy of the repository under ``<DVC_ROOT>/.dvc/tmp``, with
    its own ``.dvc``), else ``cwd`` itself."""
    root = os.environ.get("DVC_ROOT")
    if not root:
        return cwd
    project = Path(root).resolve()
    if not cwd.is_relative_to(project / ".dvc"):
        return cwd
    for workspace in (cwd, *cwd.parents):
        if workspace == project:
            break
        if (workspace / ".dvc").is_dir():
            return project / cwd.relative_to(workspace)
    return cwd


def tracking_uri(config: TrackingConfig) -> str:
    """``MLFLOW_TRACKING_URI``, else ``tracking.uri``; a relative SQLite path used in a
    temporary ``dvc exp run`` workspace points into the real project instead, so the
    runs of ``--temp``/``--queue`` experiments do not vanish with the workspace."""
    configured = os.environ.get("MLFLOW_TRACKING_URI") or config.uri
    if not configured.startswith(_SQLITE):
        return configured
    database = Path(configured[len(_SQLITE) :])
    cwd = Path.cwd().resolve()
    project = _real_project_dir(cwd)
    if database.is_absolute() or project == cwd:
        return configured
    return f"{_SQLITE}{project / database}"


def git_commit(cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def file_fingerprint(path: Path) -> str:
    """sha256 of a file's bytes, read in chunks so a large Parquet file costs no memory;
    for a folder (the parts Spark writes), of every file's relative name and bytes."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]
