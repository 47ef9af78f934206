"""churn.portable_math: the C library's exp and log, whatever SIMD NumPy picked.

The features determinism test (tests/features/test_determinism.py) shows why;
here, the functions are exactly the C library's (as Python's math module
computes them) and keep the special values NumPy's give.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from churn import portable_math as pm

RNG = np.random.default_rng(0)
VALUES = np.concatenate([RNG.normal(0, 30, 20_000), RNG.uniform(-1e-3, 1e-3, 2_000)])


@pytest.mark.parametrize(
    ("ours", "reference", "inputs"),
    [
        (pm.exp, math.exp, VALUES),
        (pm.log, math.log, np.abs(VALUES) + 1e-300),
        (pm.log1p, math.log1p, np.abs(VALUES)),
        (pm.expm1, math.expm1, VALUES / 30),
    ],
)
def test_each_matches_the_c_library_closely(
    ours: Callable[[np.ndarray], np.ndarray],
    reference: Callable[[float], float],
    inputs: np.ndarray,
) -> None:
    got = ours(inputs)
    expected = np.array([reference(float(v)) for v in inputs])
    if ours in (pm.exp, pm.log):
        assert np.array_equal(got, expected)  # the very function Python's math calls
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-15, atol=0)  # Cephes: a few ulp


def test_special_values_are_numpys() -> None:
    x = np.array([-np.inf, -800.0, 0.0, 800.0, np.inf, np.nan])
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(pm.exp(x), np.exp(x))
        np.testing.assert_array_equal(
            pm.log(np.array([0.0, -1.0, np.inf])), [-np.inf, np.nan, np.inf]
        )
        np.testing.assert_array_equal(pm.log1p(np.array([-1.0, 0.0])), [-np.inf, 0.0])


def test_logaddexp_is_numpys_without_overflow() -> None:
    a = RNG.normal(0, 300, 5_000)
    b = RNG.normal(0, 300, 5_000)
    np.testing.assert_allclose(pm.logaddexp(a, b), np.logaddexp(a, b), rtol=1e-15)
    edges = np.array([-np.inf, -np.inf, np.inf, 3.0])
    others = np.array([-np.inf, 2.0, 5.0, -np.inf])
    np.testing.assert_array_equal(pm.logaddexp(edges, others), [-np.inf, 2.0, np.inf, 3.0])
    assert pm.logaddexp(1000.0, 1000.0) == pytest.approx(1000.0 + math.log(2))
