"""Row numbers within each source file, counting the lines the CSV reader rejected.

The staged rows are in file order (churn.data.ingest), so a staged row's position
gives its number among the rows its file *yielded*. The reader numbers a rejected
line by its record in the file. Merging the two: a rejected record numbered ``r``
that is the ``j``-th rejected one in its file has ``r - j`` yielded rows before it;
every yielded row after it moves down by the lines it spans. Rows are numbered
from 1 = the first data row of the file, as the quarantine always did.

The reader skips blank lines without a trace but counts them in ``r``, so in a
file with blank lines a rejected line is placed as if they were rows (after the
yielded rows that really follow them, never before a row that precedes it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb


@dataclass(frozen=True)
class RowCounts:
    rows_in: int  # every row of every file, rejected lines included
    rejected: int  # lines the reader rejected


def number_rows(
    con: duckdb.DuckDBPyConnection, staged: str, files: list[Path], rejected: str
) -> RowCounts:
    """Fill three temp tables and count the rows in all files.

    * ``file_starts(source_file, file_index, start, yielded)``: where each file's rows
      begin in ``staged`` (rows in file order, numbered by ``position`` from 0);
    * ``rejected_rows(source_file, source_row, line_text)``: one row per rejected line;
    * ``row_shifts(source_file, after, shift)``: a yielded row numbered ``k`` within
      its file moves down by the ``shift`` of the largest ``after`` below ``k``.

    ``rejected`` is SQL with ``source_file, record, part, line_text``
    (churn.data.csvscan.rejected_lines).
    """
    yielded = _file_starts(con, staged, files)
    _place_rejected_records(con, rejected)
    _rejected_rows(con, rejected)
    _row_shifts(con)
    found = con.execute("SELECT count(*) FROM rejected_rows").fetchone()
    rejected_count = int(found[0]) if found else 0
    return RowCounts(yielded + rejected_count, rejected_count)


def _file_starts(con: duckdb.DuckDBPyConnection, staged: str, files: list[Path]) -> int:
    """Fill ``file_starts``, the files in the order they were staged; return the rows
    yielded in all. A file that yielded no row still gets its line (with 0), so its
    rejected lines have a file to be placed in."""
    counts = dict(
        con.execute(f"SELECT source_file, count(*) FROM {staged} GROUP BY source_file").fetchall()
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE file_starts"
        " (source_file VARCHAR, file_index INTEGER, start BIGINT, yielded BIGINT)"
    )
    rows, position = [], 0
    for index, path in enumerate(files):
        n = int(counts.get(str(path), 0))
        rows.append((str(path), index, position, n))
        position += n
    con.executemany("INSERT INTO file_starts VALUES (?, ?, ?, ?)", rows)
    return position


def _place_rejected_records(con: duckdb.DuckDBPyConnection, rejected: str) -> None:
    """Fill ``rejected_records``: per rejected record (which may span lines), the yielded
    rows of its file before it (``after``, the ``r - j`` of this module's docstring,
    clamped to the file) and the rejected lines before it (``lines_before``)."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE rejected_records AS
        WITH records AS (
            SELECT source_file, record, count(*) AS lines
            FROM ({rejected}) GROUP BY ALL
        ),
        placed AS (
            SELECT r.source_file, r.record, r.lines,
                   greatest(0, least(f.yielded, r.record - row_number() OVER (
                       PARTITION BY r.source_file ORDER BY r.record))) AS after,
                   coalesce(sum(r.lines) OVER (
                       PARTITION BY r.source_file ORDER BY r.record
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS lines_before
            FROM records r JOIN file_starts f USING (source_file)
        )
        SELECT * FROM placed
        """
    )


def _rejected_rows(con: duckdb.DuckDBPyConnection, rejected: str) -> None:
    """Fill ``rejected_rows``: each rejected line numbered after the yielded rows and the
    rejected lines before it, so the quarantine shows where it was in the file."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE rejected_rows AS
        SELECT l.source_file, CAST(r.after + r.lines_before + l.part AS BIGINT) AS source_row,
               l.line_text
        FROM ({rejected}) l JOIN rejected_records r USING (source_file, record)
        """
    )


def _row_shifts(con: duckdb.DuckDBPyConnection) -> None:
    """Fill ``row_shifts``: past each placing point, yielded rows move down by every
    rejected line up to and including the records placed there."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE row_shifts AS
        SELECT source_file, after, CAST(max(lines_before + lines) AS BIGINT) AS shift
        FROM rejected_records GROUP BY ALL
        """
    )


def yielded_row_sql(staged_alias: str, shifted: bool) -> tuple[str, str]:
    """(JOIN clause, row-number SQL) numbering a ``staged`` row within its file.

    ``shifted`` adds the move past rejected lines (an ASOF join, which costs a sort of
    the rows; without rejected lines it is skipped).
    """
    k = f"({staged_alias}.position - f.start + 1)"
    join = f" JOIN file_starts f ON f.source_file = {staged_alias}.source_file"
    if not shifted:
        return join, k
    join += (
        f" ASOF LEFT JOIN row_shifts rs"
        f" ON rs.source_file = {staged_alias}.source_file AND {k} > rs.after"
    )
    return join, f"{k} + coalesce(rs.shift, 0)"
