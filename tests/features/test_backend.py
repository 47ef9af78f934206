"""The engine plumbing the feature stage's per-cutoff queries run on (DuckDB, in process)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
import pytest
from ibis.backends import BaseBackend

from churn.features import backend as engine
from churn.features.backend import concurrent_queries, connect, materialized, repeated_query

# Big enough for a query's Arrow table to have come in several chunks (~120 k rows each).
ROWS = 400_000


@pytest.fixture()
def duckdb4() -> Iterator[BaseBackend]:
    """A DuckDB connection on four threads, as a bigger machine would have."""
    backend = connect("duckdb")
    backend.con.execute("SET threads = 4")
    yield backend
    backend.disconnect()


def _threads(backend: BaseBackend) -> int:
    return int(backend.con.execute("SELECT current_setting('threads')").fetchone()[0])


def _numbers(backend: BaseBackend) -> ir.Table:
    return backend.sql(f"SELECT range AS n, range % 7 AS k, 'c' || range AS id FROM range({ROWS})")


def _rows_of(source: ir.Table, frame: ir.Table) -> ir.Table:
    """The source rows from the one-row input's ``start`` on with its ``k``, in order."""
    picked = source.join(frame, [source.n >= frame.start, source.k != frame.k])
    return picked.select("n", "k", "id", tag=picked.tag).order_by("n")


def _expected(frame: pd.DataFrame) -> list[int]:
    start, k = int(frame["start"].iloc[0]), int(frame["k"].iloc[0])
    return [n for n in range(start, ROWS) if n % 7 != k]


def test_a_run_hands_pandas_one_arrow_chunk(
    duckdb4: BaseBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its result comes whole (a query's Arrow table came in a chunk per thread, which
    pandas then copied into one block per column), and is the query's."""
    chunks: list[int] = []
    to_pandas = engine.arrow_to_pandas

    def spy(table: pa.Table) -> pd.DataFrame:
        chunks.append(table.column("n").num_chunks)
        return to_pandas(table)

    monkeypatch.setattr(engine, "arrow_to_pandas", spy)
    example = pd.DataFrame({"start": [0], "k": [0], "tag": ["a"]})
    frame = pd.DataFrame({"start": [5], "k": [3], "tag": ["b"]})
    with (
        materialized(_numbers(duckdb4), shared=True) as source,
        repeated_query(duckdb4, lambda frame: _rows_of(source, frame), example) as run,
    ):
        rows = run(frame)
    assert chunks == [1]
    assert rows["n"].tolist() == _expected(frame)
    assert set(rows["tag"]) == {"b"}


def test_runs_on_two_threads_each_get_their_own_input(duckdb4: BaseBackend) -> None:
    """Each run gives the query its frame on a cursor of its own: runs on several threads
    at once do not see each other's frames (the connection's temp tables would not be
    visible there, hence ``shared``)."""
    example = pd.DataFrame({"start": [0], "k": [0], "tag": ["a"]})
    frames = [
        pd.DataFrame({"start": [1_000 * i], "k": [i % 7], "tag": [f"t{i}"]}) for i in range(12)
    ]
    with (
        materialized(_numbers(duckdb4), shared=True) as source,
        repeated_query(duckdb4, lambda frame: _rows_of(source, frame), example) as run,
        ThreadPoolExecutor(max_workers=2) as pool,
    ):
        results = list(pool.map(run, frames))
    for frame, rows in zip(frames, results, strict=True):
        assert rows["n"].tolist() == _expected(frame)
        assert set(rows["tag"]) == {frame["tag"].iloc[0]}


def test_a_run_refuses_in_memory_frames(duckdb4: BaseBackend) -> None:
    """A cursor would not see the memtables Ibis registers on the connection."""
    lookup = ibis.memtable(pd.DataFrame({"k": [1], "name": ["one"]}))
    example = pd.DataFrame({"k": [0]})
    with (
        pytest.raises(ValueError, match="in-memory"),
        repeated_query(duckdb4, lambda frame: frame.join(lookup, "k"), example),
    ):
        pass


def test_two_queries_at_once_share_duckdbs_threads_and_give_them_back(
    duckdb4: BaseBackend,
) -> None:
    """Each of the two runs' own threads works on its query too, so the engine keeps one
    fewer; the setting is the caller's again afterwards."""
    with concurrent_queries(duckdb4) as at_once:
        assert (at_once, _threads(duckdb4)) == (2, 3)
    assert _threads(duckdb4) == 4
    duckdb4.con.execute("SET threads = 1")
    with concurrent_queries(duckdb4) as at_once:
        assert (at_once, _threads(duckdb4)) == (1, 1)
    assert _threads(duckdb4) == 1
