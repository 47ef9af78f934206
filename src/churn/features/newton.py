"""Newton's method for the BTYD fits, in a few evaluations and the same bits on every CPU.

The fits run once per cutoff, each warm-started from the previous cutoff's
parameters, which a month's data moves only a little. There a general-purpose
optimiser (TNC) still spends 25-115 likelihood evaluations feeling out a
curvature Newton's method gets from the gradient directly: a forward-difference
Hessian of the analytic gradient costs one evaluation per parameter, and from a
start that close the Newton steps then converge in two or three more. At 10 M
transactions this took the BG/NBD and Gamma-Gamma fits from ~60-75 evaluations
each to ~8.

It is a fast path, not a replacement: wherever Newton is not the right tool
(the Hessian is not positive definite, a step leaves the bounds, the steps do
not shrink) it gives up and the caller runs TNC, which handles bounds and
flat ridges. Everything here is Python float arithmetic on a 4x4 matrix at
most (no LAPACK, whose kernels differ by CPU), so the same inputs give the same
bits everywhere, as the features need (churn.features.btyd).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
Objective = Callable[[FloatArray], tuple[float, FloatArray]]

_STEP = 1e-5  # forward-difference step for the Hessian (log-parameters)
_CONVERGED = 1e-9  # a Newton step this small (in every coordinate) is the last one
_TRUSTED = 1e-6  # a step this small is taken whole (see newton_minimise)
_SLOW = 0.25  # a step not this much smaller than the last asks for a fresh Hessian
_MAX_STEPS = 20
_MAX_HALVINGS = 30


def _cholesky(matrix: list[list[float]]) -> list[list[float]] | None:
    """Lower-triangular L with L L^T = matrix; None when it is not positive definite."""
    n = len(matrix)
    lower = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            rest = matrix[i][j] - math.fsum(lower[i][k] * lower[j][k] for k in range(j))
            if i == j:
                if not rest > 0.0:
                    return None
                lower[i][i] = math.sqrt(rest)
            else:
                lower[i][j] = rest / lower[j][j]
    return lower


def _solve(lower: list[list[float]], rhs: list[float]) -> list[float]:
    """x with L L^T x = rhs, by forward then back substitution."""
    n = len(rhs)
    y = [0.0] * n
    for i in range(n):
        y[i] = (rhs[i] - math.fsum(lower[i][k] * y[k] for k in range(i))) / lower[i][i]
    x = [0.0] * n
    for i in reversed(range(n)):
        x[i] = (y[i] - math.fsum(lower[k][i] * x[k] for k in range(i + 1, n))) / lower[i][i]
    return x


def _hessian(objective: Objective, theta: FloatArray, gradient: FloatArray) -> list[list[float]]:
    """Forward differences of the analytic gradient, made symmetric."""
    n = len(theta)
    columns = []
    for i in range(n):
        moved = theta.copy()
        moved[i] += _STEP
        _, g = objective(moved)
        columns.append([(float(g[j]) - float(gradient[j])) / _STEP for j in range(n)])
    return [[(columns[i][j] + columns[j][i]) / 2 for j in range(n)] for i in range(n)]


def newton_minimise(objective: Objective, theta0: ArrayLike, bound: float) -> FloatArray | None:
    """The minimum of ``objective`` (value and gradient) near ``theta0``, every coordinate
    within +-``bound``; None when Newton's method is not the tool here (see the module).

    The Hessian is reused while the steps shrink fast (near the optimum it barely
    changes, and each step shrinks the error by its relative error) and taken again
    where they do not. Steps below _TRUSTED are taken whole: there the quadratic model is
    exact to rounding, and the objective's own rounding could reject a step that helps.
    """
    theta = np.asarray(theta0, dtype=np.float64).copy()
    value, gradient = objective(theta)
    if not (math.isfinite(value) and np.all(np.isfinite(gradient))):
        return None
    lower, fresh, previous = None, False, math.inf
    for _ in range(_MAX_STEPS):
        if lower is None:
            lower, fresh = _cholesky(_hessian(objective, theta, gradient)), True
            if lower is None:
                return None
        step = np.array(_solve(lower, [float(g) for g in gradient]))
        size = float(np.max(np.abs(step)))
        if not math.isfinite(size):
            return None
        if size < _CONVERGED:
            return theta
        if size > _SLOW * previous and not fresh:
            lower = None  # the old curvature no longer fits: take it again here
            continue
        accepted = _line_search(objective, theta, value, step, bound, size < _TRUSTED)
        if accepted is None:
            return None
        theta, value, gradient = accepted
        fresh, previous = False, size
    return None


def _line_search(
    objective: Objective,
    theta: FloatArray,
    value: float,
    step: FloatArray,
    bound: float,
    trusted: bool,
) -> tuple[FloatArray, float, FloatArray] | None:
    """The first of theta - step, theta - step / 2, ... that does not increase the objective
    (the first, when ``trusted``); None when one leaves the bounds or none is found."""
    scale = 1.0
    for _ in range(_MAX_HALVINGS):
        candidate = theta - scale * step
        if float(np.max(np.abs(candidate))) > bound:
            return None
        new_value, new_gradient = objective(candidate)
        finite = math.isfinite(new_value) and bool(np.all(np.isfinite(new_gradient)))
        if finite and (trusted or new_value <= value):
            return candidate, new_value, new_gradient
        scale /= 2
    return None
