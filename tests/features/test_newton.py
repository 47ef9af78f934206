"""Newton's method with a finite-difference Hessian: converges fast near a minimum, from
a non-convex start, and says so (converged=False) where a local method must not be trusted."""

from __future__ import annotations

import numpy as np
import pytest

from churn.features.newton import cholesky, cholesky_solve, newton_minimise

FloatArray = np.ndarray


def _anywhere(x: FloatArray) -> bool:
    return True


def _smooth(x: FloatArray) -> tuple[float, FloatArray]:
    """A strictly convex, non-quadratic function of four variables; minimum at c."""
    c = np.array([0.3, -1.0, 2.0, 0.5])
    d = x - c
    value = float(np.sum(np.exp(d) - d) + 0.5 * (d[0] - d[1]) ** 2)
    grad = np.exp(d) - 1
    grad[0] += d[0] - d[1]
    grad[1] -= d[0] - d[1]
    return value, grad


def test_cholesky_solves_a_positive_definite_system_and_refuses_an_indefinite_one() -> None:
    matrix = [
        [4.0, 2.0, 0.4, 0.0],
        [2.0, 3.0, 0.5, 0.1],
        [0.4, 0.5, 2.0, 0.3],
        [0.0, 0.1, 0.3, 1.0],
    ]
    want = [1.0, -2.0, 0.5, 3.0]
    rhs = [sum(matrix[i][j] * want[j] for j in range(4)) for i in range(4)]
    lower = cholesky(matrix)
    assert lower is not None
    np.testing.assert_allclose(cholesky_solve(lower, rhs), want, rtol=1e-14)
    assert cholesky([[1.0, 2.0], [2.0, 1.0]]) is None  # eigenvalues 3 and -1
    assert cholesky([[np.nan, 0.0], [0.0, 1.0]]) is None


def test_a_near_start_converges_in_a_few_evaluations() -> None:
    """From 0.1 off: one Hessian (4 gradients) and a few full steps, to rounding."""
    start = np.array([0.3, -1.0, 2.0, 0.5]) + 0.1
    result = newton_minimise(_smooth, start, _anywhere)
    assert result.converged and result.message == "converged"
    np.testing.assert_allclose(result.x, [0.3, -1.0, 2.0, 0.5], atol=1e-8)
    assert result.evaluations <= 10


@pytest.mark.parametrize("given", ["last fit's", "wrong"])
def test_a_given_hessian_saves_measuring_one_and_a_wrong_one_is_replaced(given: str) -> None:
    """A warm start's Hessian (from a fit 0.1 away) saves the four gradients of measuring
    one; a wrong one (indefinite) costs steps, not the answer."""
    start = np.array([0.3, -1.0, 2.0, 0.5]) + 0.1
    previous = newton_minimise(_smooth, start + 0.1, _anywhere)
    assert previous.converged and previous.hessian is not None
    fresh = newton_minimise(_smooth, start, _anywhere)
    hessian = previous.hessian if given == "last fit's" else -np.eye(4)
    result = newton_minimise(_smooth, start, _anywhere, hessian0=hessian)
    assert result.converged
    np.testing.assert_allclose(result.x, [0.3, -1.0, 2.0, 0.5], atol=1e-7)
    if given == "last fit's":
        assert result.evaluations <= fresh.evaluations - 3


def test_a_non_convex_start_still_reaches_the_minimum() -> None:
    """Rosenbrock's valley from (-1.2, 1): the Hessian is indefinite on the way."""

    def rosenbrock(x: FloatArray) -> tuple[float, FloatArray]:
        a, b = float(x[0]), float(x[1])
        value = (1 - a) ** 2 + 100 * (b - a * a) ** 2
        return value, np.array([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)])

    result = newton_minimise(rosenbrock, [-1.2, 1.0], _anywhere, tol=1e-20, max_evaluations=200)
    assert result.converged
    np.testing.assert_allclose(result.x, [1.0, 1.0], atol=1e-8)


def test_it_gives_up_rather_than_leave_the_feasible_region() -> None:
    """The minimum (at 5) lies outside |x| < 1: not converged, and never evaluated outside."""
    seen = []

    def outside(x: FloatArray) -> tuple[float, FloatArray]:
        seen.append(float(x[0]))
        return float((x[0] - 5.0) ** 2), np.array([2 * (x[0] - 5.0)])

    result = newton_minimise(outside, [0.0], lambda x: bool(abs(x[0]) < 1))
    assert not result.converged and "feasible" in result.message
    assert max(abs(v) for v in seen) < 1


def test_a_flat_objective_is_stationary_but_not_a_minimum() -> None:
    """Zero gradient and zero curvature (e.g. every customer bought today): no minimum to
    trust, said at once instead of iterating."""
    result = newton_minimise(lambda x: (1.0, np.zeros(2)), [0.5, 0.5], _anywhere)
    assert not result.converged and "stationary" in result.message
    assert result.evaluations == 3  # the start and the Hessian's two gradients


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_objective_is_not_converged(bad: float) -> None:
    result = newton_minimise(lambda x: (bad, np.zeros(2)), [0.0, 0.0], _anywhere)
    assert not result.converged and result.evaluations == 1
