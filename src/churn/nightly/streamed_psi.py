"""The drift guards' PSI from aggregates: DuckDB streams the score tables' Parquet parts.

:func:`churn.nightly.guards.psi` needs both columns in memory. With ``engine: pyspark``
the score tables are folders of parts that may hold 100 M rows, so here DuckDB reads
them column by column and only numbers reach Python: the reference's quantile edges
(NumPy's linear interpolation between order statistics DuckDB picks) and each side's
count per bin (a value's bin is the number of edges at or below it, as
``searchsorted(side="right")``). The counts go through the same
:func:`~churn.nightly.guards.psi_from_counts`, so the values are the pandas path's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import duckdb
import numpy as np

from churn.data.session import connect, parquet_files
from churn.data.sources import quote_ident
from churn.nightly.guards import PsiResult, psi_from_counts


def parquet_psi(
    reference: Path,
    current: Path,
    features: Sequence[str],
    score_column: str,
    bins: int,
    reference_name: str,
) -> PsiResult:
    """:func:`churn.nightly.guards.distribution_psi` of two Parquet score tables (files or
    Spark's folders of parts), without reading either into memory."""
    con = connect()
    try:
        present = _columns(con, reference) & _columns(con, current)
        requested = [*features, score_column]
        columns = [c for c in requested if c in present]
        values = {c: round(_column_psi(con, reference, current, c, bins), 6) for c in columns}
    finally:
        con.close()
    skipped = [c for c in requested if c not in columns]
    return PsiResult(values=values, reference=reference_name, skipped=skipped)


def _columns(con: duckdb.DuckDBPyConnection, path: Path) -> set[str]:
    rows = con.execute(
        "SELECT column_name FROM (DESCRIBE SELECT * FROM read_parquet(?))", [parquet_files(path)]
    ).fetchall()
    return {str(r[0]) for r in rows}


def _values(column: str) -> str:
    """The column as doubles, missing values (null or NaN) dropped, as ``psi`` drops them."""
    return (
        f"(SELECT CAST({quote_ident(column)} AS DOUBLE) AS v FROM read_parquet(?))"
        " WHERE v IS NOT NULL AND NOT isnan(v)"
    )


def _column_psi(
    con: duckdb.DuckDBPyConnection, reference: Path, current: Path, column: str, bins: int
) -> float:
    edges = _reference_edges(con, reference, column, bins)
    if edges is None:
        return math.nan  # no reference values
    ref = _bin_counts(con, reference, column, edges)
    cur = _bin_counts(con, current, column, edges)
    return psi_from_counts(ref, cur)


def _reference_edges(
    con: duckdb.DuckDBPyConnection, path: Path, column: str, bins: int
) -> np.ndarray | None:
    """``psi``'s bin edges, ``unique(quantile(reference, ...))``, to the last bit: DuckDB
    sorts the column (spilling as it needs) and returns only the order statistics that
    NumPy's linear method interpolates between, and the interpolation is NumPy's own
    arithmetic (its virtual index and ``_lerp``). DuckDB's ``quantile_cont`` computes the
    index otherwise and can land one ulp away, which moves a value lying on an edge."""
    (n,) = _one(con, f"SELECT count(*) FROM {_values(column)}", [parquet_files(path)])
    if n == 0:
        return None
    q = np.linspace(0, 1, bins + 1)[1:-1]
    virtual = (n - 1) * q  # np.quantile's "linear" method
    previous = np.floor(virtual)
    gamma = virtual - previous
    low = np.minimum(previous, n - 1).astype(np.int64)
    high = np.minimum(previous + 1, n - 1).astype(np.int64)
    wanted = sorted({int(i) for i in (*low, *high)})
    rows = con.execute(
        f"SELECT i, v FROM (SELECT v, row_number() OVER (ORDER BY v) - 1 AS i FROM"
        f" {_values(column)}) WHERE list_contains(?, i)",
        [parquet_files(path), wanted],
    ).fetchall()
    at = {int(i): float(v) for i, v in rows}
    a = np.array([at[int(i)] for i in low])
    b = np.array([at[int(i)] for i in high])
    diff = b - a
    edges = np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)
    return np.unique(edges)


def _one(con: duckdb.DuckDBPyConnection, sql: str, parameters: list[object]) -> tuple[int]:
    row = con.execute(sql, parameters).fetchone()
    assert row is not None
    return (int(row[0]),)


def _bin_counts(
    con: duckdb.DuckDBPyConnection, path: Path, column: str, edges: np.ndarray
) -> np.ndarray:
    """Values per bin: bin ``i`` holds the values with ``i`` edges at or below them."""
    below = " + ".join("CAST(v >= ? AS INTEGER)" for _ in edges) or "0"
    rows = con.execute(
        f"SELECT {below} AS bin, count(*) FROM {_values(column)} GROUP BY bin",
        [*(float(e) for e in edges), parquet_files(path)],
    ).fetchall()
    counts = np.zeros(edges.size + 1, dtype=np.int64)
    for index, n in rows:
        counts[int(index)] = int(n)
    return counts
