"""The synthetic sample must be reproducible, hard like real data, and consistent with its truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.config import GenerateConfig
from churn.data.generate import RAW_COLUMNS, TRUTH_COLUMNS, SyntheticShop, generate_shop


@pytest.fixture(scope="module")
def shop() -> SyntheticShop:
    return generate_shop(GenerateConfig(seed=11, n_customers=4_000))


def _purchases(shop: SyntheticShop) -> pd.DataFrame:
    tx = shop.transactions
    return tx[(tx["CustomerID"] != "") & (tx["Amount"] > 0)]


def test_same_seed_gives_identical_rows() -> None:
    config = GenerateConfig(seed=5, n_customers=500)
    a, b = generate_shop(config), generate_shop(config)
    pd.testing.assert_frame_equal(a.transactions, b.transactions)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    c = generate_shop(GenerateConfig(seed=6, n_customers=500))
    assert not a.transactions["Amount"].equals(c.transactions["Amount"])


def test_columns_look_like_a_retail_export(shop: SyntheticShop) -> None:
    assert list(shop.transactions.columns) == RAW_COLUMNS
    assert list(shop.truth.columns) == TRUTH_COLUMNS
    config = GenerateConfig()
    ts = shop.transactions["InvoiceDate"]
    assert ts.min() >= pd.Timestamp(config.start)
    assert ts.max() < pd.Timestamp(config.end)
    assert ts.is_monotonic_increasing


def test_most_customers_are_sparse(shop: SyntheticShop) -> None:
    orders = _purchases(shop).groupby("CustomerID").size()
    one_time_share = float((orders == 1).mean())
    assert 0.3 < one_time_share < 0.7
    assert orders.max() >= 15  # heavy tail: a few very frequent buyers


def test_christmas_peak_and_weekly_rhythm(shop: SyntheticShop) -> None:
    months = _purchases(shop)["InvoiceDate"].dt.month.value_counts()
    assert months[12] > 1.5 * months.drop([11, 12]).mean()
    weekdays = _purchases(shop)["InvoiceDate"].dt.dayofweek.value_counts()
    assert weekdays[4] > weekdays[6]  # Friday busier than Sunday


def test_messy_rows_are_present(shop: SyntheticShop) -> None:
    tx = shop.transactions
    guest_share = float((tx["CustomerID"] == "").mean())
    assert 0.1 < guest_share < 0.2
    cancellations = tx[tx["Amount"] < 0]
    assert len(cancellations) > 0
    assert cancellations["Invoice"].str.startswith("C").all()


def test_nobody_buys_after_their_hidden_dropout(shop: SyntheticShop) -> None:
    last = _purchases(shop).groupby("CustomerID")["InvoiceDate"].max()
    truth = shop.truth.set_index("customer_id")
    dropped = truth["dropout_at"].notna()
    joined = truth.loc[dropped].join(last.rename("last_purchase"), how="inner")
    # Times are floored to the minute in the export; dropout is exact.
    slack = pd.Timedelta(days=1)
    assert (joined["last_purchase"] <= joined["dropout_at"] + slack).all()
    assert dropped.mean() > 0.3


def test_every_kind_of_customer_appears(shop: SyntheticShop) -> None:
    kinds = shop.truth["customer_type"].value_counts(normalize=True)
    assert set(kinds.index) == {"poisson", "regular", "seasonal"}
    assert kinds["seasonal"] > 0.05


def test_rejects_inconsistent_config() -> None:
    with pytest.raises(ValueError, match="end must be after start"):
        GenerateConfig(start="2025-01-01", end="2024-01-01")
    assert np.isclose(GenerateConfig().regular_fraction + GenerateConfig().seasonal_fraction, 0.32)


def _orders_per_buyer_by_year(shop: SyntheticShop) -> pd.Series:
    """Purchases per distinct buyer in each calendar year of the data."""
    purchases = _purchases(shop)
    by_year = purchases.groupby(purchases["InvoiceDate"].dt.year)["CustomerID"]
    return by_year.size() / by_year.nunique()


def test_a_declining_shop_buys_less_each_year_and_a_stationary_one_is_unchanged() -> None:
    base = {"seed": 12, "n_customers": 3_000, "start": "2021-01-01", "end": "2024-01-01"}
    stationary = generate_shop(GenerateConfig(**base))
    pd.testing.assert_frame_equal(
        stationary.transactions,
        generate_shop(GenerateConfig(**base, trend_per_year=0.0)).transactions,
    )
    declining = _orders_per_buyer_by_year(
        generate_shop(GenerateConfig(**base, trend_per_year=-0.8))
    )
    steady = _orders_per_buyer_by_year(stationary)
    # exp(-0.8 * 2) = 0.2: the last year's buyers buy far less often than the first's,
    # well beyond what the stationary shop's cohorts aging does to the same ratio.
    assert declining[2023] / declining[2021] < 0.75 * (steady[2023] / steady[2021])
