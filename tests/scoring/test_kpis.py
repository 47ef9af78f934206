"""Descriptive KPIs against a shop small enough to count by hand (see the comments)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churn.features.segments import SEGMENTS
from churn.scoring.kpis import (
    churn_rate_by_cutoff,
    cohort_retention,
    inter_purchase_gaps,
    monthly_kpis,
    orders_per_customer,
    purchases,
    repeat_purchase_rate,
    repeat_rate_by_cohort,
    segment_sizes,
)

NAN = float("nan")

# customer, order_id, date (all at noon), amount
_LINES = [
    ("A", "a1", "2024-01-05", 10.0),  # A: two lines of one order = one purchase of 15
    ("A", "a1", "2024-01-05", 5.0),
    ("A", "a2", "2024-01-20", 20.0),
    ("A", "a3", "2024-03-10", 30.0),
    ("B", "b1", "2024-01-10", 50.0),
    ("B", "Cb1", "2024-01-12", -50.0),  # cancellation invoice: not a purchase
    ("B", "b3", "2024-04-15", 40.0),
    ("C", "c1", "2024-02-01", 25.0),
    ("D", "d1", "2024-02-14", 10.0),  # D's first order nets to zero: not a purchase
    ("D", "d1", "2024-02-14", -10.0),
    ("D", "d2", "2024-05-20", 60.0),
    ("D", None, "2024-05-25", 5.0),  # no order id: lines at the same time form one order
    ("D", None, "2024-05-25", 2.0),
    ("E", "e1", "2024-08-30", 100.0),
]


def _shop(lines: list[tuple[str | None, str | None, str, float]] = _LINES) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [c for c, _, _, _ in lines],
            "order_id": [o for _, o, _, _ in lines],
            "ts": pd.to_datetime([d for _, _, d, _ in lines]) + pd.Timedelta(hours=12),
            "amount": [a for _, _, _, a in lines],
            "country": "United Kingdom",
        }
    )


def _months(*labels: str) -> pd.PeriodIndex:
    return pd.PeriodIndex(labels, freq="M")


def test_purchases_sum_order_lines_and_drop_cancellations() -> None:
    bought = purchases(_shop())
    assert bought.groupby("customer_id").size().to_dict() == {
        "A": 3,
        "B": 2,
        "C": 1,
        "D": 2,
        "E": 1,
    }
    assert bought["amount"].tolist() == [15.0, 20.0, 30.0, 50.0, 40.0, 25.0, 60.0, 7.0, 100.0]


def test_orders_per_customer() -> None:
    dist = orders_per_customer(_shop())
    assert dist.index.tolist() == [1, 2, 3]
    assert dist["customers"].tolist() == [2, 2, 1]  # C, E | B, D | A
    assert dist["share"].tolist() == pytest.approx([0.4, 0.4, 0.2])


def test_repeat_purchase_rate_overall_and_by_cohort() -> None:
    assert repeat_purchase_rate(_shop()) == pytest.approx(3 / 5)
    by_cohort = repeat_rate_by_cohort(_shop())
    assert by_cohort.index.equals(_months("2024-01", "2024-02", "2024-05", "2024-08"))
    assert by_cohort["customers"].tolist() == [2, 1, 1, 1]
    assert by_cohort["repeat_rate"].tolist() == [1.0, 0.0, 1.0, 0.0]
    # Within 30 days: A (15 days) and D (5 days) yes, B (96 days) no.
    assert repeat_rate_by_cohort(_shop(), within_days=30)["repeat_rate"].tolist() == [
        0.5,
        0.0,
        1.0,
        0.0,
    ]
    assert math.isnan(repeat_purchase_rate(_shop()[:0]))


def test_inter_purchase_gaps_in_days() -> None:
    # A: 01-05 -> 01-20 -> 03-10 (2024 is a leap year), B: 01-10 -> 04-15, D: 05-20 -> 05-25.
    assert sorted(inter_purchase_gaps(_shop()).tolist()) == [5.0, 15.0, 50.0, 96.0]


def test_monthly_kpis() -> None:
    kpis = monthly_kpis(_shop())
    assert kpis.index.equals(pd.period_range("2024-01", "2024-08", freq="M", name="month"))
    assert kpis["active_customers"].tolist() == [2, 1, 1, 1, 1, 0, 0, 1]
    assert kpis["new_customers"].tolist() == [2, 1, 0, 0, 1, 0, 0, 1]
    assert kpis["orders"].tolist() == [3, 1, 1, 1, 2, 0, 0, 1]
    assert kpis["revenue"].tolist() == [35.0, 25.0, 30.0, 40.0, 67.0, 0.0, 0.0, 100.0]
    # January: A has 2 purchases by the month's end, B 1; June/July have no buyers.
    expected_repeat = [0.5, 0.0, 1.0, 1.0, 1.0, NAN, NAN, 0.0]
    assert kpis["repeat_rate"].tolist() == pytest.approx(expected_repeat, nan_ok=True)
    # Feb: {A, B} both back by 05-01; Mar: {A, B, C}, C never back; Apr: base from 01-02,
    # only B back by 06-30; May: {A, B, C} (C's 02-01 noon is after 02-01 00:00), none back;
    # Jun: {A, B, D}, only E buys later; Jul/Aug windows close after the last transaction.
    expected_churn = [NAN, 0.0, 1 / 3, 2 / 3, 1.0, 1.0, NAN, NAN]
    assert kpis["churn_rate"].tolist() == pytest.approx(expected_churn, nan_ok=True)


def test_cohort_retention() -> None:
    table = cohort_retention(_shop())
    assert table.index.equals(_months("2024-01", "2024-02", "2024-05", "2024-08"))
    assert table.columns.tolist() == list(range(8))
    expected = [
        [1.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0],  # A back in Mar, B in Apr
        [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, NAN],
        [1.0, 0.0, 0.0, 0.0, NAN, NAN, NAN, NAN],  # D's two May purchases count once
        [1.0, NAN, NAN, NAN, NAN, NAN, NAN, NAN],
    ]
    np.testing.assert_allclose(table.to_numpy(), np.array(expected))


def test_churn_rate_by_cutoff() -> None:
    labelled = pd.DataFrame(
        {
            "cutoff": pd.to_datetime(["2025-01-01"] * 4 + ["2025-02-01"] * 3),
            "split": ["train"] * 4 + ["test"] * 3,
            "churned": np.array([1, 0, 0, 1, 1, 1, 0], dtype="int8"),
        }
    )
    out = churn_rate_by_cutoff(labelled)
    assert out["split"].tolist() == ["train", "test"]
    assert out["customers"].tolist() == [4, 3]
    assert out["churned"].tolist() == [2, 2]
    assert out["churn_rate"].tolist() == pytest.approx([0.5, 2 / 3])


def test_churn_rate_by_cutoff_streams_a_folder_of_parts(tmp_path: Path) -> None:
    """A folder of parts (as Spark writes the labelled table, cutoffs split across parts
    and in no order) gives the table the frame gives, counted by DuckDB as it streams."""
    labelled = pd.DataFrame(
        {
            "cutoff": pd.to_datetime(["2025-02-01", "2025-01-01"] * 3 + ["2025-01-01"]),
            "split": ["test", "train"] * 3 + ["train"],
            "churned": np.array([1, 1, 0, 0, 1, 0, 1], dtype="int8"),
            "recency_days": np.arange(7.0),
        }
    )
    folder = tmp_path / "train.parquet"
    folder.mkdir()
    for i, part in enumerate((labelled.iloc[:3], labelled.iloc[3:])):
        part.to_parquet(folder / f"part-{i:05d}.snappy.parquet", index=False)
    (folder / "_SUCCESS").touch()
    expected = churn_rate_by_cutoff(labelled[["cutoff", "split", "churned"]])
    # pandas keeps int8 for sums this small (int64 from a few hundred rows up); DuckDB: int64.
    expected = expected.astype({"churned": "int64"})
    pd.testing.assert_frame_equal(churn_rate_by_cutoff(folder), expected)


def test_segment_sizes_keep_segment_order_and_empty_segments() -> None:
    snapshots = pd.DataFrame(
        {
            "cutoff": pd.to_datetime(["2025-01-01"] * 3 + ["2025-02-01"]),
            "segment": pd.Categorical(["Lost", "Champions", "Lost", "New"], categories=SEGMENTS),
        }
    )
    counts = segment_sizes(snapshots)
    assert counts.columns.tolist() == list(SEGMENTS)
    assert counts.loc[pd.Timestamp("2025-01-01"), ["Champions", "Lost", "New"]].tolist() == [
        1,
        2,
        0,
    ]
    assert counts.sum(axis=1).tolist() == [3, 1]
    shares = segment_sizes(snapshots, normalize=True)
    assert shares.loc[pd.Timestamp("2025-01-01"), "Lost"] == pytest.approx(2 / 3)
    assert shares.sum(axis=1).tolist() == pytest.approx([1.0, 1.0])


@st.composite
def shops(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 40))
    lines = [
        (
            draw(st.sampled_from(["a", "b", "c", "d", "e"])),
            draw(st.one_of(st.none(), st.sampled_from(["1", "2", "3", "4", "C1"]))),
            str(pd.Timestamp("2024-01-01") + pd.Timedelta(days=draw(st.integers(0, 500)))),
            draw(st.floats(-50, 100, allow_nan=False).filter(lambda a: a != 0)),
        )
        for _ in range(n)
    ]
    return _shop(lines)


# Few examples: every call runs the engine (test_kpi_engine holds it to the pandas oracle).
@settings(max_examples=8, deadline=None)
@given(shops())
def test_rates_are_shares_and_counts_add_up(shop: pd.DataFrame) -> None:
    bought = purchases(shop)
    table = cohort_retention(shop)
    if bought.empty:
        assert table.empty
        return
    assert (table[0] == 1.0).all()
    values = table.to_numpy()
    assert ((values[~np.isnan(values)] >= 0) & (values[~np.isnan(values)] <= 1)).all()
    n_customers = bought["customer_id"].nunique()
    assert orders_per_customer(shop)["customers"].sum() == n_customers
    assert 0 <= repeat_purchase_rate(shop) <= 1
    assert repeat_rate_by_cohort(shop)["customers"].sum() == n_customers
    kpis = monthly_kpis(shop)
    assert kpis["new_customers"].sum() == n_customers
    assert kpis["orders"].sum() == len(bought)
    assert kpis["revenue"].sum() == pytest.approx(shop["amount"].sum())
    assert (kpis["active_customers"] >= kpis["new_customers"]).all()
    for column in ("repeat_rate", "churn_rate"):
        rates = kpis[column].dropna()
        assert ((rates >= 0) & (rates <= 1)).all()
    assert len(inter_purchase_gaps(shop)) == len(bought) - n_customers
    assert (inter_purchase_gaps(shop) >= 0).all()
