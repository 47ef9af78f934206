"""The Pareto/NBD dropout integral by quadrature, against adaptive quadrature (scipy's
QUADPACK) in the original variable: values and all four derivatives, where alpha and
beta are a hundred times apart (the 2F1 series' argument near 1), for heavy buyers, tiny
and very long spans, either way round."""

# A, B, P, Q keep the names of the integral's formula.
# ruff: noqa: N803, N806

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from churn.features.pnbd_quadrature import _rule, log_integral, panel_counts


def _oracle(A: float, B: float, P: float, Q: float, lo: float, hi: float) -> tuple[float, ...]:
    """log I and d log I / d P, Q, A, B by QUADPACK on [lo, hi], the integrand scaled by
    its value at lo (so it is at most 1 and no exponent underflows)."""

    def f(v: float) -> float:
        return math.exp(-P * math.log1p((v - lo) / (A + lo)) - Q * math.log1p((v - lo) / (B + lo)))

    # The integrand falls on a scale of (A + lo) / P: tell QUADPACK where the mass is.
    scale = min((A + lo) / max(P, 1.0), (B + lo) / max(Q, 1.0))
    points = [lo + k * scale for k in (0.5, 2.0, 8.0, 32.0) if lo + k * scale < hi]

    def quad(weight: object) -> float:
        return integrate.quad(
            lambda v: weight(v) * f(v),  # type: ignore[operator]
            lo,
            hi,
            points=points or None,
            epsabs=0,
            epsrel=1e-13,
            limit=400,
        )[0]

    total = quad(lambda v: 1.0)
    log_value = -P * math.log(A + lo) - Q * math.log(B + lo) + math.log(total)
    return (
        log_value,
        -quad(lambda v: math.log(A + v)) / total,
        -quad(lambda v: math.log(B + v)) / total,
        -P * quad(lambda v: 1 / (A + v)) / total,
        -Q * quad(lambda v: 1 / (B + v)) / total,
    )


CASES = {
    # alpha and beta 100x apart, a one-time buyer (t_x = 0): the old series' worst case
    "one-time, z near 1": (0.02, 2.5, 0.64, 4.0, 0.0, 1.3),
    "repeat buyer, z near 1": (0.02, 2.5, 30.64, 4.0, 0.9, 1.3),
    "heavy buyer, long gap": (0.02, 2.5, 200.6, 4.0, 0.5, 1.5),
    "either way round": (2.5, 0.02, 4.0, 0.64, 0.0, 1.3),
    "alpha and beta equal": (1.0, 1.0, 2.0, 3.0, 0.1, 0.7),
    "a day's span": (0.3, 0.4, 5.0, 2.0, 0.5, 0.5 + 1 / 365),
    "CDNOW scale": (10.58, 11.67, 3.55, 1.61, 5.0, 38.0),
    "exponents below one": (0.5, 40.0, 0.3, 0.7, 0.0, 30.0),
    "very long span in w": (1e-4, 5.0, 1.2, 2.0, 0.0, 50.0),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_value_and_derivatives_match_adaptive_quadrature(case: tuple[float, ...]) -> None:
    A, B, P, Q, lo, hi = case
    expected = _oracle(*case)
    got = log_integral(A, B, P, Q, lo, hi)
    assert got.value[0] == pytest.approx(expected[0], rel=1e-13, abs=1e-13)
    # As elasticities (d log I / d log parameter): comparable across scales.
    for name, base, want in zip(
        ("d_p", "d_q", "d_a", "d_b"), (P, Q, A, B), expected[1:], strict=True
    ):
        assert getattr(got, name)[0] * base == pytest.approx(want * base, rel=1e-11, abs=1e-12)


def test_random_histories_match_adaptive_quadrature() -> None:
    rng = np.random.default_rng(7)
    n = 30
    A, B = np.exp(rng.uniform(-5, 3, n)), np.exp(rng.uniform(-5, 3, n))
    x = np.floor(np.exp(rng.uniform(0, 5, n))) * (rng.random(n) < 0.7)
    P, Q = np.exp(rng.uniform(-2, 1, n)) + x, np.exp(rng.uniform(-2, 2, n)) + 1
    hi = np.exp(rng.uniform(-3, 1, n))
    lo = hi * rng.random(n) * (x > 0)
    got = log_integral(A, B, P, Q, lo, hi)
    for i in range(n):
        expected = _oracle(A[i], B[i], P[i], Q[i], lo[i], hi[i])
        assert got.value[i] == pytest.approx(expected[0], rel=1e-12, abs=1e-12), i
        assert got.d_p[i] * P[i] == pytest.approx(expected[1] * P[i], rel=1e-10, abs=1e-11), i


def test_the_rule_is_gauss_legendre_and_exact_for_polynomials() -> None:
    """The hard-coded nodes (no LAPACK at import) are numpy's 16-point rule; repeated on
    panels they integrate x^k exactly on [0, 1] up to degree 31."""
    nodes, weights = np.polynomial.legendre.leggauss(16)
    one_panel = _rule(1)
    np.testing.assert_allclose(one_panel[0], (nodes + 1) / 2, rtol=0, atol=1e-16)
    np.testing.assert_allclose(one_panel[1], weights / 2, rtol=0, atol=1e-16)
    for panels in (1, 3):
        at, weight = _rule(panels)
        for k in (0, 1, 7, 31):
            assert float(np.sum(weight * at**k)) == pytest.approx(1 / (k + 1), rel=1e-14)


def test_one_panel_for_most_histories_and_bounded_work_at_absurd_parameters() -> None:
    """Panels follow the integrand's fall; parameters at the optimiser's bounds (e^+-20)
    still give finite values in at most 64 panels."""
    lo = np.array([0.0, 0.2, 0.5, 0.9])
    hi = np.full(4, 1.0)
    typical = panel_counts(0.02, 2.5, 0.64 + np.array([0.0, 1, 3, 6]), 4.0, lo, hi)
    assert typical.tolist() == [2, 1, 1, 1]
    huge, tiny = math.exp(20), math.exp(-20)
    for A, B, P, Q in [(tiny, huge, huge, huge), (huge, tiny, tiny, huge), (tiny, tiny, tiny, 1)]:
        got = log_integral(A, B, P, Q, lo, hi + 1)
        assert np.all(np.isfinite(got.value)) and np.all(np.isfinite(got.d_b))
        assert panel_counts(A, B, P, Q, lo, hi + 1).max() <= 64
