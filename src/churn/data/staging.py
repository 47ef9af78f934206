"""Where ingest's staged rows wait between the read and the two outputs.

Every row is staged once, in file order, with its parsed values, reason and line
hashes; the duplicate check, the row numbers and both outputs then read it. A
DuckDB temp table is the cheapest place (on 3 M rows, filling it and writing the
outputs from it took 1.3 s less CPU than a Parquet file, of about 6), as long as
it fits in ``ingest.memory_limit``: past that DuckDB spills it to disk block by
block, and at 10 M rows (2.4 GB staged, 1 GB limit) that cost 3.4 s more than
Parquet. So a source whose estimated staged size fits in the limit is staged in
memory, anything larger in a Parquet file in the scratch folder.

Either way the rows are read through the view ``staged`` whose ``position``
(0, 1, ...) follows file order: with ``preserve_insertion_order`` a temp table's
``rowid`` and a COPY's row order both follow the scan, even when DuckDB reads in
parallel, which ``row_number() OVER (...)`` without an ORDER BY does not promise.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from churn.data.sources import quote_literal

STAGED = "staged"
# A staged row in memory: 9 parsed values, reason, file, raw text, two hashes (measured
# 235 bytes on the benchmark export); rounded up for longer ids and countries.
ROW_BYTES = 250
_UNITS = {"bytes": 0, "KiB": 1, "MiB": 2, "GiB": 3, "TiB": 4, "PiB": 5}


def memory_limit_bytes(con: duckdb.DuckDBPyConnection) -> int:
    """DuckDB's memory limit as it reports it (``953.6 MiB``), in bytes."""
    found = con.execute("SELECT current_setting('memory_limit')").fetchone()
    match = re.fullmatch(r"([\d.]+)\s*(\w+)", str(found[0]) if found else "")
    if match is None or match.group(2) not in _UNITS:
        return 0
    return int(float(match.group(1)) * 1024 ** _UNITS[match.group(2)])


def fits_in_memory(con: duckdb.DuckDBPyConnection, rows_estimate: int) -> bool:
    return rows_estimate * ROW_BYTES <= memory_limit_bytes(con)


def stage(con: duckdb.DuckDBPyConnection, query: str, scratch: Path, in_memory: bool) -> str:
    """Run ``query`` once, keep its rows in file order; return the view to read them by."""
    if in_memory:
        con.execute(f"CREATE TEMP TABLE {STAGED}_rows AS {query}")
        source = f"SELECT rowid AS position, * FROM {STAGED}_rows"
    else:
        path = scratch / "staged.parquet"
        con.execute(f"COPY ({query}) TO {quote_literal(str(path))} (FORMAT parquet)")
        source = (
            "SELECT file_row_number AS position, * EXCLUDE (file_row_number)"
            f" FROM read_parquet({quote_literal(str(path))}, file_row_number=true)"
        )
    con.execute(f"CREATE TEMP VIEW {STAGED} AS {source}")
    return STAGED
