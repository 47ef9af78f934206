"""The report KPIs from the engine hold the numbers the pandas code computed (issue 20).

The former row-by-row pandas definitions are kept in ``kpi_oracle``; the engine's
tables must match them on the sample (the generated shop `make run` uses, ingested for
real) and on random small shops that hit the edges (guest lines, cancellations, ties,
empty months, windows that have not closed).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import ibis
import kpi_oracle
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_kpis import shops

from churn.config import FeaturesConfig, GenerateConfig, IngestConfig, SnapshotConfig
from churn.data.generate import generate_shop
from churn.data.ingest_stage import IngestTargets, run_ingest_stage
from churn.data.staging import memory_limit_bytes
from churn.features import backend as engine
from churn.features.tables import build_scoring_snapshot
from churn.scoring import kpi_engine
from churn.scoring.kpis import KPI_TRANSACTION_COLUMNS

AS_OF = pd.Timestamp("2026-10-01")


def _same_kpis(
    transactions: pd.DataFrame | Path, frame: pd.DataFrame, lookback: int, horizon: int
) -> None:
    table = kpi_engine.transactions_table(transactions)
    got = kpi_engine.report_kpis(table, lookback_days=lookback, horizon_days=horizon)
    assert got is not None
    want = kpi_oracle.monthly_kpis(frame, lookback_days=lookback, horizon_days=horizon)
    # Revenue sums floats in another order: equal to the last few bits, not bit for bit.
    pd.testing.assert_frame_equal(got.monthly, want, check_exact=False, rtol=1e-12, atol=1e-9)
    pd.testing.assert_frame_equal(got.cohorts, kpi_oracle.cohort_retention(frame))
    rate, oracle_rate = got.repeat_purchase_rate, kpi_oracle.repeat_purchase_rate(frame)
    assert rate == oracle_rate or (math.isnan(rate) and math.isnan(oracle_rate))


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """The sample's canonical transactions before its as-of date: file and frame."""
    folder = tmp_path_factory.mktemp("sample")
    raw = folder / "transactions.csv"
    shop = generate_shop(GenerateConfig())
    shop.transactions.to_csv(raw, index=False, date_format="%Y-%m-%d %H:%M:%S")
    targets = IngestTargets(
        folder / "tx.parquet", folder / "q.parquet", folder / "c.parquet", folder / "r.json"
    )
    run_ingest_stage(raw, IngestConfig(), None, targets)
    frame = pd.read_parquet(targets.transactions, columns=list(KPI_TRANSACTION_COLUMNS))
    frame = frame[frame["ts"] < AS_OF].reset_index(drop=True)
    path = folder / "before.parquet"
    frame.to_parquet(path)
    return path, frame


def test_the_sample_gives_the_pandas_numbers(sample: tuple[Path, pd.DataFrame]) -> None:
    path, frame = sample
    assert (frame["amount"] < 0).any()  # cancellations: orders that are not purchases
    _same_kpis(path, frame, lookback=365, horizon=90)  # the report's label (params.yaml)
    _same_kpis(frame, frame, lookback=30, horizon=30)


def test_report_kpis_cut_at_the_as_of_date(sample: tuple[Path, pd.DataFrame]) -> None:
    path, frame = sample
    as_of = dt.date(2025, 3, 15)
    table = kpi_engine.before(kpi_engine.transactions_table(path), as_of)
    got = kpi_engine.report_kpis(table, lookback_days=365, horizon_days=90)
    assert got is not None
    older = frame[frame["ts"] < pd.Timestamp(as_of)]
    want = kpi_oracle.monthly_kpis(older, lookback_days=365, horizon_days=90)
    pd.testing.assert_frame_equal(got.monthly, want, check_exact=False, rtol=1e-12)
    assert kpi_engine.report_kpis(kpi_engine.before(table, dt.date(2000, 1, 1))) is None


def test_a_memory_limit_bounds_the_engine_and_keeps_the_numbers(
    sample: tuple[Path, pd.DataFrame],
) -> None:
    """report.memory_limit reaches DuckDB (at 10 M lines its KPI work held 1.2 GB
    unbounded, the nightly job's peak); a limit small enough to spill changes no number."""
    path, frame = sample
    table = kpi_engine.transactions_table(path, "20MB")
    assert memory_limit_bytes(ibis.get_backend(table).con) == pytest.approx(20e6, rel=0.05)
    _same_kpis(table, frame, lookback=365, horizon=90)


@settings(max_examples=10, deadline=None)
@given(shops(), st.sampled_from([1, 30, 90, 365]), st.sampled_from([1, 31, 90]))
def test_random_shops_give_the_pandas_numbers(
    shop: pd.DataFrame, lookback: int, horizon: int
) -> None:
    shop = shop.assign(customer_id=shop["customer_id"].where(shop.index % 7 != 3))  # guests
    _same_kpis(shop, shop, lookback, horizon)


_EDGE_TIMES = [
    pd.Timedelta(0),
    pd.Timedelta(microseconds=1),  # the features' whole second: still the month start
    pd.Timedelta(seconds=1),
    pd.Timedelta(days=1, microseconds=-1),
]


@settings(max_examples=10, deadline=None)
@given(shops(), st.data(), st.sampled_from([1, 31, 365]), st.sampled_from([1, 31, 90]))
def test_purchases_on_month_starts_and_midnights_give_the_pandas_numbers(
    shop: pd.DataFrame, data: st.DataObject, lookback: int, horizon: int
) -> None:
    """A purchase exactly at a month start is the latest one at that cutoff; a second
    later it is not (the monthly churn rate's ranges turn on it). Time counts in whole
    seconds, as the features count it. The random shops buy at noon, so here lines
    move to month starts and to a day's first and last instants."""
    days = shop["ts"].dt.normalize()
    starts = data.draw(st.lists(st.booleans(), min_size=len(shop), max_size=len(shop)))
    days = days.where(~pd.Series(starts, index=shop.index), days.dt.to_period("M").dt.start_time)
    times = data.draw(
        st.lists(st.sampled_from(_EDGE_TIMES), min_size=len(shop), max_size=len(shop))
    )
    shop = shop.assign(ts=days + pd.to_timedelta(pd.Series(times, index=shop.index)))
    _same_kpis(shop, shop, lookback, horizon)


def test_the_feature_steps_order_events_give_the_same_kpis(
    sample: tuple[Path, pd.DataFrame],
) -> None:
    """The nightly job counts its report's purchase facts on the order events its feature
    step stored; they are the very facts the report computes from the transactions."""
    path, frame = sample
    con = engine.connect("duckdb")
    table = engine.read_transactions(con, path.parent / "tx.parquet")
    collected = kpi_engine.FactsOfEvents(lookback_days=365, horizon_days=90)
    snapshot = build_scoring_snapshot(
        table, AS_OF.date(), SnapshotConfig(), FeaturesConfig(), collected.collect
    )
    assert len(snapshot) and collected.facts is not None
    alone = kpi_engine.collect_facts(
        kpi_engine.purchase_events(kpi_engine.before(table, AS_OF)), 365, 90
    )
    keys = list(alone.rows.columns)
    pd.testing.assert_frame_equal(
        collected.facts.rows.sort_values(keys).reset_index(drop=True),
        alone.rows.sort_values(keys).reset_index(drop=True),
    )
    request = kpi_engine.KpiRequest(path, AS_OF, lookback_days=365, facts=collected.facts)
    shared = request.compute()
    assert shared is not None
    want = kpi_oracle.monthly_kpis(frame, lookback_days=365, horizon_days=90)
    pd.testing.assert_frame_equal(shared.monthly, want, check_exact=False, rtol=1e-12, atol=1e-9)
