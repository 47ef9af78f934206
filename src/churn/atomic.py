"""Crash-safe writers: write beside the target, then rename over it.

A reader (DVC, the nightly job, a marketer opening the CSV) must never see half
a file, so every artifact goes through these helpers. Three promises on top:

* The result has the permissions a plain ``open`` would give it (0666 or, for a
  folder, 0777 minus the umask), not ``tempfile``'s private 0600/0700: the list
  goes to a shared drive and the CRM loader may run as another user.
* Every CSV is safe to open in a spreadsheet: text cells go through
  :func:`churn.cells.neutralise`, and a carriage return inside a cell is quoted
  (RFC 4180 line ends), so it cannot start a new row that starts with a formula.
* An operating-system failure (read-only folder, full disk, a folder where the
  file belongs) becomes one :class:`~churn.errors.PathError` line naming the
  target, not a traceback naming a temp file.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from churn.cells import neutralise_frame
from churn.errors import PathError, UserError, describe_os_error, is_disk_full


def current_umask() -> int:
    """The process umask, read from /proc where Linux has it (``os.umask`` can only read
    it by setting it, which briefly changes what files other threads create)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o077)  # meanwhile at most more private, never more open
    os.umask(mask)
    return mask


def file_mode() -> int:
    """What ``open(path, "w")`` would give a new file under the current umask."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """What ``mkdir`` would give a new folder under the current umask."""
    return 0o777 & ~current_umask()


def _path_error(exc: Exception, target: Path, temp: Path | None, own: bool) -> PathError | None:
    """The one-line error for ``exc``, raised while writing ``target`` (through ``temp``),
    or None when ``exc`` is not about writing it (a bug, or an input that fails to read).

    ``own``: ``exc`` came from this module's own create/rename calls, so any OS error
    is about the target. From the caller's writing code only an error naming the
    target or temp file is, or a full disk that names no other file (Arrow and
    zipfile name none; DuckDB names the file, which matters when writers nest).
    """
    if isinstance(exc, UserError):
        return None
    names = (getattr(exc, "filename", None), getattr(exc, "filename2", None))
    named = {Path(name) for name in names if isinstance(name, str | os.PathLike)}
    text = str(exc)  # DuckDB names the file only in its message (as tmp_<name>, absolute)
    ours = (
        bool(named & {target, temp})
        or (temp is not None and temp.name in text)  # a unique random name
        or f'"{target}"' in text
        or f'"{target.absolute()}"' in text
    )
    if is_disk_full(exc):
        anonymous = isinstance(exc, OSError) and not named
        return PathError(describe_os_error(exc, target)) if own or ours or anonymous else None
    if not isinstance(exc, OSError):
        return None
    folders = named & set(target.parents)
    if folders:  # a folder on the way there cannot be made or entered
        return PathError(describe_os_error(exc, max(folders, key=lambda p: len(p.parts))))
    if own or ours:
        return PathError(describe_os_error(exc, target))
    return None


@contextlib.contextmanager
def _writing(target: Path, temp: Path | None = None, own: bool = True) -> Iterator[None]:
    """Turn an OS failure while creating, writing or renaming ``target`` into a PathError."""
    try:
        yield
    except Exception as exc:
        error = _path_error(exc, target, temp, own)
        if error is None:
            raise
        raise error from exc


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it over the target on success.

    The file ends up with the umask's permissions, as if opened plainly.
    """
    with _writing(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
    tmp = Path(tmp_name)
    try:
        with _writing(target, tmp, own=False):
            yield tmp
        with _writing(target, tmp):
            tmp.chmod(file_mode())
            tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder; swap it in for the target folder on success.

    The folder gets the umask's permissions, as if made by a plain ``mkdir``.
    """
    with _writing(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        with _writing(target, tmp):
            tmp.chmod(dir_mode())
        with _writing(target, tmp, own=False):
            yield tmp
        with _writing(target, tmp):
            replace_dir(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_parquet(frame: pd.DataFrame, target: Path) -> None:
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=False)


def write_csv(frame: pd.DataFrame, target: Path) -> None:
    """A CSV safe to open in a spreadsheet (see the module docstring); numbers unchanged."""
    with atomic_path(target) as tmp:
        neutralise_frame(frame).to_csv(
            tmp, index=False, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL
        )


def write_json(payload: Any, target: Path) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def record_json(record: Any) -> dict[str, Any]:
    """A typed result (a dataclass, nested ones included) as the dict its JSON file holds.

    The one place results such as the ingest report and the nightly manifest become
    string-keyed JSON; code that reads them uses their fields.
    """
    return dataclasses.asdict(record)


def write_record(record: Any, target: Path) -> None:
    """Write a typed result as JSON (see :func:`record_json` and :func:`write_json`)."""
    write_json(record_json(record), target)


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
