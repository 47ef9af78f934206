"""distinct_rows and first_of_each: the distinct rows and an inverse, without a sort
(issue 20; the callers evaluate elementwise functions, so the rows' order is free)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churn.features.distinct import distinct_rows, first_of_each


def _histories() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    age_days = rng.integers(0, 900, 20_000).astype(float)
    t_days = np.floor(age_days * rng.random(20_000))
    x = np.where(t_days > 0, rng.integers(1, 30, 20_000), 0).astype(float)
    return x, t_days / 7.0, age_days / 7.0


def _same_as_np_unique(distinct: np.ndarray, index: np.ndarray, rows: np.ndarray) -> None:
    """The same distinct rows as np.unique (each once; NaN equal to NaN, as a label) and
    an exact inverse."""
    want = pd.DataFrame(rows).drop_duplicates().to_numpy()
    assert len(distinct) == len(want)
    order = np.lexsort(distinct.T[::-1])
    np.testing.assert_array_equal(distinct[order], want[np.lexsort(want.T[::-1])])
    np.testing.assert_array_equal(distinct[index], rows)


def test_whole_day_histories_give_np_uniques_rows_and_inverse() -> None:
    x, t_x, age = _histories()
    for columns, scales in (((x, t_x, age), (1.0, 7.0, 7.0)), ((x, age), (1.0, 7.0))):
        distinct, index = distinct_rows(columns, scales)
        _same_as_np_unique(distinct, index, np.column_stack(columns))


def test_other_values_take_the_general_path() -> None:
    x, t_x, age = _histories()
    for odd in (t_x + 0.01, np.where(t_x > 3, np.nan, t_x), -t_x, t_x * 2**22):
        distinct, index = distinct_rows((x, odd, age), (1.0, 7.0, 7.0))
        _same_as_np_unique(distinct, index, np.column_stack([x, odd, age]))


def test_first_of_each_numbers_rows_by_first_appearance() -> None:
    x = np.array([1.0, 2, 1, 1, 2, 0, np.nan, np.nan])
    t = np.array([0.5, 0.5, 0.5, 0.7, 0.5, -0.0, 1.0, 1.0])
    first, codes = first_of_each((x, t))
    np.testing.assert_array_equal(first, [0, 1, 3, 5, 6])
    np.testing.assert_array_equal(codes, [0, 1, 0, 2, 1, 3, 4, 4])
    first, codes = first_of_each((x,))
    np.testing.assert_array_equal(codes, [0, 1, 0, 0, 1, 2, 3, 3])
