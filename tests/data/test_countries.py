"""A customer's country from the transactions: their latest order that names one."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from churn.data.countries import latest_countries


def test_latest_named_country_up_to_the_as_of_date(tmp_path: Path) -> None:
    path = tmp_path / "transactions.parquet"
    pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b", "c"],
            "order_id": ["1", "2", "3", "4", "5", "6"],
            "ts": pd.to_datetime(
                ["2026-01-01", "2026-03-01", "2026-05-01", "2026-02-01", "2026-04-01", "2026-01-01"]
            ),
            "amount": 10.0,
            "country": ["France", "Germany", "Spain", "Italy", None, ""],
        }
    ).to_parquet(path)
    assert latest_countries(path).to_dict("list") == {
        "customer_id": ["a", "b"],  # c names no country; b's latest order names none
        "country": ["Spain", "Italy"],
    }
    # A replayed list shows what was known then (an order on the as-of day counts).
    then = latest_countries(path, dt.date(2026, 3, 1))
    assert then.to_dict("list") == {"customer_id": ["a", "b"], "country": ["Germany", "Italy"]}
    # The nightly asks for the listed customers only (issue 20): the same countries.
    listed = latest_countries(path, None, pd.Series(["b", "c", "zz"]))
    assert listed.to_dict("list") == {"customer_id": ["b"], "country": ["Italy"]}
