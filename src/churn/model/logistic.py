"""L2-penalised logistic regression by Newton's method, with no BLAS call.

Platt calibration (one input) and the logistic baseline (a few dozen) used
scikit-learn's lbfgs, whose answer depends on the OpenBLAS kernel the host picks
(its matrix products and the optimiser's dot products add up in a
kernel-specific order), so the model file and metrics/eval.json changed between
machines (OPENBLAS_CORETYPE=Prescott moved the Platt intercept in the 15th
digit). Here every sum is an ``np.einsum`` (numpy's own loops, one fixed order
on every CPU), the Newton system is solved by the Cholesky factorisation
written out below, and probabilities come from ``scipy.special.expit`` (the C
library's exp, like churn.portable_math): the same inputs give the same bits
everywhere. Newton also lands on the optimum itself, where lbfgs stopped at a
gradient of 1e-4.

The objective is scikit-learn's: ``C * sum(log loss) + |coef|^2 / 2``, the
intercept unpenalised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit

from churn.portable_math import logaddexp

FloatArray = NDArray[np.float64]
_MAX_ITER = 100
_MAX_HALVINGS = 60
_STEP_TOL = 1e-12


@dataclass(frozen=True)
class LogisticFit:
    """Coefficients (one per column of x) and intercept of a fitted model."""

    coef: FloatArray
    intercept: float

    def probability(self, x: ArrayLike) -> FloatArray:
        """P(y = 1) for each row of ``x``."""
        return np.asarray(expit(_linear(_matrix(x), self.coef, self.intercept)), dtype=np.float64)


def fit_logistic(
    x: ArrayLike, y: ArrayLike, c: float = 1.0, weight: ArrayLike | None = None
) -> LogisticFit:
    """Maximum penalised likelihood for ``y`` (0/1) on the columns of ``x``.

    ``c`` is scikit-learn's C (inverse penalty strength); ``weight`` (one
    non-negative number a row, default 1) scales each row's log loss, as
    scikit-learn's ``sample_weight`` does. Raises ValueError when
    ``y`` holds one class only or Newton fails to improve (a singular problem,
    e.g. a constant column with ``c`` huge).
    """
    if not c > 0:
        raise ValueError(f"C must be positive, got {c}")
    design = _with_intercept(_matrix(x))
    target = np.asarray(y, dtype=np.float64)
    if target.shape != (design.shape[0],) or not np.isin(target, (0.0, 1.0)).all():
        raise ValueError("y must be one 0/1 value per row of x")
    if target.min() == target.max():
        raise ValueError("logistic regression needs both classes")
    w = _weights(weight, len(target))
    penalty = np.full(design.shape[1], 1.0 / c)
    penalty[-1] = 0.0  # the intercept
    beta = np.zeros(design.shape[1])
    loss = _objective(design, target, beta, penalty, w)
    for _ in range(_MAX_ITER):
        p = expit(_einsum("ni,i->n", design, beta))
        grad = _einsum("ni,n->i", design, w * (p - target)) + penalty * beta
        hessian = _einsum("ni,nj->ij", design * (w * p * (1 - p))[:, None], design)
        step = _solve_spd(hessian + np.diag(penalty), grad)
        t, improved = 1.0, False
        for _ in range(_MAX_HALVINGS):
            candidate = beta - t * step
            new_loss = _objective(design, target, candidate, penalty, w)
            if new_loss <= loss:
                improved = True
                break
            t /= 2
        if not improved:
            break  # no descent left at machine precision: beta is the optimum
        change = float(np.max(np.abs(candidate - beta)))
        beta, loss = candidate, new_loss
        if change <= _STEP_TOL * (1.0 + float(np.max(np.abs(beta)))):
            break
    if not np.all(np.isfinite(beta)):
        raise ValueError("logistic regression did not converge (separable or singular data)")
    return LogisticFit(coef=beta[:-1].copy(), intercept=float(beta[-1]))


def _objective(
    design: FloatArray, y: FloatArray, beta: FloatArray, penalty: FloatArray, w: FloatArray
) -> float:
    """Weighted sum of log losses plus the penalty, on the scale the Newton step uses
    (divided by C)."""
    z = _einsum("ni,i->n", design, beta)
    losses = logaddexp(0.0, z) - y * z  # log(1 + e^z) - y z
    return float(np.sum(w * losses) + 0.5 * np.sum(penalty * beta * beta))


def _weights(weight: ArrayLike | None, n: int) -> FloatArray:
    """Row weights: all ones by default; otherwise n finite non-negative numbers."""
    if weight is None:
        return np.ones(n)
    w = np.asarray(weight, dtype=np.float64)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weight must be one finite non-negative number per row of x")
    return w


def _solve_spd(matrix: FloatArray, rhs: FloatArray) -> FloatArray:
    """``matrix^-1 rhs`` for a symmetric positive definite matrix, by Cholesky.

    Written out (a few dozen unknowns) because LAPACK's solver calls BLAS.
    """
    n = len(rhs)
    lower = np.zeros_like(matrix)
    for j in range(n):
        pivot = matrix[j, j] - _dot(lower[j, :j], lower[j, :j])
        if not pivot > 0:
            raise ValueError("logistic regression did not converge (singular Hessian)")
        lower[j, j] = np.sqrt(pivot)
        for i in range(j + 1, n):
            lower[i, j] = (matrix[i, j] - _dot(lower[i, :j], lower[j, :j])) / lower[j, j]
    forward = np.zeros(n)
    for i in range(n):
        forward[i] = (rhs[i] - _dot(lower[i, :i], forward[:i])) / lower[i, i]
    solution = np.zeros(n)
    for i in reversed(range(n)):
        solution[i] = (forward[i] - _dot(lower[i + 1 :, i], solution[i + 1 :])) / lower[i, i]
    return solution


def _dot(a: FloatArray, b: FloatArray) -> float:
    return float(_einsum("i,i->", a, b))


def _einsum(spec: str, *operands: FloatArray) -> FloatArray:
    """numpy's einsum loops (``optimize=False`` never hands the work to BLAS)."""
    return np.asarray(np.einsum(spec, *operands, optimize=False), dtype=np.float64)


def _linear(x: FloatArray, coef: FloatArray, intercept: float) -> FloatArray:
    return _einsum("ni,i->n", x, np.asarray(coef, dtype=np.float64)) + intercept


def _matrix(x: ArrayLike) -> FloatArray:
    matrix = np.asarray(x, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"x must be two-dimensional, got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise ValueError("x contains NaN or infinite values")
    return np.ascontiguousarray(matrix)


def _with_intercept(x: FloatArray) -> FloatArray:
    return np.hstack([x, np.ones((x.shape[0], 1))])
