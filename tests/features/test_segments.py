"""RFM scores and segments: ties never split, fixed edges win, every cell has a name."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from churn.features.segments import _SEGMENT_GRID, SEGMENTS, RFMScorer, score_against


def _snapshot(recency: list[float], orders: list[int], revenue: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [str(i) for i in range(len(recency))],
            "cutoff": pd.Timestamp("2025-01-01"),
            "recency_days": recency,
            "n_orders": orders,
            "revenue": revenue,
        }
    )


def test_every_score_cell_has_one_of_the_ten_segments() -> None:
    assert _SEGMENT_GRID.shape == (5, 5)
    assert set(_SEGMENT_GRID.ravel()) == set(SEGMENTS)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0, 1000, allow_nan=False), min_size=1, max_size=30),
    st.lists(st.floats(0, 1000, allow_nan=False), min_size=4, max_size=4),
)
def test_score_is_one_plus_edges_strictly_below(values: list[float], edges: list[float]) -> None:
    edges = sorted(edges)
    expected = [1 + sum(e < v for e in edges) for v in values]
    assert score_against(pd.Series(values), edges, reverse=False).tolist() == expected
    reverse = score_against(pd.Series(values), edges, reverse=True).tolist()
    assert reverse == [6 - s for s in expected]


def test_one_time_buyers_share_the_lowest_frequency_score() -> None:
    orders = [1] * 70 + [2] * 15 + [3] * 10 + [8] * 5
    n = len(orders)
    frame = _snapshot(list(np.linspace(1, 300, n)), orders, list(np.linspace(10, 500, n)))
    scored = RFMScorer().fit(frame).transform(frame)
    assert scored.loc[scored["n_orders"] == 1, "f_score"].eq(1).all()
    assert scored.groupby("n_orders")["f_score"].nunique().eq(1).all()
    assert scored["f_score"].is_monotonic_increasing
    assert scored["r_score"].is_monotonic_decreasing  # recency rises along the frame


def test_fixed_edges_replace_quintiles_and_are_recorded() -> None:
    frame = _snapshot([10, 50, 100, 200, 400], [1, 2, 3, 4, 5], [10, 20, 30, 40, 50])
    scorer = RFMScorer(fixed_edges={"recency": [30, 60, 120, 240]}).fit(frame)
    assert scorer.edges_["2025-01-01"]["recency"] == [30, 60, 120, 240]
    scored = scorer.transform(frame)
    assert scored["r_score"].tolist() == [5, 4, 3, 2, 1]
    champion = scored.iloc[0]
    assert champion["segment"] in SEGMENTS


def test_segments_follow_the_documented_table() -> None:
    frame = _snapshot([1, 1, 400, 400], [9, 1, 9, 1], [900, 10, 900, 10])
    scorer = RFMScorer(
        fixed_edges={
            "recency": [30, 60, 120, 240],
            "frequency": [1, 2, 3, 4],
            "monetary": [50, 100, 200, 400],
        }
    )
    scored = scorer.fit(frame).transform(frame)
    assert scored["segment"].tolist() == ["Champions", "New", "Can't lose them", "Lost"]


def test_the_segment_column_is_the_grid_cell_as_plain_text_on_random_rows() -> None:
    """Built from Arrow (issue 20), the column must stay what the grid lookup gave: the
    same names, the plain "str" dtype MLflow and the exports read, the frame's index."""
    rng = np.random.default_rng(4)
    n = 5_000
    rows = pd.DataFrame(
        {
            "cutoff": pd.Timestamp("2026-01-01"),
            "recency_days": rng.integers(0, 400, n),
            "n_orders": rng.integers(1, 12, n),
            "revenue": rng.gamma(2.0, 50.0, n),
        },
        index=pd.RangeIndex(10, 10 + n),
    )
    out = RFMScorer().fit(rows).transform(rows)
    cell = _SEGMENT_GRID[out["r_score"].to_numpy() - 1, out["fm_score"].to_numpy() - 1]
    expected = pd.Series(cell, index=rows.index, dtype="str", name="segment")
    pd.testing.assert_series_equal(out["segment"], expected)
    assert out["segment"].nunique() > 5
