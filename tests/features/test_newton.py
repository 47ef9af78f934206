"""Newton's fast path for the BTYD fits: it converges where it should and gives up (None,
so the caller runs TNC) where it should not be trusted."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churn.features.newton import newton_minimise


def _quartic(centre: np.ndarray, weights: np.ndarray):  # type: ignore[no-untyped-def]
    """A smooth convex function whose Hessian changes away from its minimum at ``centre``."""

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        d = theta - centre
        value = float(np.sum(weights * d * d) + np.sum(d**4) + 0.3 * d[0] * d[1])
        grad = 2 * weights * d + 4 * d**3
        grad[0] += 0.3 * d[1]
        grad[1] += 0.3 * d[0]
        return value, grad

    return objective


@settings(max_examples=40, deadline=None)
@given(
    centre=st.lists(st.floats(-3, 3), min_size=3, max_size=3),
    offset=st.lists(st.floats(-0.5, 0.5), min_size=3, max_size=3),
    weights=st.lists(st.floats(0.5, 20), min_size=3, max_size=3),
)
def test_converges_to_the_minimum_from_nearby(
    centre: list[float], offset: list[float], weights: list[float]
) -> None:
    c = np.array(centre)
    found = newton_minimise(_quartic(c, np.array(weights)), c + np.array(offset), bound=20.0)
    assert found is not None
    np.testing.assert_allclose(found, c, atol=1e-8)


def test_few_evaluations_from_a_close_start() -> None:
    calls = []
    objective = _quartic(np.array([1.0, -2.0, 0.5]), np.array([3.0, 1.0, 8.0]))

    def counted(theta: np.ndarray) -> tuple[float, np.ndarray]:
        calls.append(1)
        return objective(theta)

    assert newton_minimise(counted, [1.01, -2.02, 0.49], bound=20.0) is not None
    assert len(calls) <= 1 + 3 + 4  # start, Hessian, steps


def test_the_same_bits_every_time() -> None:
    objective = _quartic(np.array([0.3, 0.1, -0.7]), np.array([2.0, 5.0, 1.0]))
    runs = [newton_minimise(objective, [0.2, 0.3, -0.5], bound=20.0) for _ in range(3)]
    assert all(r is not None and r.tobytes() == runs[0].tobytes() for r in runs)  # type: ignore[union-attr]


def test_gives_up_where_the_curvature_is_negative() -> None:
    def saddle(theta: np.ndarray) -> tuple[float, np.ndarray]:
        return float(theta[0] ** 2 - theta[1] ** 2), np.array([2 * theta[0], -2 * theta[1]])

    assert newton_minimise(saddle, [0.5, 0.5], bound=20.0) is None


def test_gives_up_where_the_minimum_is_beyond_the_bounds() -> None:
    objective = _quartic(np.array([30.0, 0.0, 0.0]), np.array([1.0, 1.0, 1.0]))
    assert newton_minimise(objective, [19.0, 0.0, 0.0], bound=20.0) is None


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_gives_up_where_the_objective_is_not_finite(bad: float) -> None:
    def broken(theta: np.ndarray) -> tuple[float, np.ndarray]:
        return bad, np.zeros(len(theta))

    assert newton_minimise(broken, [0.0, 0.0], bound=20.0) is None
