"""Published nightly outputs: one folder per as-of date, swapped in whole, plus a pointer.

Layout under ``nightly.output_root``::

    as_of=2026-11-21/   scores.parquet, retention_targets.csv, ingest_report.json,
                        manifest.json (written last; a folder without it is not a run)
    latest.json         the newest published as-of date and its files
    .staging/           runs in progress, their temp files included (private, removed
                        when a run ends, and by the next run after a kill)
    .lock               see churn.nightly.lock

A run writes everything into its own staging folder and publishes with
``rename``, which is atomic within one file system, so a reader (or a crash)
sees either the previous folder or the new one, never a mix. Replaying a
published date exchanges the two folders in one ``renameat2`` call on Linux;
elsewhere it takes two renames, and ``recover`` puts the old folder back if a
crash lands between them.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from churn.atomic import atomic_path, replace_dir

MANIFEST = "manifest.json"
LATEST = "latest.json"
STAGING = ".staging"
_PARTITION = re.compile(r"^as_of=(\d{4}-\d{2}-\d{2})$")
# churn.atomic.atomic_path's temp file for the pointer: ".latest.json.<random>.tmp".
_POINTER_TMP = re.compile(rf"^\.{re.escape(LATEST)}\..+\.tmp$")


def partition_name(as_of: dt.date) -> str:
    return f"as_of={as_of.isoformat()}"


def partition_dir(root: Path, as_of: dt.date) -> Path:
    return root / partition_name(as_of)


def published_dates(root: Path) -> list[dt.date]:
    """As-of dates with a complete published folder (one holding its manifest), oldest first."""
    if not root.exists():
        return []
    dates = []
    for child in root.iterdir():
        match = _PARTITION.match(child.name)
        if match and (child / MANIFEST).is_file():
            dates.append(dt.date.fromisoformat(match.group(1)))
    return sorted(dates)


def previous_date(root: Path, as_of: dt.date) -> dt.date | None:
    """The newest published date strictly before ``as_of`` (what a run compares against)."""
    earlier = [d for d in published_dates(root) if d < as_of]
    return earlier[-1] if earlier else None


def read_manifest(root: Path, as_of: dt.date) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((partition_dir(root, as_of) / MANIFEST).read_text())
    return payload


def recover(root: Path) -> None:
    """Undo what a killed run left behind, whenever it was killed.

    * its staging folder (outputs in progress and every temp file of the run, the
      ingest scratch as large as the export among them; see ``temp_files_in``);
    * a half-finished swap of a replayed date (the old folder parked beside);
    * ``latest.json``: a kill after the new partition was renamed in but before the
      pointer was rewritten leaves it on the previous date, and no later run would
      notice (each compares with the newest *folder*), so it is rewritten when it
      does not match what is published; and the pointer's temp files.

    Call with the lock held, so no live run's files are touched.
    """
    shutil.rmtree(root / STAGING, ignore_errors=True)
    if not root.exists():
        return
    for child in root.iterdir():
        if _POINTER_TMP.match(child.name):
            child.unlink(missing_ok=True)
            continue
        match = re.match(r"^\.(as_of=\d{4}-\d{2}-\d{2})\.old$", child.name)
        if not match:
            continue
        live = root / match.group(1)
        if live.exists():
            shutil.rmtree(child)
        else:
            child.rename(live)
    pointer = _pointer_text(root)
    latest = root / LATEST
    if pointer is not None and (not latest.is_file() or latest.read_text() != pointer):
        write_latest(root)


@contextlib.contextmanager
def staging_dir(root: Path, as_of: dt.date) -> Iterator[Path]:
    """A private folder for one run's outputs, removed on the way out whatever happens."""
    (root / STAGING).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{partition_name(as_of)}.", dir=root / STAGING))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def temp_files_in(folder: Path) -> Iterator[Path]:
    """Send every temporary file of the block into ``folder`` (``tempfile.tempdir``).

    A run's temp files are large (ingest stages the whole export; DuckDB spills;
    MLflow downloads the model) and ``finally`` clauses and ``atexit`` handlers do
    not run on SIGKILL. Inside the run's staging folder the next run's
    ``recover`` removes them, whoever created them; in /tmp they stayed for good.
    """
    folder.mkdir(parents=True, exist_ok=True)
    previous = tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = previous


def publish(root: Path, as_of: dt.date, staged: Path) -> Path:
    """Move the staged folder in as the ``as_of`` partition, then repoint ``latest.json``."""
    if not (staged / MANIFEST).is_file():
        raise AssertionError(f"{staged} has no {MANIFEST}; refusing to publish a partial run")
    _readable(staged)
    target = partition_dir(root, as_of)
    if target.exists() and exchange(staged, target):
        shutil.rmtree(staged)  # now the previous folder
    else:
        replace_dir(staged, target)
    write_latest(root)
    return target


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False where the kernel, libc or file system cannot, and the caller
    falls back to two renames (and ``recover`` covers the gap between them).
    """
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def write_latest(root: Path) -> None:
    """Point ``latest.json`` at the newest published date (a replay of an older date
    leaves it where it was)."""
    pointer = _pointer_text(root)
    if pointer is None:
        return
    with atomic_path(root / LATEST) as tmp:
        tmp.write_text(pointer)
        _readable(tmp)


def _pointer_text(root: Path) -> str | None:
    """What ``latest.json`` should hold for the published folders (None: nothing published)."""
    dates = published_dates(root)
    if not dates:
        return None
    newest = partition_dir(root, dates[-1])
    pointer = {
        "as_of": dates[-1].isoformat(),
        "partition": newest.name,
        "files": sorted(p.name for p in newest.iterdir() if p.is_file()),
    }
    return json.dumps(pointer, indent=2, sort_keys=True) + "\n"


def _readable(path: Path) -> None:
    """Give published files the umask's permissions, as a plain ``open`` would.

    Staging folders and atomic temp files are created private (0700/0600) by
    ``tempfile``; the CRM loader reading the list may run as another user.
    """
    umask = os.umask(0)
    os.umask(umask)
    if path.is_dir():
        path.chmod(0o777 & ~umask)
        for child in path.iterdir():
            if child.is_file():
                child.chmod(0o666 & ~umask)
    else:
        path.chmod(0o666 & ~umask)
