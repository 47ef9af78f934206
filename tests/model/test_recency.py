"""churn.model.recency: row weights halve every ``half_life`` cutoffs back from the newest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.model.recency import cutoff_weights


def _rows(cutoffs: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"cutoff": pd.to_datetime(cutoffs), "customer_id": range(len(cutoffs))})


def test_weights_halve_every_half_life_cutoffs_and_average_one() -> None:
    rows = _rows(["2024-03-01", "2024-01-01", "2024-02-01", "2024-03-01", "2024-01-01"])
    weight = cutoff_weights(rows, half_life=1.0)
    assert weight is not None
    assert weight.mean() == pytest.approx(1.0)
    by_cutoff = dict(zip(rows["cutoff"].dt.strftime("%m"), weight, strict=True))
    assert by_cutoff["03"] / by_cutoff["02"] == pytest.approx(2.0)
    assert by_cutoff["03"] / by_cutoff["01"] == pytest.approx(4.0)
    # Age counts cutoffs, not days: uneven spacing gives the same weights.
    uneven = _rows(["2024-03-01", "2023-01-01", "2024-02-20", "2024-03-01", "2023-01-01"])
    np.testing.assert_allclose(cutoff_weights(uneven, 1.0), weight)


def test_no_half_life_means_equal_weights() -> None:
    assert cutoff_weights(_rows(["2024-01-01", "2024-02-01"]), None) is None
