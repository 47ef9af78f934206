"""Crash-safe writers: write beside the target, then rename over it.

A reader (DVC, the nightly job, a marketer opening the CSV) must never see half
a file, so every artifact goes through these helpers.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it over the target on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder; swap it in for the target folder on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        replace_dir(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_parquet(frame: pd.DataFrame, target: Path) -> None:
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=False)


def write_csv(frame: pd.DataFrame, target: Path) -> None:
    with atomic_path(target) as tmp:
        frame.to_csv(tmp, index=False)


def write_json(payload: Any, target: Path) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def retired_dir(target: Path) -> Path:
    """Where :func:`replace_dir` parks the previous folder while the new one moves in."""
    return target.with_name(f".{target.name}.old")


def replace_dir(source: Path, target: Path) -> None:
    """Put folder ``source`` in place of ``target``: two renames, the old one parked beside.

    A crash between the renames leaves the previous folder at :func:`retired_dir`,
    whole, for a later run to move back.
    """
    old = retired_dir(target)
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        target.replace(old)
    source.replace(target)
    shutil.rmtree(old, ignore_errors=True)
