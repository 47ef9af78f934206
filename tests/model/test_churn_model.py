"""The model matrix's category codes: the same codes as pandas' Categorical gives them."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from churn.model.churn_model import category_codes

CATEGORIES = ("GB", "DE", "1")


def _categorical_codes(values: pd.Series, categories: tuple[str, ...]) -> np.ndarray:
    """What model_matrix computed before (issue 20): the text of every row, then codes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns about values not in the categories
        return np.asarray(pd.Categorical(values.astype("string"), categories=categories).codes)


@pytest.mark.parametrize(
    "values",
    [
        pd.Series(["GB", "DE", "FR", None, "GB", np.nan, "", "de"], dtype=object),
        pd.Series(["GB", "DE", "FR", None, "GB"], dtype="string"),
        pd.Series([1, "1", 2.0, None], dtype=object),  # a number reads as its text
        pd.Series([None, np.nan], dtype=object),
        pd.Series([], dtype=object),
    ],
)
def test_category_codes_are_pandas_categorical_codes(values: pd.Series) -> None:
    assert np.array_equal(
        category_codes(values, CATEGORIES), _categorical_codes(values, CATEGORIES)
    )


def test_category_codes_on_many_rows_and_no_categories() -> None:
    rng = np.random.default_rng(0)
    values = pd.Series(rng.choice(["GB", "DE", "US", None], size=5_000), dtype=object)
    for categories in (CATEGORIES, ()):
        expected = _categorical_codes(values, categories)
        assert np.array_equal(category_codes(values, categories), expected)
