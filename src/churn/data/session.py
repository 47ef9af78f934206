"""DuckDB connections that mean the same thing on every host: session time zone UTC.

DuckDB's session time zone defaults to the host's (``TZ``). It decides how a
time-zone-aware value (a Parquet ``TIMESTAMP WITH TIME ZONE``, a text cell
``10:58:00-08:00``) turns into the naive timestamps the pipeline works in, and how
naive text is read as an instant. Left to the host, the same file gave 10:58, 06:58
and 16:28 on three machines. Every connection the product opens goes through here,
so canonical ``ts`` is a naive UTC timestamp wherever the job runs.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

SESSION_TIME_ZONE = "UTC"


def use_utc(con: duckdb.DuckDBPyConnection) -> None:
    """Set the session time zone (a connection option cannot: it needs ICU loaded first)."""
    con.execute(f"SET TimeZone = '{SESSION_TIME_ZONE}'")


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection in UTC."""
    con = duckdb.connect()
    use_utc(con)
    return con


def parquet_files(path: Path) -> str:
    """What DuckDB's ``read_parquet`` reads for ``path``: the file, or every part of the
    folder Spark writes (``engine: pyspark``)."""
    return str(path / "**" / "*.parquet") if path.is_dir() else str(path)
