"""Running totals read at a cutoff's edges: what each edge looks up, on a hand-made shop.

Bucket totals are written by hand (customer, bucket, counts), so every case a
cutoff's edges meet is here by construction: no order since before the window
starts, orders inside it, a first order after it started, orders after the
cutoff (the label) and none. The oracle sums the bucket totals up to each edge.
"""

from __future__ import annotations

from collections.abc import Iterator

import ibis
import pandas as pd
import pytest
from ibis.backends import BaseBackend

from churn.features.backend import connect
from churn.features.rfm import _as_of_edge, _totals_at_edges, customers, running_totals

AT, LO, END = 6, 4, 8  # the cutoff's bucket, the 30-day window's start, the label's end
# customer -> buckets with an order (one order each, revenue 10 x the bucket)
SHOP = {
    "A": [1, 5],  # ordered inside the window: its row at LO ended by AT
    "B": [2],  # nothing since before the window: one row from LO through END
    "C": [6, 9],  # first order after the window started: no row at LO
    "D": [3, 7],  # bought in the label window: a later row at END
    "E": [7],  # first order after the cutoff: no row at the cutoff
}


@pytest.fixture(scope="module")
def con() -> Iterator[BaseBackend]:
    backend = connect("duckdb")
    yield backend
    backend.disconnect()


def _bucket_totals() -> pd.DataFrame:
    rows = [(c, b) for c, buckets in SHOP.items() for b in buckets]
    frame = pd.DataFrame(rows, columns=["customer_id", "bucket"]).astype({"bucket": "int32"})
    seconds = frame["bucket"].astype("int64") * 86_400
    return frame.assign(
        n_orders=1,
        n_purchase_days=1,
        revenue=frame["bucket"].astype("int64") * 10,
        max_order_value=frame["bucket"].astype("int64") * 10,
        first_purchase_s=seconds,
        last_purchase_s=seconds,
        gap_sq_s=0,
        n_holiday_orders=0,
        n_returns=0,
        country="FR",
    )


def _edges() -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "cutoff_i": [0],
            "cutoff": pd.to_datetime(["2024-01-01"]).astype("datetime64[us]"),
            "cutoff_s": [1_704_067_200],
            "split": ["test"],
            "at": [AT],
            "end": [END],
            "lo_30d": [LO],
        }
    )
    return frame.astype({"cutoff_i": "int32", "at": "int32", "end": "int32", "lo_30d": "int32"})


def _upto(totals: pd.DataFrame, edge: int, column: str) -> pd.Series:
    """The oracle: each customer's bucket totals summed up to and including ``edge``."""
    kept = totals[totals["bucket"] <= edge]
    return kept.groupby("customer_id")[column].sum()


def test_the_edges_read_what_the_buckets_add_up_to(con: BaseBackend) -> None:
    totals = _bucket_totals()
    running = running_totals(ibis.memtable(totals))
    edges = ibis.memtable(_edges())
    t = _totals_at_edges(running, edges, [30], [30], with_label=True)
    got = con.to_pandas(t).set_index("customer_id").sort_index()
    assert got.index.tolist() == ["A", "B", "C", "D"]  # E had bought nothing by the cutoff
    for column, edge, oracle in [
        ("n_orders", AT, "n_orders"),
        ("revenue", AT, "revenue"),
        ("n_before_30d", LO, "n_orders"),
        ("revenue_before_30d", LO, "revenue"),
        ("n_by_end", END, "n_orders"),
    ]:
        expected = _upto(totals, edge, oracle).reindex(got.index, fill_value=0)
        assert got[column].tolist() == expected.tolist(), column


def test_an_edge_looks_up_only_the_customers_who_moved_since(con: BaseBackend) -> None:
    """The row at the window's start is looked up only where it is not the row at the
    cutoff (an order in between), the row at the label's end only where an order came
    after the cutoff: for everyone else the cutoff's own row serves."""
    running = running_totals(ibis.memtable(_bucket_totals()))
    edges = ibis.memtable(_edges())
    columns = {"customer_id": "customer_id"}

    def who(edge: str, *, moved: bool) -> list[str]:
        table = _as_of_edge(running, edges, edge, columns, moved=moved)
        return sorted(con.to_pandas(table)["customer_id"])

    assert who("lo_30d", moved=False) == ["A", "B", "D"]
    assert who("lo_30d", moved=True) == ["A"]
    assert who("end", moved=False) == ["A", "B", "C", "D", "E"]
    assert who("end", moved=True) == ["D", "E"]


def test_each_customer_is_listed_once(con: BaseBackend) -> None:
    running = running_totals(ibis.memtable(_bucket_totals()))
    ids = con.to_pandas(customers(running))["customer_id"]
    assert sorted(ids) == sorted(SHOP)
