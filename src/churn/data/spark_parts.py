"""Fixed part names for a folder Spark just wrote, so the same rows give the same folder.

Spark names each part ``part-00000-<job uuid>-c000.snappy.parquet`` (and leaves a
``.part-...crc`` checksum beside it on a local file system): the uuid is new on every
write, so a replay of the same date wrote the same bytes under other names, and the
nightly manifest's fingerprint of the folder (names and bytes) changed every time.
:func:`fix_part_names` renames the parts, in each folder of the write (the partition
folders too), to ``part-00000.parquet``, ``part-00001.parquet``, ... in Spark's own
order (task, then file within the task), so readers that take parts in name order
(pyarrow, DuckDB) see the rows in the same order as before, and drops the checksum
files (Hadoop only checks them when present; their names hold the uuid too).

Call it on the temporary folder, before the writer swaps it in, so the published
folder never holds the random names.
"""

from __future__ import annotations

import re
from pathlib import Path

_SPARK_PART = re.compile(r"^part-(\d+)(?:-.*?-c(\d+))?")


def fix_part_names(folder: Path) -> None:
    """Rename the parts Spark wrote under ``folder`` to ordered fixed names (see above)."""
    for place in [folder, *sorted(p for p in folder.rglob("*") if p.is_dir())]:
        for checksum in place.glob(".*.crc"):
            checksum.unlink()
        parts = sorted((p for p in place.iterdir() if _is_part(p)), key=_spark_order)
        width = max(5, len(str(len(parts) - 1)))
        for number, part in enumerate(parts):
            name = f"part-{number:0{width}d}.parquet"
            if part.name != name:
                part.rename(place / name)


def _is_part(path: Path) -> bool:
    return path.is_file() and _SPARK_PART.match(path.name) is not None


def _spark_order(path: Path) -> tuple[int, int, str]:
    """Spark's task number, then the file's number within the task (``-c001`` when one
    task wrote several files); the name breaks any tie."""
    match = _SPARK_PART.match(path.name)
    assert match is not None
    return int(match.group(1)), int(match.group(2) or 0), path.name
