"""churn.model.logistic: scikit-learn's penalised logistic regression, solved exactly, no BLAS.

It is the optimum scikit-learn approaches, the same bits under any BLAS kernel and
SIMD level, and it refuses what it cannot fit.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from churn.model.logistic import fit_logistic


def _data(n: int = 4_000, d: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * rng.uniform(0.5, 3, d)
    logit = x @ rng.normal(0, 0.6, d) - 0.4
    return x, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)


def _objective(x: np.ndarray, y: np.ndarray, coef: np.ndarray, b: float, c: float) -> float:
    z = x @ coef + b
    return float(c * np.sum(np.logaddexp(0, z) - y * z) + 0.5 * coef @ coef)


@pytest.mark.parametrize("c", [0.01, 1.0, 1e6])
def test_it_is_the_optimum_scikit_learn_converges_to(c: float) -> None:
    x, y = _data()
    ours = fit_logistic(x, y, c=c)
    sk = LogisticRegression(C=c, tol=1e-12, max_iter=10_000).fit(x, y)
    np.testing.assert_allclose(ours.coef, sk.coef_[0], rtol=1e-6, atol=1e-8)
    assert ours.intercept == pytest.approx(sk.intercept_[0], rel=1e-6, abs=1e-8)
    assert _objective(x, y, ours.coef, ours.intercept, c) <= _objective(
        x, y, sk.coef_[0], sk.intercept_[0], c
    ) + 1e-9 * c * len(y)
    np.testing.assert_allclose(ours.probability(x), sk.predict_proba(x)[:, 1], atol=1e-7)


def test_the_same_data_gives_the_same_bits() -> None:
    x, y = _data(seed=3)
    first, second = fit_logistic(x, y), fit_logistic(x.copy(), y.copy())
    assert first.coef.tobytes() == second.coef.tobytes()
    assert first.intercept == second.intercept


def test_separable_data_stays_finite_with_a_penalty() -> None:
    x = np.linspace(-1, 1, 200).reshape(-1, 1)
    y = (x[:, 0] > 0).astype(int)
    fit = fit_logistic(x, y, c=1e6)
    assert np.isfinite(fit.coef).all() and fit.coef[0] > 10
    assert fit.probability(np.array([[-1.0], [1.0]])).round(3).tolist() == [0.0, 1.0]


def test_row_weights_are_scikit_learns_sample_weight() -> None:
    """A weighted fit is scikit-learn's with ``sample_weight``; integer weights are the
    same fit as repeating each row that many times; unit weights change no bit."""
    x, y = _data(n=1_500, seed=4)
    weight = np.random.default_rng(4).integers(0, 4, len(y)).astype(float)
    ours = fit_logistic(x, y, c=0.1, weight=weight)
    sk = LogisticRegression(C=0.1, tol=1e-12, max_iter=10_000).fit(x, y, sample_weight=weight)
    np.testing.assert_allclose(ours.coef, sk.coef_[0], rtol=1e-5, atol=1e-7)  # lbfgs's tol
    rows = np.repeat(np.arange(len(y)), weight.astype(int))
    repeated = fit_logistic(x[rows], y[rows], c=0.1)
    np.testing.assert_allclose(ours.coef, repeated.coef, rtol=1e-9)
    unit = fit_logistic(x, y, c=0.1, weight=np.ones(len(y)))
    assert unit.coef.tobytes() == fit_logistic(x, y, c=0.1).coef.tobytes()
    with pytest.raises(ValueError, match="weight"):
        fit_logistic(x, y, weight=-weight)


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (np.zeros((5, 1)), np.ones(5), "both classes"),
        (np.zeros((4, 1)), np.array([0, 1, 2, 1]), "0/1"),
        (np.zeros(4), np.array([0, 1, 0, 1]), "two-dimensional"),
        (np.array([[np.nan], [1], [2], [3]]), np.array([0, 1, 0, 1]), "NaN"),
    ],
)
def test_what_it_cannot_fit_is_a_value_error(x: np.ndarray, y: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fit_logistic(x, y)


FIT_IN_A_PROCESS = """
import sys
import numpy as np
from churn.model.logistic import fit_logistic

rng = np.random.default_rng(5)
x = rng.normal(size=(3_000, 8)) * rng.uniform(0.5, 3, 8)
y = (rng.random(3_000) < 1 / (1 + np.exp(-(x @ rng.normal(0, 0.6, 8))))).astype(int)
fit = fit_logistic(x, y)
sys.stdout.write((fit.coef.tobytes() + np.float64(fit.intercept).tobytes()).hex())
"""


def test_the_fit_does_not_depend_on_the_blas_kernel_or_simd() -> None:
    """Each process loads OpenBLAS and picks NumPy's SIMD loops once, so compare processes
    (scikit-learn's lbfgs moved the Platt intercept in the 15th digit under Prescott)."""
    simd = np.show_config(mode="dicts")["SIMD Extensions"]["found"]  # type: ignore[index]
    settings = [
        {},
        {"OPENBLAS_CORETYPE": "Prescott", "OPENBLAS_NUM_THREADS": "1"},
        {"OPENBLAS_NUM_THREADS": "2", "NPY_DISABLE_CPU_FEATURES": " ".join(simd)},
    ]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENBLAS", "NPY_"))}
    fits = {
        subprocess.run(
            [sys.executable, "-c", FIT_IN_A_PROCESS],
            env={**base, **extra},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for extra in settings
    }
    assert len(fits) == 1
