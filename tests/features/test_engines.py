"""DuckDB and PySpark produce the same feature tables from the same Parquet.

DESIGN.md "Engines" promises that the Ibis feature code runs unchanged on Spark
for data that outgrows one machine. A user who switches ``engine:`` must get the
same rows, values and dtypes, or a model trained on one engine would silently
score differently on the other; these tests hold the engines to that.

The sample is built here, not with ``churn.data.generate``: it has to hit the
spots where SQL dialects disagree (sub-second timestamps, purchases exactly on
a cutoff or horizon edge, guest orders without an order id, cancellations,
customers whose only event is a return, a leap-year cutoff next to Christmas),
and it must not change when the generator is tuned.

Spark takes ~20-30 s to start, so one session serves the whole module.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ibis.backends import BaseBackend

from churn.config import FeaturesConfig, SnapshotConfig
from churn.errors import UserError
from churn.features.backend import (
    DEFAULT_SPARK_MASTER,
    SPARK_MASTER_ENV,
    connect,
    read_transactions,
    resolve_spark_master,
)
from churn.features.btyd_features import BTYD_FEATURES
from churn.features.snapshots import snapshot_expr
from churn.features.tables import build_feature_tables, build_scoring_snapshot

TRANSACTION_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("order_id", pa.string()),
        ("ts", pa.timestamp("us")),
        ("amount", pa.float64()),
        ("country", pa.string()),
    ]
)
START = pd.Timestamp("2023-01-01")
AS_OF = dt.date(2025, 4, 1)
# 2024-12-31 is day 366 of a leap year, a week past the Christmas anchor.
CUTOFFS = pd.DataFrame(
    {
        "cutoff": [dt.date(2024, 3, 1), dt.date(2024, 9, 29), dt.date(2024, 12, 31)],
        "split": ["train", "valid", "test"],
    }
)
SNAPSHOTS = SnapshotConfig(n_train_cutoffs=3)
FEATURES = FeaturesConfig()
TOLERANCE = 1e-9
# The BTYD columns come from maximum-likelihood fits run in pandas/SciPy on the engine's
# output. Spark and DuckDB add floats in different orders, so their inputs can differ
# in the last bit, and the optimiser's stopping rule turns that into ~1e-9 relative
# differences. Still far below anything a model could notice.
FITTED_TOLERANCE = 1e-6
# JVM flags for a short-lived test session: C1-only JIT and the serial GC halve Spark's
# start-up and first-query time on two busy cores. They change speed, never results.
TEST_SPARK_CONF = {"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"}

_SPARK_MARKS = (
    pytest.mark.spark,
    pytest.mark.skipif(shutil.which("java") is None, reason="engine: pyspark needs Java 17"),
    # PySpark 4.x warns on import that it does not fully support pandas 3; nothing to act on.
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
)


def requires_spark(test: Callable[..., None]) -> Callable[..., None]:
    """Mark a test `spark` (deselect with -m "not spark") and skip it without Java."""
    for mark in _SPARK_MARKS:
        test = mark(test)
    return test


def _edge_cases() -> list[tuple[str, str | None, pd.Timestamp, float]]:
    """Hand-placed rows on the boundaries where engines could round or compare differently."""
    cutoff = pd.Timestamp(CUTOFFS["cutoff"].iloc[2])
    horizon = pd.Timedelta(days=SNAPSHOTS.horizon_days)
    us = pd.Timedelta(microseconds=1)
    return [
        # Exactly at a cutoff (history), and one microsecond after (future).
        ("E001", "E1-1", cutoff - pd.Timedelta(days=40), 20.0),
        ("E001", "E1-2", cutoff, 30.0),
        ("E002", "E2-1", cutoff - pd.Timedelta(days=10), 25.0),
        ("E002", "E2-2", cutoff + us, 25.0),
        # Exactly at the end of the label window (counts as a repeat purchase).
        ("E003", "E3-1", cutoff - pd.Timedelta(days=5), 15.0),
        ("E003", "E3-2", cutoff + horizon - us, 15.0),
        # Guest-style orders without an id, two at the same instant (one order).
        ("E004", None, cutoff - pd.Timedelta(days=60, seconds=-1) + 500_000 * us, 12.5),
        ("E004", None, cutoff - pd.Timedelta(days=60, seconds=-1) + 500_000 * us, 7.5),
        ("E004", None, cutoff - pd.Timedelta(days=3), 9.0),
        # Only a return before the cutoff: n_orders = 0, dropped from the population.
        ("E005", "CE5-0", cutoff - pd.Timedelta(days=20), -30.0),
        ("E005", "E5-1", cutoff + pd.Timedelta(days=20), 30.0),
        # A purchase and its full cancellation: zero revenue, one return.
        ("E006", "E6-1", cutoff - pd.Timedelta(days=100), 40.0),
        ("E006", "CE6-1", cutoff - pd.Timedelta(days=98), -40.0),
        # On as_of: dropped, so it neither counts as history nor as a label purchase.
        ("E007", "E7-1", cutoff - pd.Timedelta(days=1), 10.0),
        ("E007", "E7-2", pd.Timestamp(AS_OF), 10.0),
    ]


def sample_transactions(n_customers: int = 300, seed: int = 11) -> pd.DataFrame:
    """A deterministic canonical transactions frame (the shape `churn ingest` writes)."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, str | None, pd.Timestamp, float]] = []
    order_no = 0
    for c in range(n_customers):
        customer = f"C{c:04d}"
        first = int(rng.integers(0, 700 * 86_400))
        offsets = np.sort(first + rng.integers(0, 400 * 86_400, size=int(rng.integers(1, 15))))
        for offset in offsets:
            order_no += 1
            ts = START + pd.Timedelta(seconds=int(offset))
            if rng.random() < 0.1:
                ts += pd.Timedelta(microseconds=int(rng.integers(1, 1_000_000)))
            order = None if rng.random() < 0.1 else f"O{order_no}"
            for _ in range(int(rng.integers(1, 3))):
                rows.append((customer, order, ts, round(float(rng.lognormal(3, 0.5)), 2)))
            if order is not None and rng.random() < 0.05:
                rows.append((customer, "C" + order, ts + pd.Timedelta(days=3), -10.0))
    rows += _edge_cases()
    frame = pd.DataFrame(rows, columns=["customer_id", "order_id", "ts", "amount"])
    frame["country"] = "DE"
    frame["ts"] = frame["ts"].astype("datetime64[us]")
    return frame


@pytest.fixture(scope="module")
def transactions_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("engines") / "transactions.parquet"
    table = pa.Table.from_pandas(
        sample_transactions(), schema=TRANSACTION_SCHEMA, preserve_index=False
    )
    pq.write_table(table, path)
    return path


@pytest.fixture(scope="module")
def duckdb_backend() -> BaseBackend:
    return connect("duckdb")


@pytest.fixture(scope="module")
def spark_backend(shared_spark: Any) -> BaseBackend:
    """Ibis on the run's one local Spark session (tests/conftest.py), left running."""
    return connect("pyspark", spark_master=DEFAULT_SPARK_MASTER, spark_conf=TEST_SPARK_CONF)


def assert_same_table(duck: pd.DataFrame, spark: pd.DataFrame) -> None:
    """Same columns in the same order, same dtypes, same rows; floats to 1e-9.

    Fitted BTYD columns get ``FITTED_TOLERANCE`` (see there); everything the
    engines compute themselves must agree to 1e-9.
    """
    assert list(spark.columns) == list(duck.columns)
    assert spark.dtypes.to_dict() == duck.dtypes.to_dict()
    fitted = [c for c in duck.columns if c in BTYD_FEATURES]
    exact = [c for c in duck.columns if c not in fitted]
    for columns, tolerance in [(exact, TOLERANCE), (fitted, FITTED_TOLERANCE)]:
        pd.testing.assert_frame_equal(
            spark[columns].reset_index(drop=True),
            duck[columns].reset_index(drop=True),
            check_exact=False,
            rtol=tolerance,
            atol=tolerance,
        )


@pytest.mark.parametrize(
    ("configured", "env", "expected"),
    [
        (None, None, "local[2]"),
        ("spark://params:7077", None, "spark://params:7077"),
        ("spark://params:7077", "spark://env:7077", "spark://env:7077"),
    ],
)
def test_spark_master_env_overrides_params(
    monkeypatch: pytest.MonkeyPatch, configured: str | None, env: str | None, expected: str
) -> None:
    if env is None:
        monkeypatch.delenv(SPARK_MASTER_ENV, raising=False)
    else:
        monkeypatch.setenv(SPARK_MASTER_ENV, env)
    assert resolve_spark_master(configured) == expected


def test_unknown_engine_names_the_choices() -> None:
    with pytest.raises(UserError, match="duckdb, pyspark"):
        connect("polars")


@requires_spark
def test_snapshots_match(
    transactions_path: Path, duckdb_backend: BaseBackend, spark_backend: BaseBackend
) -> None:
    """Labelled snapshots at three cutoffs: every feature and label agrees row by row."""
    tables = {}
    for name, backend in [("duckdb", duckdb_backend), ("pyspark", spark_backend)]:
        transactions = read_transactions(backend, transactions_path)
        expr = snapshot_expr(transactions, CUTOFFS, AS_OF, SNAPSHOTS, FEATURES, with_label=True)
        tables[name] = expr.to_pandas().sort_values(["cutoff", "customer_id"])
    duck = tables["duckdb"]
    assert duck["cutoff"].nunique() == 3
    assert duck["churned"].nunique() == 2
    edge = duck.set_index(["customer_id", duck["cutoff"].dt.date])
    test_cutoff = CUTOFFS["cutoff"].iloc[2]
    # A purchase at the cutoff instant is the first of the label window [c, c + horizon).
    assert edge.loc[("E001", test_cutoff), "recency_days"] == 40
    assert edge.loc[("E001", test_cutoff), "churned"] == 0
    assert edge.loc[("E002", test_cutoff), "churned"] == 0  # one microsecond later
    assert edge.loc[("E003", test_cutoff), "churned"] == 0  # the window's last instant
    assert ("E005", test_cutoff) not in edge.index  # only a return so far
    assert_same_table(duck, tables["pyspark"])


@requires_spark
def test_feature_tables_match(
    transactions_path: Path, duckdb_backend: BaseBackend, spark_backend: BaseBackend
) -> None:
    """The whole features step: calendar, labelled and scoring tables, RFM edges."""
    duck = build_feature_tables(
        read_transactions(duckdb_backend, transactions_path), SNAPSHOTS, FEATURES
    )
    spark = build_feature_tables(
        read_transactions(spark_backend, transactions_path), SNAPSHOTS, FEATURES
    )
    assert spark.calendar == duck.calendar
    assert spark.n_transactions == duck.n_transactions
    assert spark.rfm_edges.keys() == duck.rfm_edges.keys()
    for key, edges in duck.rfm_edges.items():
        assert spark.rfm_edges[key].keys() == edges.keys()
        for name, cuts in edges.items():
            np.testing.assert_allclose(spark.rfm_edges[key][name], cuts, rtol=TOLERANCE)
    assert len(duck.labelled) > 0 and len(duck.scoring) > 0
    assert_same_table(duck.labelled, spark.labelled)
    assert_same_table(duck.scoring, spark.scoring)


@requires_spark
def test_chunked_scoring_snapshot_matches(
    transactions_path: Path, duckdb_backend: BaseBackend, spark_backend: BaseBackend
) -> None:
    """Spark's chunked path (its Parquet output is a folder of parts) gives DuckDB's rows."""
    duck = build_scoring_snapshot(
        read_transactions(duckdb_backend, transactions_path), AS_OF, SNAPSHOTS, FEATURES
    )
    # Three chunks: each is a Spark query of a second or more, so more would
    # only slow the suite (chunk 7 took ~170 s); ranges and the folder of parts
    # are exercised the same.
    chunked = FEATURES.model_copy(update={"chunk_customers": 100})
    spark = build_scoring_snapshot(
        read_transactions(spark_backend, transactions_path), AS_OF, SNAPSHOTS, chunked
    )
    assert len(duck) > 100 * 2
    assert spark["customer_id"].is_monotonic_increasing
    assert_same_table(duck, spark)
