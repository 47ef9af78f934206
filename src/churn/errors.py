"""The exception types that mean "the user can fix this".

The CLI turns them into a single line on stderr and a non-zero exit, with no
traceback; anything else is a bug and keeps its traceback. Operating-system
errors (a read-only folder, a full disk, a folder where a file belongs) are
the user's to fix too: :func:`describe_os_error` says in words what happened
and to which path, so a cron log shows what to do.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


class UserError(Exception):
    """A problem in the input, the params or the environment that the user can fix."""

    exit_code = 2


class PathError(UserError):
    """A file or folder cannot be read or written (permissions, full disk, wrong kind)."""


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_DISK_FULL_TEXT = tuple(os.strerror(code) for code in _DISK_FULL)

_HINTS = {
    errno.EACCES: "permission denied: {path} (check the owner and mode of it and its folder)",
    errno.EPERM: "permission denied: {path} (check the owner and mode of it and its folder)",
    errno.EROFS: "{path} is on a read-only file system (point that path to a writable folder)",
    errno.EISDIR: "{path} is a folder where a file is expected (check the path)",
    errno.ENOTDIR: "{path}: part of this path is a file where a folder is expected",
    errno.EEXIST: "{path} already exists and is not a folder (move it away or change the path)",
    errno.ENOENT: "{path} not found",
}


def is_disk_full(exc: BaseException) -> bool:
    """A full disk or quota, also from libraries that drop the errno (DuckDB and
    Arrow keep only the C library's text in their message)."""
    if getattr(exc, "errno", None) in _DISK_FULL:
        return True
    return any(text in str(exc) for text in _DISK_FULL_TEXT)


def describe_os_error(exc: BaseException, path: Path | str | None = None) -> str:
    """One line naming ``path`` (default: the error's own file name) and what to do."""
    if path is None:
        path = getattr(exc, "filename", None)
    if is_disk_full(exc):
        where = f"writing {path}" if path is not None else _first_line(exc)
        return (
            f"disk full: no space left on the device ({where}); free space there,"
            " or point the output elsewhere in params.yaml"
        )
    hint = _HINTS.get(getattr(exc, "errno", None) or 0)
    if path is not None and hint is not None:
        return hint.format(path=path)
    text = getattr(exc, "strerror", None) or _first_line(exc)
    return f"{text}: {path}" if path is not None else text


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
