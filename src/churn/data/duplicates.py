"""Exact duplicate lines: the first copy is kept, every later copy is quarantined.

The staged rows (``churn.data.ingest``) are in file order and carry two 64-bit
hashes of their line (``line_hashes``), so a false duplicate needs both to collide. Lines are
grouped by the first hash alone (cheap, and usually almost nothing repeats), then
only the rows whose hash repeats are compared on both; "first" is the lowest
position (``rowid``) in the staged table, i.e. the first in file order.
"""

from __future__ import annotations

import duckdb

from churn.data.sources import quote_ident, quote_literal

# A wholly empty row repeats without being a copy of anything.
NOT_A_LINE = "empty_row"


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


def find_duplicates(con: duckdb.DuckDBPyConnection, staged: str) -> int:
    """Fill temp table ``duplicate_rows(position)`` with every later copy; return its size.

    ``staged`` names a table with ``line_hash``, ``line_hash2`` and ``reason`` whose
    ``rowid`` follows file order; a row's position is its ``rowid``.
    """
    source = (
        f"(SELECT rowid AS position, line_hash, line_hash2 FROM {quote_ident(staged)}"
        f" WHERE reason IS DISTINCT FROM {quote_literal(NOT_A_LINE)})"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE duplicate_rows AS
        WITH repeated AS (
            SELECT line_hash FROM {source} GROUP BY line_hash HAVING count(*) > 1
        ),
        candidates AS (
            SELECT * FROM {source} WHERE line_hash IN (SELECT line_hash FROM repeated)
        )
        SELECT position FROM candidates
        QUALIFY position <> min(position) OVER (PARTITION BY line_hash, line_hash2)
        """
    )
    found = con.execute("SELECT count(*) FROM duplicate_rows").fetchone()
    return int(found[0]) if found else 0
