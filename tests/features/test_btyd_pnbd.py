"""Pareto/NBD: the published CDNOW estimates, per-customer oracles by numerical
integration, an exact gradient, and both orderings of alpha and beta.

The oracles share nothing with churn.features.btyd_pnbd: the likelihood and the
predictions are integrated over the dropout time with scipy.integrate.quad.
"""

# T (customer age) keeps the name every BTYD paper gives it.
# ruff: noqa: N803, N806

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate

from churn.features import btyd_pnbd
from churn.features.btyd import _objective
from churn.features.btyd_pnbd import (
    ParetoNBDModel,
    _from_spread,
    _in_spread,
    _histories,
    _pnbd_loglik,
    _to_spread,
    log_tail,
)

DATA = Path(__file__).resolve().parents[1] / "data"
# Fader, Hardie & Lee (2005b) "RFM and CLV", CDNOW sample, calibration to 1997-09-30;
# the values lifetimes' and pymc-marketing's tests use (r, alpha, s, beta; weeks).
PUBLISHED_PNBD = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    """x, t_x, T in weeks: the calibration summary lifetimes ships (tests/data)."""
    return pd.read_csv(DATA / "cdnow_customers_summary_with_transactions.csv", index_col="ID")


@pytest.fixture(scope="module")
def cdnow_pnbd(cdnow: pd.DataFrame) -> ParetoNBDModel:
    return ParetoNBDModel().fit(cdnow["x"], cdnow["t_x"], cdnow["T"])


def test_pareto_nbd_reproduces_published_cdnow_estimates(cdnow_pnbd: ParetoNBDModel) -> None:
    for name, published in PUBLISHED_PNBD.items():
        assert getattr(cdnow_pnbd, name + "_") == pytest.approx(published, rel=0.005), name
    assert cdnow_pnbd.log_likelihood_ == pytest.approx(-9595.0, abs=0.1)  # as in the paper


def _oracle_ll(
    r: float, alpha: float, s: float, beta: float, x: int, t_x: float, T: float
) -> float:
    """Given lambda and mu: alive through T, or left at tau in (t_x, T]; mixed over the
    gammas in closed form, the dropout time integrated numerically."""
    rate = math.lgamma(r + x) - math.lgamma(r) + r * math.log(alpha) + s * math.log(beta)
    alive = (alpha + T) ** -(r + x) * (beta + T) ** -s
    left = integrate.quad(
        lambda tau: s * (alpha + tau) ** -(r + x) * (beta + tau) ** -(s + 1),
        t_x,
        T,
        epsabs=0,
        epsrel=1e-12,
    )[0]
    return rate + math.log(alive + left)


@pytest.mark.parametrize(
    "params", [(0.55, 10.58, 0.61, 11.67), (0.3, 2.0, 1.5, 30.0), (2.0, 40.0, 0.4, 1.5)]
)
def test_log_likelihood_matches_the_integral_oracle(
    cdnow: pd.DataFrame, params: tuple[float, float, float, float]
) -> None:
    rows = cdnow.iloc[::53]
    expected = sum(
        _oracle_ll(*params, int(x), t, T) for x, t, T in rows[["x", "t_x", "T"]].to_numpy()
    )
    x, t_x, T = (rows[c].to_numpy(float) for c in ("x", "t_x", "T"))
    d = _histories(x, t_x, T, np.ones(len(rows)))
    assert _pnbd_loglik(np.array(params), d)[0] == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("params", [(0.55, 10.58, 0.61, 11.67), (0.3, 2.0, 1.5, 30.0)])
def test_exact_gradient_matches_finite_differences(
    cdnow: pd.DataFrame, params: tuple[float, float, float, float]
) -> None:
    x, t_x, T = (cdnow[c].to_numpy(float) for c in ("x", "t_x", "T"))
    d = _histories(x, t_x, T, np.ones(len(cdnow)))
    theta = np.log(params)
    _, grad = _pnbd_loglik(np.exp(theta), d)
    for k in range(4):
        step = np.zeros(4)
        step[k] = 1e-6
        up, down = (_pnbd_loglik(np.exp(theta + sign * step), d)[0] for sign in (1, -1))
        assert grad[k] == pytest.approx((up - down) / 2e-6, rel=1e-5, abs=1e-4)


@pytest.mark.parametrize(
    ("A", "B", "p", "q", "u"),
    [(10.0, 11.6, 3.5, 1.6, 5.0), (11.6, 10.0, 3.5, 1.6, 5.0), (0.5, 40.0, 20.0, 0.7, 0.0)],
)
def test_tail_integral_either_way_round(A: float, B: float, p: float, q: float, u: float) -> None:
    expected = integrate.quad(
        lambda v: (A + v) ** -p * (B + v) ** -q, u, np.inf, epsabs=0, epsrel=1e-12
    )[0]
    got = log_tail(*(np.array([v]) for v in (A, B, p, q, u)))[0]
    assert got == pytest.approx(math.log(expected), abs=1e-10)


def _fitted(r: float, alpha: float, s: float, beta: float) -> ParetoNBDModel:
    model = ParetoNBDModel()
    model.r_, model.alpha_, model.s_, model.beta_ = r, alpha, s, beta
    return model


@pytest.mark.parametrize("params", [(0.55, 10.58, 0.61, 11.67), (0.8, 3.0, 0.5, 60.0)])
def test_predictions_match_posterior_integrals(params: tuple[float, float, float, float]) -> None:
    """P(alive) and P(no purchase in t) against the posterior over (lambda, mu), integrated."""
    r, alpha, s, beta = params
    model = _fitted(*params)
    for x, t_x, T, t in [(0, 0.0, 30.0, 13.0), (4, 20.0, 38.0, 13.0), (12, 37.0, 38.0, 52.0)]:
        alive = (alpha + T) ** -(r + x) * (beta + T) ** -s

        def drops(tau: float, x: int = x) -> float:
            return s * (alpha + tau) ** -(r + x) * (beta + tau) ** -(s + 1)

        left = integrate.quad(drops, t_x, T)[0]
        p_alive = alive / (alive + left)
        a, b = alpha + T, beta + T

        def buys(v: float, a: float = a, b: float = b, x: int = x) -> float:
            rate = (r + x) / (a + v) * (a / (a + v)) ** (r + x)  # E[lambda e^-lambda v]
            return rate * (b / (b + v)) ** s  # E[e^-mu v]

        quiet = 1 - p_alive * integrate.quad(buys, 0, t, epsabs=0, epsrel=1e-12)[0]
        assert model.p_alive(x, t_x, T)[0] == pytest.approx(p_alive, rel=1e-9)
        assert model.p_no_purchase(t, x, t_x, T)[0] == pytest.approx(quiet, rel=1e-9)


def test_fit_recovers_simulated_parameters() -> None:
    rng = np.random.default_rng(11)
    n, r, alpha, s, beta = 20_000, 0.7, 8.0, 0.5, 15.0
    T = rng.uniform(20, 80, n)
    rate, death = rng.gamma(r, 1 / alpha, n), rng.gamma(s, 1 / beta, n)
    lifetime = rng.exponential(1 / death)
    observed = np.minimum(lifetime, T)
    k = rng.poisson(rate * observed)
    t_x = np.where(k > 0, observed * rng.beta(np.maximum(k, 1), 1), 0.0)  # the last of k uniforms
    model = ParetoNBDModel().fit(k.astype(float), t_x, T)
    fitted = (model.r_, model.alpha_, model.s_, model.beta_)
    np.testing.assert_allclose(fitted, (r, alpha, s, beta), rtol=0.15)


def test_a_warm_start_reaches_the_same_fit(cdnow: pd.DataFrame, cdnow_pnbd: ParetoNBDModel) -> None:
    start = (0.6, 9.0, 0.5, 13.0)
    warm = ParetoNBDModel().fit(cdnow["x"], cdnow["t_x"], cdnow["T"], start=start)
    for name in PUBLISHED_PNBD:
        assert getattr(warm, name + "_") == pytest.approx(getattr(cdnow_pnbd, name + "_"), rel=1e-3)


def test_invalid_histories_and_unfitted_models_are_refused() -> None:
    with pytest.raises(ValueError, match="t_x <= T"):
        ParetoNBDModel().fit([1, 2], [5.0, 3.0], [4.0, 10.0])
    with pytest.raises(ValueError, match="not fitted"):
        ParetoNBDModel().p_alive(1, 1.0, 2.0)


def _constant_dropout(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Day-level histories (in weeks) where every customer has the same dropout rate."""
    rng = np.random.default_rng(seed)
    T = np.ceil(rng.uniform(1, 100, n) * 7) / 7
    lifetime = rng.exponential(60.0, n)
    observed = np.minimum(lifetime, T)
    k = rng.poisson(rng.gamma(0.5, 1 / 4.0, n) * observed)
    t_x = np.where(k > 0, np.floor(observed * rng.beta(np.maximum(k, 1), 1) * 7) / 7, 0.0)
    return k.astype(float), t_x, T


@pytest.mark.parametrize("seed", [4, 5])
def test_the_constant_dropout_ridge_is_crossed_in_few_evaluations(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """With one dropout rate for all, s and beta run off together along a flat ridge; in
    log(s, beta) TNC zig-zagged along it (the feature stage's slowest part). Searching in
    (log s, log beta/s) makes the ridge one axis: a count, not a clock (it took 96 and 120
    evaluations in log(s, beta), 54 and 74 now)."""
    calls = []

    def counted(params: np.ndarray, d: object) -> tuple[float, np.ndarray]:
        calls.append(1)
        return _pnbd_loglik(params, d)  # type: ignore[arg-type]

    monkeypatch.setattr(btyd_pnbd, "_pnbd_loglik", counted)
    x, t_x, T = _constant_dropout(2_000, seed)
    model = ParetoNBDModel().fit(x, t_x, T)
    assert model.beta_ / model.s_ == pytest.approx(60.0, rel=0.3)  # the mean lifetime
    assert len(calls) <= 90


def test_the_search_coordinates_keep_the_exact_gradient(cdnow: pd.DataFrame) -> None:
    x, t_x, T = (cdnow[c].to_numpy(float) for c in ("x", "t_x", "T"))
    d = _histories(x, t_x, T, np.ones(len(cdnow)))
    objective = _in_spread(_objective(_pnbd_loglik, d, 0.0))
    phi = _to_spread(np.log([0.3, 2.0, 1.5, 30.0]))
    np.testing.assert_allclose(_from_spread(phi), np.log([0.3, 2.0, 1.5, 30.0]), rtol=1e-15)
    _, grad = objective(phi)
    for k in range(4):
        step = np.zeros(4)
        step[k] = 1e-6
        up, down = (objective(phi + sign * step)[0] for sign in (1, -1))
        assert grad[k] == pytest.approx((up - down) / 2e-6, rel=1e-5, abs=1e-8)


def test_a_given_p_alive_gives_the_same_p_no_purchase(
    cdnow: pd.DataFrame, cdnow_pnbd: ParetoNBDModel
) -> None:
    """Callers that have P(alive) already pass it in (issue 20): the same bits, once."""
    x, t_x, T = (cdnow[c].to_numpy(dtype=float) for c in ("x", "t_x", "T"))
    alive = cdnow_pnbd.p_alive(x, t_x, T)
    given = cdnow_pnbd.p_no_purchase(39.0, x, t_x, T, alive)
    np.testing.assert_array_equal(given, cdnow_pnbd.p_no_purchase(39.0, x, t_x, T))
    assert not np.array_equal(given, cdnow_pnbd.p_no_purchase(39.0, x, t_x, T, alive * 0.5))
