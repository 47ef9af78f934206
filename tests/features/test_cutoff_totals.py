"""The single-cutoff group-by gives exactly the rows the multi-cutoff running totals give."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import ibis
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from ibis.backends import BaseBackend

from churn.config import FeaturesConfig, SnapshotConfig
from churn.features.backend import arrow_to_pandas, connect
from churn.features.buckets import BucketPlan
from churn.features.cutoff_totals import cutoff_features
from churn.features.snapshots import as_of_events, bucket_table, cutoff_table, history_expr
from churn.schema import CUSTOMER_ID, CUTOFF, LABEL, SCORE_SPLIT, SPLIT
from features.test_snapshots import FAST, TRANSACTION_SCHEMA, Shop, shops


@pytest.fixture(scope="module")
def con() -> Iterator[BaseBackend]:
    backend = connect("duckdb")
    yield backend
    backend.disconnect()


def _table(shop: Shop) -> ibis.Table:
    arrow = pa.Table.from_pandas(shop.transactions, schema=TRANSACTION_SCHEMA, preserve_index=False)
    return ibis.memtable(arrow)


def _multi_cutoff_rows(con: BaseBackend, shop: Shop) -> pd.DataFrame:
    """The scoring cutoff's rows as `churn features` computes them: running totals over the
    buckets of every labelled cutoff and the as-of one, read at the as-of row of the edges."""
    scoring = pd.DataFrame({CUTOFF: [shop.as_of], SPLIT: [SCORE_SPLIT]})
    plan = BucketPlan.for_cutoffs(
        [*shop.cutoffs[CUTOFF], shop.as_of], shop.snapshots, shop.features
    )
    edges = plan.edge_table([(shop.cutoffs, True), (scoring, False)])
    running = bucket_table(_table(shop), plan, shop.as_of)
    mine = ibis.memtable(edges[edges[SPLIT] == SCORE_SPLIT])
    expr = history_expr(running, mine, shop.snapshots, shop.features, with_label=True)
    return arrow_to_pandas(con.to_pyarrow(expr.order_by(CUSTOMER_ID))).drop(columns=LABEL)


def _single_cutoff_rows(con: BaseBackend, shop: Shop) -> pd.DataFrame:
    scoring = pd.DataFrame({CUTOFF: [shop.as_of], SPLIT: [SCORE_SPLIT]})
    plan = BucketPlan.for_cutoffs([shop.as_of], shop.snapshots, shop.features)
    edges = plan.edge_table([(scoring, False)])
    totals = cutoff_table(as_of_events(_table(shop), shop.as_of), plan, shop.as_of, edges)
    windows_days = shop.features.windows_days
    expr = cutoff_features(
        totals, ibis.memtable(edges), plan.windows(), windows_days, shop.snapshots
    )
    return arrow_to_pandas(con.to_pyarrow(expr.order_by(CUSTOMER_ID)))


@settings(FAST, max_examples=15)
@given(shop=shops())
def test_one_cutoff_by_group_by_is_the_running_totals_exactly(con: BaseBackend, shop: Shop) -> None:
    """Every row, column, dtype and bit, in_population included, on random shops with
    purchases on every edge either path tests (and with other cutoffs' buckets in the way)."""
    pd.testing.assert_frame_equal(
        _single_cutoff_rows(con, shop), _multi_cutoff_rows(con, shop), check_exact=True
    )


def test_the_one_cutoff_must_be_as_of() -> None:
    """Its totals take every event before ``as_of`` as the cutoff's past: an earlier
    cutoff's edge table would silently count its future, so it is refused."""
    snapshots, features = SnapshotConfig(), FeaturesConfig()
    as_of = dt.date(2026, 10, 1)
    earlier = pd.DataFrame({CUTOFF: [as_of - dt.timedelta(days=1)], SPLIT: [SCORE_SPLIT]})
    plan = BucketPlan.for_cutoffs([as_of, *earlier[CUTOFF]], snapshots, features)
    events = ibis.memtable(pa.table({"ts_s": pa.array([], pa.int64())}))
    with pytest.raises(ValueError, match="one cutoff 2026-10-01"):
        cutoff_table(events, plan, as_of, plan.edge_table([(earlier, False)]))
