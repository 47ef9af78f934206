"""churn.atomic: files and folders get the umask's permissions, and an OS failure while
writing becomes one PathError line naming the target (not the temp file)."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from churn.atomic import (
    atomic_dir,
    atomic_path,
    current_umask,
    write_csv,
    write_json,
    write_parquet,
)
from churn.errors import PathError
from churn.scoring.export import write_xlsx


@pytest.fixture(params=[0o022, 0o027])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """Run the test under this umask; the previous one is restored after."""
    previous = os.umask(request.param)
    try:
        yield int(request.param)
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_current_umask_reads_without_changing(umask: int) -> None:
    assert current_umask() == umask
    assert current_umask() == umask


def test_written_files_and_folders_follow_the_umask(umask: int, tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1, 2]})
    write_csv(frame, tmp_path / "a.csv")
    write_parquet(frame, tmp_path / "a.parquet")
    write_json({"a": 1}, tmp_path / "a.json")
    with atomic_path(tmp_path / "a.xlsx") as tmp:
        write_xlsx(frame, tmp)
    with atomic_path(tmp_path / "plain.txt") as tmp:
        tmp.write_text("x")
    with atomic_dir(tmp_path / "model") as folder:
        (folder / "inside.txt").write_text("x")
    plain = tmp_path / "opened-plainly.txt"
    plain.write_text("x")
    assert _mode(plain) == 0o666 & ~umask  # what every writer must match
    for name in ("a.csv", "a.parquet", "a.json", "a.xlsx", "plain.txt", "model/inside.txt"):
        assert _mode(tmp_path / name) == 0o666 & ~umask, name
    assert _mode(tmp_path / "model") == 0o777 & ~umask


def test_a_folder_at_the_target_names_the_target(tmp_path: Path) -> None:
    target = tmp_path / "list.csv"
    target.mkdir()
    with pytest.raises(PathError, match=rf"^{target} is a folder where a file is expected"):
        write_csv(pd.DataFrame({"a": [1]}), target)
    assert [p.name for p in tmp_path.iterdir()] == ["list.csv"]  # no temp file left


def test_a_file_on_the_way_names_that_file(tmp_path: Path) -> None:
    (tmp_path / "exports").write_text("a file, not a folder")
    with pytest.raises(PathError, match=rf"^{tmp_path / 'exports'} already exists and is not"):
        write_json({}, tmp_path / "exports" / "list.json")


def test_a_full_disk_names_the_target(tmp_path: Path) -> None:
    target = tmp_path / "scores.parquet"
    with pytest.raises(PathError, match=rf"^disk full: .*\(writing {target}\)"):  # noqa: SIM117
        with atomic_path(target):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert list(tmp_path.iterdir()) == []


def test_nested_writers_blame_the_file_duckdb_names(tmp_path: Path) -> None:
    """DuckDB keeps the file only in its message; the writer whose temp file it names
    reports it, not whichever writer happens to be innermost."""
    outer, inner = tmp_path / "transactions.parquet", tmp_path / "quarantine.parquet"
    with pytest.raises(PathError, match=rf"\(writing {outer}\)"):  # noqa: SIM117
        with atomic_path(outer) as outer_tmp, atomic_path(inner):
            raise RuntimeError(
                f'IO Error: Could not write file "{outer_tmp.parent}/tmp_{outer_tmp.name}":'
                " No space left on device"
            )


def test_errors_about_other_files_pass_through(tmp_path: Path) -> None:
    """Reading an input inside a writer is not a failure to write the target."""
    with pytest.raises(FileNotFoundError):  # noqa: SIM117
        with atomic_path(tmp_path / "out.parquet"):
            (tmp_path / "missing-input.csv").read_text()
    with pytest.raises(KeyError):  # noqa: SIM117
        with atomic_path(tmp_path / "out.parquet"):
            raise KeyError("a bug stays a bug")
