"""Publishing nightly partitions: whole folders swapped in, a pointer, recovery after a kill."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from churn.nightly import partitions
from churn.nightly.lock import RunLockedError, exclusive_lock

DAY1, DAY2 = dt.date(2026, 9, 1), dt.date(2026, 9, 2)


def _stage(root: Path, as_of: dt.date, text: str) -> Path:
    folder = root / partitions.STAGING / f"run-{as_of}-{text}"
    folder.mkdir(parents=True)
    (folder / "scores.csv").write_text(text)
    (folder / partitions.MANIFEST).write_text(json.dumps({"as_of": as_of.isoformat()}))
    return folder


def test_publish_swaps_folders_and_points_latest_at_the_newest_date(tmp_path: Path) -> None:
    partitions.publish(tmp_path, DAY2, _stage(tmp_path, DAY2, "b"))
    partitions.publish(tmp_path, DAY1, _stage(tmp_path, DAY1, "a"))
    assert partitions.published_dates(tmp_path) == [DAY1, DAY2]
    assert partitions.previous_date(tmp_path, DAY2) == DAY1
    assert partitions.previous_date(tmp_path, DAY1) is None
    latest = json.loads((tmp_path / partitions.LATEST).read_text())
    assert latest == {
        "as_of": "2026-09-02",
        "files": ["manifest.json", "scores.csv"],
        "partition": "as_of=2026-09-02",
    }
    partitions.publish(tmp_path, DAY1, _stage(tmp_path, DAY1, "a2"))  # a replay replaces
    assert (tmp_path / "as_of=2026-09-01" / "scores.csv").read_text() == "a2"
    assert not list(tmp_path.glob(".as_of=*"))
    umask = os.umask(0)
    os.umask(umask)
    for path in (tmp_path / "as_of=2026-09-01", tmp_path / "as_of=2026-09-01" / "scores.csv"):
        assert path.stat().st_mode & 0o044 == 0o044 & ~umask  # readable like any new file


def test_a_folder_without_manifest_is_neither_published_nor_publishable(tmp_path: Path) -> None:
    (tmp_path / "as_of=2026-09-03").mkdir()
    assert partitions.published_dates(tmp_path) == []
    staged = _stage(tmp_path, DAY1, "x")
    (staged / partitions.MANIFEST).unlink()
    with pytest.raises(AssertionError, match="partial run"):
        partitions.publish(tmp_path, DAY1, staged)
    assert not (tmp_path / "as_of=2026-09-01").exists()


def test_recover_after_a_kill(tmp_path: Path) -> None:
    """What a SIGKILL can leave: a staging folder, and a replay's old folder set aside."""
    partitions.publish(tmp_path, DAY2, _stage(tmp_path, DAY2, "b"))
    _stage(tmp_path, DAY1, "half")
    (tmp_path / "as_of=2026-09-02").rename(tmp_path / ".as_of=2026-09-02.old")
    partitions.recover(tmp_path)
    assert not (tmp_path / partitions.STAGING).exists()
    assert (tmp_path / "as_of=2026-09-02" / "scores.csv").read_text() == "b"
    assert not list(tmp_path.glob(".as_of=*"))


def test_staging_dir_is_removed_whatever_happens(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), partitions.staging_dir(tmp_path, DAY1) as folder:
        (folder / "half.parquet").write_bytes(b"PAR1")
        raise RuntimeError("crash")
    assert not any((tmp_path / partitions.STAGING).iterdir())


def test_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    with exclusive_lock(tmp_path):
        with (
            pytest.raises(RunLockedError, match=f"pid {os.getpid()}") as info,
            exclusive_lock(tmp_path),
        ):
            pass
        assert info.value.exit_code == 10
    with exclusive_lock(tmp_path):
        pass


def test_replay_swaps_in_one_step_and_falls_back_to_two_renames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    (b / "x").write_text("b")
    assert partitions.exchange(a, b)  # Linux: renameat2(RENAME_EXCHANGE)
    assert (a / "x").read_text() == "b" and (b / "x").read_text() == "a"

    partitions.publish(tmp_path, DAY1, _stage(tmp_path, DAY1, "one"))
    monkeypatch.setattr(partitions, "exchange", lambda a, b: False)  # e.g. not Linux
    partitions.publish(tmp_path, DAY1, _stage(tmp_path, DAY1, "two"))
    assert (tmp_path / "as_of=2026-09-01" / "scores.csv").read_text() == "two"
    assert not list(tmp_path.glob(".as_of=*"))


def test_recover_repoints_a_stale_latest_and_removes_its_temp_files(tmp_path: Path) -> None:
    """A kill after the new partition was renamed in, while ``latest.json`` was being
    rewritten: the pointer still names the day before, beside its half-written temp file."""
    partitions.publish(tmp_path, DAY1, _stage(tmp_path, DAY1, "a"))
    stale = (tmp_path / partitions.LATEST).read_text()
    (tmp_path / "as_of=2026-09-02").mkdir()
    _stage(tmp_path, DAY2, "b").rename(tmp_path / ".swap")
    (tmp_path / "as_of=2026-09-02").rmdir()
    (tmp_path / ".swap").rename(tmp_path / "as_of=2026-09-02")
    (tmp_path / ".latest.json.k2j4x9.tmp").write_text('{"as_of": "2026-')
    assert partitions.previous_date(tmp_path, DAY2 + dt.timedelta(days=1)) == DAY2

    partitions.recover(tmp_path)
    latest = json.loads((tmp_path / partitions.LATEST).read_text())
    assert latest["as_of"] == "2026-09-02" and latest["files"] == ["manifest.json", "scores.csv"]
    assert not list(tmp_path.glob(".latest.json.*"))

    before = (tmp_path / partitions.LATEST).stat().st_mtime_ns
    partitions.recover(tmp_path)  # nothing to repair: the pointer is not rewritten
    assert (tmp_path / partitions.LATEST).stat().st_mtime_ns == before
    assert stale != (tmp_path / partitions.LATEST).read_text()
