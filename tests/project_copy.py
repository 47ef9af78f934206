"""A copy of this project in a temporary folder, as a fresh clone holds it, for tests that
run the real DVC pipeline (the end-to-end test, the database source's `dvc repro`)."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def copy_project(repo: Path, files: Iterable[str]) -> None:
    """``files`` (paths relative to the project), ``.dvc/`` without its cache, and the
    ``src/`` and ``bin/`` trees into ``repo``."""
    for name in files:
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / name, repo / name)
    shutil.copytree(
        PROJECT_ROOT / ".dvc", repo / ".dvc", ignore=shutil.ignore_patterns("tmp", "cache")
    )
    for folder in ("src", "bin"):
        shutil.copytree(
            PROJECT_ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
