"""distinct_rows: np.unique(axis=0)'s answer by one integer sort (issue 20)."""

from __future__ import annotations

import numpy as np

from churn.features.distinct import distinct_rows


def _histories() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    age_days = rng.integers(0, 900, 20_000).astype(float)
    t_days = np.floor(age_days * rng.random(20_000))
    x = np.where(t_days > 0, rng.integers(1, 30, 20_000), 0).astype(float)
    return x, t_days / 7.0, age_days / 7.0


def test_whole_day_histories_give_np_uniques_rows_and_inverse() -> None:
    x, t_x, age = _histories()
    for columns, scales in (((x, t_x, age), (1.0, 7.0, 7.0)), ((x, age), (1.0, 7.0))):
        distinct, index = distinct_rows(columns, scales)
        rows = np.column_stack(columns)
        want, want_index = np.unique(rows, axis=0, return_inverse=True)
        np.testing.assert_array_equal(distinct, want)
        np.testing.assert_array_equal(index, want_index.ravel())
        np.testing.assert_array_equal(distinct[index], rows)


def test_other_values_take_the_general_path() -> None:
    x, t_x, age = _histories()
    for odd in (t_x + 0.01, np.where(t_x > 3, np.nan, t_x), -t_x, t_x * 2**22):
        distinct, index = distinct_rows((x, odd, age), (1.0, 7.0, 7.0))
        rows = np.column_stack([x, odd, age])
        want, want_index = np.unique(rows, axis=0, return_inverse=True)
        np.testing.assert_array_equal(distinct, want)
        np.testing.assert_array_equal(index, want_index.ravel())
