"""The assembled snapshot tables: BTYD and segment columns must not leak the future either."""

from __future__ import annotations

import datetime as dt
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churn.config import FeaturesConfig, SnapshotConfig
from churn.features import tables as stage
from churn.features.backend import connect, read_transactions
from churn.features.btyd_features import BTYD_FEATURES, FittedCutoff, btyd_features, fit_sample
from churn.features.tables import (
    FeatureTables,
    _in_turn,
    _prefetched,
    build_feature_tables,
    build_scoring_snapshot,
    feature_pieces,
    write_feature_tables,
)
from synthetic import canonical_transactions

AS_OF = dt.date(2026, 7, 1)
SNAPSHOTS = SnapshotConfig(as_of=AS_OF, n_train_cutoffs=4)


# Five ranges of the 1,500 customers: still several uneven pieces per cutoff, but each
# chunk is a query, and chunks of 97 made these two tests a fifth of the suite.
CHUNK = 300


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return canonical_transactions(seed=8, n_customers=1_500)


def _tables(transactions: pd.DataFrame) -> FeatureTables:
    return build_feature_tables(ibis.memtable(transactions), SNAPSHOTS, FeaturesConfig())


@pytest.fixture(scope="module")
def tables(transactions: pd.DataFrame) -> FeatureTables:
    return _tables(transactions)


def test_tables_carry_btyd_and_segments(tables: FeatureTables) -> None:
    for frame in (tables.labelled, tables.scoring):
        for column in (*BTYD_FEATURES, "r_score", "f_score", "m_score", "segment"):
            assert column in frame.columns
        assert frame["btyd_p_alive"].between(0, 1).all()
        assert frame["btyd_p_no_purchase"].between(0, 1).all()
        assert (frame["btyd_expected_purchases"] >= 0).all()
        assert not frame.duplicated(["customer_id", "cutoff"]).any()
    one_timers = tables.labelled["n_orders"] == 1
    assert np.allclose(tables.labelled.loc[one_timers, "btyd_p_alive"], 1.0)
    assert tables.calendar.as_of == AS_OF
    assert set(tables.rfm_edges) == {
        str(c.date()) for c in pd.to_datetime(tables.labelled["cutoff"].unique())
    } | {AS_OF.isoformat()}


def test_bgnbd_feature_ranks_churners(tables: FeatureTables) -> None:
    from sklearn.metrics import roc_auc_score

    test = tables.labelled[tables.labelled["split"] == "test"]
    assert roc_auc_score(test["churned"], test["btyd_p_no_purchase"]) > 0.6
    assert roc_auc_score(test["churned"], test["pnbd_p_no_purchase"]) > 0.6


def test_later_transactions_change_no_feature_at_earlier_cutoffs(
    transactions: pd.DataFrame, tables: FeatureTables
) -> None:
    """Transactions after the validation cutoff may change labels, never training features."""
    valid_cutoff = pd.Timestamp(tables.calendar.valid_cutoff)
    rng = np.random.default_rng(0)
    customers = transactions["customer_id"].drop_duplicates().sample(300, random_state=1)
    extra = pd.DataFrame(
        {
            "customer_id": customers.to_numpy(),
            "order_id": [f"X{i}" for i in range(len(customers))],
            "ts": (
                valid_cutoff + pd.to_timedelta(rng.uniform(1, 80, len(customers)), unit="D")
            ).astype("datetime64[us]"),
            "amount": rng.uniform(5, 500, len(customers)).round(2),
            "country": "United Kingdom",
        }
    )
    changed = _tables(pd.concat([transactions, extra], ignore_index=True))
    before = tables.labelled[tables.labelled["split"] == "train"].drop(columns="churned")
    after = changed.labelled[changed.labelled["split"] == "train"].drop(columns="churned")
    pd.testing.assert_frame_equal(before.reset_index(drop=True), after.reset_index(drop=True))


def test_transactions_after_as_of_are_ignored(
    transactions: pd.DataFrame, tables: FeatureTables
) -> None:
    future = transactions.head(50).copy()
    future["ts"] = pd.Timestamp(AS_OF) + pd.Timedelta(hours=1)
    future["order_id"] = "F" + future["order_id"].astype(str)
    changed = _tables(pd.concat([transactions, future], ignore_index=True))
    pd.testing.assert_frame_equal(tables.labelled, changed.labelled)
    pd.testing.assert_frame_equal(tables.scoring, changed.scoring)


def test_a_hashed_sample_fit_is_close_to_the_full_fit(tables: FeatureTables) -> None:
    """400 of 1,500 customers pin the BG/NBD parameters well enough for P(no purchase)."""
    history = tables.labelled[
        ["customer_id", "cutoff", "n_purchase_days", "revenue", "tenure_days", "recency_days"]
    ].reset_index(drop=True)
    sample = fit_sample(history["customer_id"], 400)
    members = pd.Series(sample).groupby(history["customer_id"]).nunique()
    assert (members == 1).all()  # a customer is in or out at every cutoff alike
    assert history.loc[sample, "customer_id"].nunique() == 400
    full = btyd_features(history, SNAPSHOTS.horizon_days)
    sampled = btyd_features(history, SNAPSHOTS.horizon_days, fit_customers=400)
    gap = (full["btyd_p_no_purchase"] - sampled["btyd_p_no_purchase"]).abs()
    assert 0 < gap.mean() < 0.05
    assert sampled.notna().all().all()


def test_tables_are_bit_identical_across_runs_on_four_threads(
    transactions: pd.DataFrame, tmp_path: Path
) -> None:
    """Exact sums (DECIMAL money, integer gaps) do not depend on DuckDB's thread schedule."""
    path = tmp_path / "transactions.parquet"
    # Small row groups, so four threads really split the scan and the aggregations.
    pq.write_table(
        pa.Table.from_pandas(transactions, preserve_index=False), path, row_group_size=500
    )
    runs = []
    for _ in range(2):
        backend = connect("duckdb")
        backend.con.execute("SET threads = 4")
        runs.append(
            build_feature_tables(read_transactions(backend, path), SNAPSHOTS, FeaturesConfig())
        )
        backend.disconnect()
    first, second = runs
    pd.testing.assert_frame_equal(first.labelled, second.labelled, check_exact=True)
    pd.testing.assert_frame_equal(first.scoring, second.scoring, check_exact=True)


@pytest.mark.parametrize("chunk_customers", [2_000_000, CHUNK])
def test_streamed_files_hold_the_same_tables(
    transactions: pd.DataFrame, tables: FeatureTables, tmp_path: Path, chunk_customers: int
) -> None:
    """The CLI writes the labelled table a piece at a time; read back, nothing differs.

    With chunks of CHUNK customers every cutoff, the scoring one too, arrives in pieces."""
    labelled, scoring = tmp_path / "train.parquet", tmp_path / "score.parquet"
    features = FeaturesConfig(chunk_customers=chunk_customers)
    summary = write_feature_tables(
        ibis.memtable(transactions), SNAPSHOTS, features, labelled, scoring
    )
    pd.testing.assert_frame_equal(pd.read_parquet(labelled), tables.labelled)
    pd.testing.assert_frame_equal(pd.read_parquet(scoring), tables.scoring)
    assert summary.n_labelled == len(tables.labelled)
    assert summary.n_scoring == len(tables.scoring)
    assert summary.n_labelled_cutoffs == tables.labelled["cutoff"].nunique()
    assert summary.rfm_edges == tables.rfm_edges
    assert summary.calendar == tables.calendar


def test_chunked_cutoffs_give_the_unchunked_tables(
    transactions: pd.DataFrame, tables: FeatureTables
) -> None:
    """Above features.chunk_customers a cutoff reaches pandas in chunks: same rows, same values.

    Chunks of CHUNK customers split every cutoff into pieces of uneven sizes;
    the BTYD fit sampled at 400 customers so the fit and the predictions differ in rows.
    """
    table = ibis.memtable(transactions)
    sampled = FeaturesConfig(btyd_fit_customers=400)
    whole = build_feature_tables(table, SNAPSHOTS, sampled)
    chunked_config = sampled.model_copy(update={"chunk_customers": CHUNK})
    chunked = build_feature_tables(table, SNAPSHOTS, chunked_config)
    for mine, theirs in ((chunked.labelled, whole.labelled), (chunked.scoring, whole.scoring)):
        pd.testing.assert_frame_equal(mine, theirs)
    assert chunked.rfm_edges == whole.rfm_edges
    assert len(whole.scoring) > CHUNK * 3
    as_of = whole.calendar.as_of
    no_labels = whole.calendar.labelled().iloc[:0]
    chunks = feature_pieces(table, no_labels, as_of, SNAPSHOTS, chunked_config)
    sizes = [len(piece) for piece, _ in chunks]
    assert len(sizes) > 3 and max(sizes) <= CHUNK and sum(sizes) == len(whole.scoring)
    # Alone (the nightly's single-cutoff group-by), in chunks: still the very same rows.
    alone = build_scoring_snapshot(table, as_of, SNAPSHOTS, chunked_config)
    pd.testing.assert_frame_equal(alone, whole.scoring, check_exact=True)


def test_the_scoring_snapshot_alone_is_the_one_built_with_the_labelled_cutoffs(
    transactions: pd.DataFrame, tables: FeatureTables
) -> None:
    """`churn nightly` and `churn score --as-of` build the as-of cutoff alone, by a group-by
    per customer rather than the running totals: every column and bit the same, in order."""
    alone = build_scoring_snapshot(
        ibis.memtable(transactions), tables.calendar.as_of, SNAPSHOTS, FeaturesConfig()
    )
    pd.testing.assert_frame_equal(alone, tables.scoring, check_exact=True)


def test_the_as_of_predictions_run_beside_the_pandas_conversion(
    transactions: pd.DataFrame, tables: FeatureTables, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The nightly's BTYD predictions run on a second thread (the second core idled while
    this one converted the rows to pandas and scored RFM); the snapshot stays the same."""
    threads: list[int] = []
    predict = FittedCutoff.predict

    def spy(self: FittedCutoff, rows: pd.DataFrame) -> pd.DataFrame:
        threads.append(threading.get_ident())
        return predict(self, rows)

    monkeypatch.setattr(FittedCutoff, "predict", spy)
    table = ibis.memtable(transactions)
    as_of = tables.calendar.as_of
    alone = build_scoring_snapshot(table, as_of, SNAPSHOTS, FeaturesConfig())
    assert threads and threading.get_ident() not in threads
    pd.testing.assert_frame_equal(alone, tables.scoring, check_exact=True)


def test_the_scoring_cutoff_is_computed_halfway_through_the_labelled_ones() -> None:
    """The labelled cutoffs oldest first (each BTYD fit starts from the last), the scoring
    cutoff, the longest to fit and score, where the queries of larger cutoffs cover it."""
    edges = pd.DataFrame(
        {"cutoff_i": range(6), "split": ["train", "train", "train", "valid", "test", "score"]}
    )
    assert _in_turn(edges) == [0, 1, 5, 2, 3, 4]


def test_cutoff_queries_run_two_at_once_one_ahead_of_their_workers() -> None:
    """Two runs at once, and one more handed out, before this thread takes any result."""
    started: list[int] = []
    both = threading.Barrier(2, timeout=30)
    release = threading.Event()

    def run(frame: pd.DataFrame) -> pd.DataFrame:
        number = int(frame["n"].iloc[0])
        started.append(number)
        if number < 2:
            both.wait()  # returns only if runs 0 and 1 run at the same time
        release.wait(timeout=30)
        return frame

    def started_at_least(n: int) -> bool:
        deadline = time.monotonic() + 30
        while len(started) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return len(started) >= n

    frames = [pd.DataFrame({"n": [n]}) for n in range(5)]
    with _prefetched(run, frames, at_once=2) as results:
        assert started_at_least(2)
        release.set()
        assert started_at_least(3)
        time.sleep(0.2)
        assert sorted(started) == [0, 1, 2]  # the fourth waits until a result is taken
        assert [int(frame["n"].iloc[0]) for frame in results] == [0, 1, 2, 3, 4]


def test_the_stage_gives_duckdb_its_threads_back(
    transactions: pd.DataFrame,
    tables: FeatureTables,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Two cutoff queries at once on DuckDB's threads less one, the setting restored after;
    the same tables, and the RFM edges in cutoff order."""
    seen: list[int] = []
    prefetched = stage._prefetched

    def spy(run: object, frames: list[pd.DataFrame], at_once: int) -> object:
        seen.append(at_once)
        seen.append(int(backend.con.execute("SELECT current_setting('threads')").fetchone()[0]))
        return prefetched(run, frames, at_once)

    monkeypatch.setattr(stage, "_prefetched", spy)
    backend = connect("duckdb")
    backend.con.execute("SET threads = 3")
    path = tmp_path / "transactions.parquet"
    transactions.to_parquet(path, index=False)
    again = build_feature_tables(read_transactions(backend, path), SNAPSHOTS, FeaturesConfig())
    assert seen == [2, 2]
    assert int(backend.con.execute("SELECT current_setting('threads')").fetchone()[0]) == 3
    pd.testing.assert_frame_equal(again.labelled, tables.labelled, check_exact=True)
    pd.testing.assert_frame_equal(again.scoring, tables.scoring, check_exact=True)
    # The RFM edges oldest cutoff first, the scoring one last, though it is computed halfway.
    assert list(again.rfm_edges) == sorted(again.rfm_edges)
    assert list(again.rfm_edges)[-1] == str(again.calendar.as_of)
    backend.disconnect()


def test_chunked_cutoffs_keep_every_duckdb_thread(
    transactions: pd.DataFrame, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Customer ranges run one after another, so each keeps all of the engine's threads."""
    seen: list[int] = []
    in_chunks = stage._in_chunks

    def spy(*args: Any) -> Any:
        seen.append(int(backend.con.execute("SELECT current_setting('threads')").fetchone()[0]))
        return in_chunks(*args)

    monkeypatch.setattr(stage, "_in_chunks", spy)
    backend = connect("duckdb")
    backend.con.execute("SET threads = 3")
    path = tmp_path / "transactions.parquet"
    transactions.to_parquet(path, index=False)
    features = FeaturesConfig(chunk_customers=CHUNK)
    build_feature_tables(read_transactions(backend, path), SNAPSHOTS, features)
    assert seen and set(seen) == {3}
    backend.disconnect()


@pytest.mark.skipif(sys.platform != "linux", reason="threads are reniced on Linux only")
def test_cutoff_queries_run_behind_the_fits() -> None:
    """The query workers are nicer than the thread that fits BTYD, which they feed."""

    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    frames = [pd.DataFrame({"n": [0]})]
    with _prefetched(lambda frame: frame.assign(n=niceness()), frames, 2) as rows:
        worker = int(next(rows)["n"].iloc[0])
    assert worker == min(niceness() + 5, 19)
