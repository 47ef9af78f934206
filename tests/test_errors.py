"""OS errors in words: what happened to which path, and what to do (one line)."""

from __future__ import annotations

import errno
import os

import pytest

from churn.errors import describe_os_error, is_disk_full


def _os_error(code: int, filename: str | None = None) -> OSError:
    return OSError(code, os.strerror(code), filename)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (errno.EACCES, "permission denied: /x/list.csv (check the owner and mode"),
        (errno.EROFS, "/x/list.csv is on a read-only file system"),
        (errno.EISDIR, "/x/list.csv is a folder where a file is expected"),
        (errno.ENOTDIR, "/x/list.csv: part of this path is a file where a folder is expected"),
        (errno.ENOENT, "/x/list.csv not found"),
        (errno.ENOSPC, "disk full: no space left on the device (writing /x/list.csv)"),
        (errno.EIO, "Input/output error: /x/list.csv"),
    ],
)
def test_each_error_names_the_path(code: int, expected: str) -> None:
    message = describe_os_error(_os_error(code, "/x/list.csv"))
    assert message.startswith(expected)
    assert "\n" not in message


def test_a_path_given_wins_over_the_temp_file_in_the_error() -> None:
    error = _os_error(errno.EROFS, "/x/.list.csv.abc123.tmp")
    assert describe_os_error(error, "/x/list.csv").startswith("/x/list.csv is on a read-only")


def test_full_disk_from_libraries_without_errno() -> None:
    duckdb_like = RuntimeError('IO Error: Could not write file "/x/a": No space left on device')
    assert is_disk_full(duckdb_like) and not is_disk_full(RuntimeError("other"))
    assert describe_os_error(duckdb_like).startswith(
        'disk full: no space left on the device (IO Error: Could not write file "/x/a"'
    )


def test_without_a_path_the_error_text_stays() -> None:
    assert describe_os_error(ConnectionRefusedError(111, "Connection refused")) == (
        "Connection refused"
    )
