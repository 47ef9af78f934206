"""Fixed part names for Spark-written folders (churn.data.spark_parts): Spark's random job
id leaves the names, Spark's order (task, then file within the task) is kept, the
checksum files go, in every partition folder. (On Spark itself: tests/stages/test_spark_path.py.)"""

from __future__ import annotations

from pathlib import Path

from churn.data.spark_parts import fix_part_names
from churn.model.provenance import file_fingerprint


def _spark_write(folder: Path, job: str) -> None:
    """What Spark leaves on a local disk: parts named by task, job id and file counter,
    their checksums, and an empty _SUCCESS with its own."""
    for sub in (folder, folder / "cutoff_date=2026-01-01"):
        sub.mkdir(parents=True, exist_ok=True)
        for task, counter, text in [(10, 0, "c"), (2, 1, "b"), (2, 0, "a")]:
            name = f"part-{task:05d}-{job}-c{counter:03d}.snappy.parquet"
            (sub / name).write_text(text)
            (sub / f".{name}.crc").write_text(job)
    (folder / "_SUCCESS").touch()
    (folder / "._SUCCESS.crc").write_text(job)


def test_parts_get_ordered_fixed_names(tmp_path: Path) -> None:
    _spark_write(tmp_path / "one", "0a1b-uuid-one")
    fix_part_names(tmp_path / "one")
    for sub in (tmp_path / "one", tmp_path / "one" / "cutoff_date=2026-01-01"):
        parts = sorted(p.name for p in sub.iterdir() if p.is_file())
        names = ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
        assert [n for n in parts if n != "_SUCCESS"] == names
        assert [(sub / n).read_text() for n in names] == ["a", "b", "c"]  # Spark's order
    assert (tmp_path / "one" / "_SUCCESS").is_file()


def test_the_same_rows_give_the_same_fingerprint(tmp_path: Path) -> None:
    """Two writes of the same bytes under two job ids: one fingerprint once renamed."""
    for name, job in (("one", "0a1b-uuid-one"), ("two", "9f8e-uuid-two")):
        _spark_write(tmp_path / name, job)
    assert file_fingerprint(tmp_path / "one") != file_fingerprint(tmp_path / "two")
    fix_part_names(tmp_path / "one")
    fix_part_names(tmp_path / "two")
    assert file_fingerprint(tmp_path / "one") == file_fingerprint(tmp_path / "two")
    fix_part_names(tmp_path / "two")  # again: nothing moves
    assert file_fingerprint(tmp_path / "one") == file_fingerprint(tmp_path / "two")
