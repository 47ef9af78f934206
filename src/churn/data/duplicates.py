"""Exact duplicate lines: the first copy is kept, every later copy is quarantined.

The staged rows (``churn.data.ingest``) are in file order and carry two 64-bit
hashes of their line (``line_hashes``), so a false duplicate needs both to collide. The
first hashes whose value repeats are found by sorting them in NumPy (SIMD sorts run
several times faster than a DuckDB GROUP BY over millions of distinct keys), a
slice of the hash range at a time so memory stays bounded; only the rows whose
first hash repeats (usually almost none) are then compared on both in DuckDB.
"First" is the lowest ``position`` among the staged rows, i.e. the first in file
order (churn.data.staging).
"""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd

from churn.data.sources import quote_ident, quote_literal

# A wholly empty row repeats without being a copy of anything.
NOT_A_LINE = "empty_row"
_HASHES_PER_SLICE = 16_000_000  # 128 MB of uint64 (twice that while sorting)


def _cells(columns: list[str]) -> list[str]:
    return [f"CAST({quote_ident(c)} AS VARCHAR)" for c in columns]


def line_hashes(columns: list[str]) -> tuple[str, str]:
    """SQL for the two hashes of a whole line: the cells in order, and salted in reverse.

    Both combine the same per-cell hashes, so they fail together only if two different
    cells share a 64-bit hash; otherwise the two combinations collide independently.
    Cheaper than hashing the joined text, which costs a string per row.
    """
    cells = _cells(columns)
    return f"hash({', '.join(cells)})", f"hash('churn', {', '.join(reversed(cells))})"


def _repeated_hashes(con: duckdb.DuckDBPyConnection, source: str) -> np.ndarray:
    """Every first-hash value that occurs more than once in ``source``."""
    found = con.execute(f"SELECT count(*) FROM {source}").fetchone()
    rows = int(found[0]) if found else 0
    bits = math.ceil(math.log2(max(1, math.ceil(rows / _HASHES_PER_SLICE))))
    repeated = []
    for part in range(1 << bits):
        where = f" WHERE line_hash >> {64 - bits} = {part}" if bits else ""
        hashes = con.execute(f"SELECT line_hash FROM {source}{where}").fetchnumpy()["line_hash"]
        values, counts = np.unique(np.asarray(hashes, dtype=np.uint64), return_counts=True)
        repeated.append(values[counts > 1])
    return np.concatenate(repeated) if repeated else np.empty(0, np.uint64)


def find_duplicates(con: duckdb.DuckDBPyConnection, staged: str) -> int:
    """Fill temp table ``duplicate_rows(position)`` with every later copy; return its size.

    ``staged`` names a relation with ``position`` (in file order), ``line_hash``,
    ``line_hash2`` and ``reason``.
    """
    source = (
        f"(SELECT position, line_hash, line_hash2 FROM {quote_ident(staged)}"
        f" WHERE reason IS DISTINCT FROM {quote_literal(NOT_A_LINE)})"
    )
    con.register("repeated_hashes", pd.DataFrame({"line_hash": _repeated_hashes(con, source)}))
    try:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE duplicate_rows AS
            SELECT position FROM {source}
            WHERE line_hash IN (SELECT line_hash FROM repeated_hashes)
            QUALIFY position <> min(position) OVER (PARTITION BY line_hash, line_hash2)
            """
        )
    finally:
        con.unregister("repeated_hashes")
    found = con.execute("SELECT count(*) FROM duplicate_rows").fetchone()
    return int(found[0]) if found else 0
