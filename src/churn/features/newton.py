"""Newton's method for a smooth objective of a few parameters with an exact gradient.

The BTYD fits are 3-4 parameter maximum-likelihood problems started close to their
optimum (the previous cutoff's fit, a month earlier). There a Newton step with the
Hessian lands within rounding in two or three steps, where TNC, a truncated Newton
method that only sees gradients, spent 20-40 likelihood evaluations. The Hessian is
forward differences of the exact gradient (n extra evaluations) and is kept while the
steps keep converging fast (a chord step costs one evaluation); it is computed again
when they stop doing so.

It is a local method and says so: it returns ``converged=False`` (the caller falls
back to a global one) when a step would leave the feasible box, when the Hessian is not
positive definite where it stops, or when it runs out of iterations.

Deterministic by construction: the linear algebra is a hand-written Cholesky
factorisation in Python floats (``np.linalg`` calls LAPACK/BLAS, whose kernels and
threading vary by host), and every other operation is elementwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
Vector = Sequence[float] | FloatArray
Objective = Callable[[FloatArray], tuple[float, FloatArray]]

_ARMIJO = 1e-4  # sufficient decrease, as a share of the step's predicted decrease
_HALVINGS = 20  # line-search halvings before giving up
_NOISE = 1e-13  # relative change of the objective that is rounding, not a change


@dataclass(frozen=True)
class NewtonResult:
    """Where Newton's method stopped and whether it may be trusted there."""

    x: FloatArray
    value: float
    gradient: FloatArray
    evaluations: int
    converged: bool
    message: str
    hessian: FloatArray | None = None  # the last one used: a warm start for a similar problem


def cholesky(matrix: Sequence[Sequence[float]]) -> list[list[float]] | None:
    """Lower-triangular L with L L^T = ``matrix`` (symmetric), or None when it is not
    positive definite. Python floats: the same bits everywhere."""
    n = len(matrix)
    lower = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            rest = float(matrix[i][j]) - sum(lower[i][k] * lower[j][k] for k in range(j))
            if i == j:
                if not rest > 0.0:  # also refuses NaN
                    return None
                lower[i][i] = math.sqrt(rest)
            else:
                lower[i][j] = rest / lower[j][j]
    return lower


def cholesky_solve(lower: list[list[float]], rhs: Vector) -> list[float]:
    """x with L L^T x = ``rhs``, by forward then back substitution."""
    n = len(lower)
    y = [0.0] * n
    for i in range(n):
        y[i] = (float(rhs[i]) - sum(lower[i][k] * y[k] for k in range(i))) / lower[i][i]
    x = [0.0] * n
    for i in reversed(range(n)):
        x[i] = (y[i] - sum(lower[k][i] * x[k] for k in range(i + 1, n))) / lower[i][i]
    return x


def hessian(objective: Objective, x: FloatArray, gradient: FloatArray, step: float) -> FloatArray:
    """Forward differences of the exact gradient, symmetrised: n evaluations."""
    n = len(x)
    columns = []
    for k in range(n):
        shifted = x.copy()
        shifted[k] += step
        columns.append((objective(shifted)[1] - gradient) / step)
    raw = np.array(columns)  # raw[k, i] = d g_i / d x_k
    return (raw + raw.T) / 2


def _dot(a: Vector, b: Vector) -> float:
    """A Python-float dot product (numpy's @ and dot are BLAS calls)."""
    return sum(float(u) * float(v) for u, v in zip(a, b, strict=True))


def _descent(matrix: FloatArray, gradient: FloatArray) -> tuple[FloatArray, bool] | None:
    """The Newton step -H^-1 g and whether H was positive definite; otherwise the step
    with H + mu I for the least mu (by factors of 10) that makes it so (a step between
    Newton's and steepest descent). None if no shift helps (NaN in H)."""
    rows = [[float(v) for v in row] for row in matrix]
    scale = max(1.0, *(abs(rows[i][i]) for i in range(len(rows))))
    shift = 0.0
    for _ in range(40):
        lower = cholesky(
            [
                [v + (shift if i == j else 0.0) for j, v in enumerate(row)]
                for i, row in enumerate(rows)
            ]
        )
        if lower is not None:
            step = cholesky_solve(lower, [-float(g) for g in gradient])
            return np.array(step), shift == 0.0
        shift = 1e-8 * scale if shift == 0.0 else shift * 10
    return None


def _line_search(
    objective: Objective, x: FloatArray, value: float, step: FloatArray, slope: float
) -> tuple[float, FloatArray, float, FloatArray] | None:
    """Backtracking from the full step to the first with sufficient decrease (Armijo):
    (its share of the step, the point, its value and gradient); None if none has it.

    Values within rounding of the start count as no increase: near the optimum the
    predicted decrease is far below what the objective's last bits can show."""
    slack = _NOISE * max(1.0, abs(value))
    t = 1.0
    for _ in range(_HALVINGS):
        trial = x + t * step
        trial_value, trial_gradient = objective(trial)
        if math.isfinite(trial_value) and trial_value <= value + _ARMIJO * t * slope + slack:
            return t, trial, trial_value, trial_gradient
        t /= 2
    return None


def _updated(
    matrix: FloatArray, full: bool, step: FloatArray, gradient: FloatArray, new: FloatArray
) -> FloatArray | None:
    """The Hessian for the next step: BFGS-corrected while full Newton steps (from a
    positive definite one) make progress; None (measure it again) after a shortened or
    shifted step, or one that raised the gradient."""
    if not full or _dot(new, new) > _dot(gradient, gradient):
        return None
    return _bfgs(matrix, step, new - gradient)


def _bfgs(matrix: FloatArray, step: FloatArray, change: FloatArray) -> FloatArray | None:
    """The Hessian corrected by BFGS along the last step: H + y y'/y's - (H s)(H s)'/s'H s
    for step s and gradient change y, so the curvature along the step is the measured one
    (a flat ridge bends: its curvature changes most). None (compute it afresh) when the
    curvature measured is not positive."""
    rows = [[float(v) for v in row] for row in matrix]
    s, y = [float(v) for v in step], [float(v) for v in change]
    hs = [_dot(row, s) for row in rows]
    ys, shs = _dot(y, s), _dot(s, hs)
    if not (ys > 0.0 and shs > 0.0):
        return None
    n = len(s)
    return np.array(
        [[rows[i][j] + y[i] * y[j] / ys - hs[i] * hs[j] / shs for j in range(n)] for i in range(n)]
    )


def newton_minimise(
    objective: Objective,
    x0: Vector,
    feasible: Callable[[FloatArray], bool],
    *,
    tol: float = 1e-15,
    max_evaluations: int = 60,
    max_step: float = 2.0,
    fd_step: float = 1e-7,
    hessian0: FloatArray | None = None,
) -> NewtonResult:
    """Minimise ``objective`` (value and exact gradient) from ``x0`` by damped Newton steps.

    Converged where the Hessian is positive definite and the Newton step's predicted
    decrease, g' H^-1 g / 2, is at most ``tol`` (in the objective's units): the point is
    that close to the minimum in value. ``feasible`` says whether a point may be
    evaluated (e.g. inside the parameter bounds). No step moves a coordinate by more
    than ``max_step``. ``hessian0``, a similar problem's Hessian (the previous cutoff's
    fit), saves measuring one at the start; where it does not fit, one is measured.
    """
    calls = [0]

    def counted(point: FloatArray) -> tuple[float, FloatArray]:
        calls[0] += 1
        return objective(point)

    x = np.array(x0, dtype=np.float64)
    value, gradient = counted(x)

    matrix = None if hessian0 is None else np.array(hessian0, dtype=np.float64)
    last = matrix

    def result(converged: bool, message: str) -> NewtonResult:
        return NewtonResult(x, value, gradient, calls[0], converged, message, last)

    while calls[0] < max_evaluations:
        if not (math.isfinite(value) and np.all(np.isfinite(gradient))):
            return result(False, "the objective or its gradient is not finite")
        if matrix is None:
            matrix = hessian(counted, x, gradient, fd_step)
        last = matrix
        found = _descent(matrix, gradient)
        if found is None:
            return result(False, "the Hessian is not finite")
        step, definite = found
        slope = _dot(gradient, step)  # -2 x the predicted decrease
        if -slope / 2 <= tol:  # stationary: a minimum only where the Hessian says so
            return result(definite, "converged" if definite else "stationary, not a minimum")
        shrink = min(1.0, max_step / float(np.max(np.abs(step))))  # the model is local
        step, slope = step * shrink, slope * shrink
        if not feasible(x + step):
            return result(False, "a step would leave the feasible region")
        searched = _line_search(counted, x, value, step, slope)
        if searched is None:
            return result(False, "no step decreased the objective")
        t, new_x, value, new_gradient = searched
        matrix = _updated(matrix, definite and t == 1.0, new_x - x, gradient, new_gradient)
        x, gradient = new_x, new_gradient
    return result(False, f"no convergence in {max_evaluations} evaluations")
