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
    _histories,
    _in_spread,
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
    "params",
    [
        (0.55, 10.58, 0.61, 11.67),
        (0.3, 2.0, 1.5, 30.0),
        (2.0, 40.0, 0.4, 1.5),
        # alpha and beta 100 and 1000 times apart, as fits of real logs are (alpha ~ 1
        # week, beta ~ 100): the 2F1 series the likelihood used to sum was 8e-6 and 6e-3
        # off here (its argument near 1, 400 terms and an approximate geometric tail).
        (0.64, 1.2, 3.0, 120.0),
        (0.64, 0.3, 3.0, 300.0),
    ],
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


@pytest.mark.parametrize(
    "params", [(0.55, 10.58, 0.61, 11.67), (0.3, 2.0, 1.5, 30.0), (0.64, 1.2, 3.0, 120.0)]
)
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


def _two_cutoffs(
    n: int, seed: int, weeks_apart: float = 4.0
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Day-level (x, t_x, T) in weeks of the same customers at two cutoffs a month apart,
    drawn as real logs fit (alpha ~ 1.2 weeks, beta ~ 110: dropout rates all alike, a
    flat ridge in s and beta)."""
    rng = np.random.default_rng(seed)
    first = np.floor(rng.uniform(0, 100, n) * 7) / 7  # weeks before the first cutoff
    rate = rng.gamma(0.6, 1 / 1.2, n)
    life = rng.exponential(1 / rng.gamma(3.0, 1 / 110.0, n))
    horizon = np.minimum(life, first + weeks_apart)
    days = [
        np.floor(rng.uniform(0, h, k) * 7) / 7
        for h, k in zip(horizon, rng.poisson(rate * horizon), strict=True)
    ]
    out = []
    for cutoff in (0.0, weeks_apart):
        T = first + cutoff
        seen = [np.unique(d[(d > 0) & (d <= age)]) for d, age in zip(days, T, strict=True)]
        x = np.array([len(v) for v in seen], dtype=float)
        out.append((x, np.array([v.max() if len(v) else 0.0 for v in seen]), T))
    return out


def _counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []

    def counted(params: np.ndarray, d: object) -> tuple[float, np.ndarray]:
        calls.append(1)
        return _pnbd_loglik(params, d)  # type: ignore[arg-type]

    monkeypatch.setattr(btyd_pnbd, "_pnbd_loglik", counted)
    return calls


@pytest.mark.parametrize("seed", [1, 2])
def test_the_previous_cutoffs_fit_is_a_start_newton_finishes_in_few_evaluations(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """A month later, from the last fit: a Hessian (4 gradients) and a few steps. TNC took
    27 and 20 evaluations here, and stopped short along the ridge (its warm and cold fits
    6e-5 and 2e-5 apart); Newton's stop within rounding of the optimum (5e-7 apart)."""
    before, after = _two_cutoffs(2_000, seed)
    last = ParetoNBDModel().fit(*before)
    cold = ParetoNBDModel().fit(*after)
    calls = _counted(monkeypatch)
    warm = ParetoNBDModel().fit(*after, start=(last.r_, last.alpha_, last.s_, last.beta_))
    assert len(calls) <= 12  # the last one is the log-likelihood on the caller's time axis
    for name in PUBLISHED_PNBD:
        assert getattr(warm, name + "_") == pytest.approx(getattr(cold, name + "_"), rel=2e-6)


@pytest.mark.parametrize(
    "data",
    [
        (np.zeros(200), np.zeros(200), np.linspace(1, 50, 200)),  # nobody ever came back
        (
            np.array([0.0, 1, 2, 0, 5]),
            np.array([0.0, 3, 10, 0, 20]),
            np.array([30.0, 30, 30, 12, 25]),
        ),
        (np.full(50, 10.0), np.full(50, 10.0), np.full(50, 10.0)),  # identical, bought every week
        (np.zeros(3), np.zeros(3), np.zeros(3)),  # everyone bought for the first time today
    ],
    ids=["one-time-buyers", "five-customers", "identical", "T-zero"],
)
def test_degenerate_data_fits_with_finite_predictions(data: tuple) -> None:
    """Where Newton's method cannot finish (an optimum at a bound, a flat likelihood), TNC
    does, as before; predictions stay finite even where hyp2f1 gives up (the identical
    customers' fit ends at r = alpha = 9e6: their P(alive) was NaN, P(alive) = 1 now, as
    for anyone whose last purchase is today)."""
    model = ParetoNBDModel().fit(*data)
    params = [model.r_, model.alpha_, model.s_, model.beta_, model.log_likelihood_]
    assert np.all(np.isfinite(params))
    alive = model.p_alive(*data)
    quiet = model.p_no_purchase(13, *data, alive)
    assert np.all((alive >= 0) & (alive <= 1)) and np.all((quiet >= 0) & (quiet <= 1))
    assert np.all(alive[data[1] == data[2]] == 1.0)


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
    evaluations in log(s, beta), 54 and 74 in these coordinates, 41 and 38 by Newton's
    method from a cold start, its BFGS updates following the ridge's bend)."""
    calls = _counted(monkeypatch)
    x, t_x, T = _constant_dropout(2_000, seed)
    model = ParetoNBDModel().fit(x, t_x, T)
    assert model.beta_ / model.s_ == pytest.approx(60.0, rel=0.3)  # the mean lifetime
    assert len(calls) <= 50


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
