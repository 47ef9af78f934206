"""BG/NBD and Gamma-Gamma: published CDNOW estimates, slow oracles, properties, edge cases.

The CDNOW calibration summary is derived here from the raw transactions (see
tests/data/CDNOW_PROVENANCE.md), the way Fader, Hardie & Lee describe it: one
purchase per customer-day, 39 weeks from 1997-01-01, weeks as the unit. The
oracles below share nothing with churn.features.btyd: per-customer likelihoods
with math.lgamma, and expectations by numerical integration instead of 2F1.
"""

# T (customer age) keeps the name every BTYD paper gives it.
# ruff: noqa: N803, N806

from __future__ import annotations

import math
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats
from scipy.optimize import OptimizeResult

from churn.features import btyd
from churn.features.btyd import (
    BetaGeoModel,
    GammaGammaModel,
    _bgnbd_loglik,
    _expected_if_alive_quadrature,
    _gg_loglik,
    _Grouped,
    _grouped,
    _histories,
    _spends,
)

DATA = Path(__file__).resolve().parents[1] / "data"
CALIBRATION_END = pd.Timestamp("1997-09-30")  # 39 weeks after 1997-01-01
# Fader, Hardie & Lee (2005a), Table/Section 4; Hardie, note 025 (Gamma-Gamma).
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "v": 15.44}


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    """x, t_x, T (weeks) and m_x (mean spend per repeat purchase day) per CDNOW customer."""
    raw = pd.read_csv(
        DATA / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["master_id", "customer", "date", "quantity", "spend"],
        dtype={"date": str},
    )
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    calibration = raw[raw["date"] <= CALIBRATION_END]
    days = calibration.groupby(["customer", "date"], as_index=False)["spend"].sum()
    by_customer = days.groupby("customer")["date"]
    first, last = by_customer.min(), by_customer.max()
    repeats = days[days["date"] > days["customer"].map(first)]
    return pd.DataFrame(
        {
            "x": by_customer.size() - 1,
            "t_x": (last - first).dt.days / 7,
            "T": (CALIBRATION_END - first).dt.days / 7,
            "m_x": repeats.groupby("customer")["spend"].mean(),
        }
    ).fillna({"m_x": 0.0})


@pytest.fixture(scope="module")
def cdnow_bgnbd(cdnow: pd.DataFrame) -> BetaGeoModel:
    return BetaGeoModel().fit(cdnow["x"], cdnow["t_x"], cdnow["T"])


def _group(frame: pd.DataFrame, *rest: str) -> _Grouped:
    columns = [frame[c].to_numpy(float) for c in rest]
    return _grouped(frame["x"].to_numpy(float), columns, np.ones(len(frame)), True)


def _fitted_bgnbd(r: float, alpha: float, a: float, b: float) -> BetaGeoModel:
    model = BetaGeoModel()
    model.r_, model.alpha_, model.a_, model.b_ = r, alpha, a, b
    return model


def simulate_bgnbd(
    n: int, r: float, alpha: float, a: float, b: float, T: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Histories straight from the generative story, observed over (0, T]."""
    rng = np.random.default_rng(seed)
    rate, p_drop = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    k = rng.poisson(rate * T)  # repeat purchases in (0, T] had the customer never left
    x = np.minimum(k, rng.geometric(p_drop))  # leaves right after its N-th repeat purchase
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), k - x + 1), 0.0)  # x-th of k uniforms
    return x.astype(float), t_x, T


# ---- published estimates -------------------------------------------------------------


def test_derived_summary_matches_the_summary_lifetimes_ships(cdnow: pd.DataFrame) -> None:
    shipped = pd.read_csv(DATA / "cdnow_customers_summary_with_transactions.csv", index_col="ID")
    assert len(cdnow) == len(shipped) == 2357
    assert (cdnow["x"].to_numpy() == shipped["x"].to_numpy()).all()
    for ours, theirs in (("t_x", "t_x"), ("T", "T"), ("m_x", "zbar")):
        np.testing.assert_allclose(cdnow[ours], shipped[theirs], atol=0.0051)  # 2 decimals


def test_bgnbd_reproduces_published_cdnow_estimates(cdnow_bgnbd: BetaGeoModel) -> None:
    for name, published in PUBLISHED_BGNBD.items():
        assert getattr(cdnow_bgnbd, name + "_") == pytest.approx(published, rel=0.01), name
    assert cdnow_bgnbd.log_likelihood_ == pytest.approx(-9582.4, abs=0.1)  # as in the paper


def test_gamma_gamma_reproduces_published_cdnow_estimates(cdnow: pd.DataFrame) -> None:
    model = GammaGammaModel().fit(cdnow["x"], cdnow["m_x"])
    for name, published in PUBLISHED_GG.items():
        assert getattr(model, name + "_") == pytest.approx(published, rel=0.01), name


def test_one_time_buyers_are_alive_but_likely_quiet(cdnow_bgnbd: BetaGeoModel) -> None:
    """Why p_no_purchase, not p_alive, is the churn feature."""
    alive = cdnow_bgnbd.p_alive(0, 0, 38.86)
    quiet = cdnow_bgnbd.p_no_purchase(13, 0, 0, 38.86)
    assert alive[0] == 1.0
    assert 0.5 < quiet[0] < 1.0


# ---- slow oracles --------------------------------------------------------------------


def _oracle_bgnbd_ll(
    r: float, alpha: float, a: float, b: float, x: int, t_x: float, T: float
) -> float:
    """Fader, Hardie & Lee (2005a) eq. 6, term by term."""
    beta = math.lgamma(a + b) + math.lgamma(b + x) - math.lgamma(b) - math.lgamma(a + b + x)
    rate = math.lgamma(r + x) - math.lgamma(r) + r * math.log(alpha)
    likelihood = math.exp(-(r + x) * math.log(alpha + T))
    if x > 0:
        likelihood += a / (b + x - 1) * math.exp(-(r + x) * math.log(alpha + t_x))
    return beta + rate + math.log(likelihood)


def test_log_likelihood_matches_per_customer_oracle(cdnow: pd.DataFrame) -> None:
    rows = cdnow.iloc[::37]
    params = (0.3, 5.0, 0.7, 2.0)
    expected = sum(
        _oracle_bgnbd_ll(*params, int(x), t, T) for x, t, T in rows[["x", "t_x", "T"]].to_numpy()
    )
    h = _histories(_group(rows, "t_x", "T"))
    assert _bgnbd_loglik(np.array(params), h)[0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("which", ["bgnbd", "gg"])
def test_analytic_gradient_matches_finite_differences(cdnow: pd.DataFrame, which: str) -> None:
    if which == "bgnbd":
        histories = _histories(_group(cdnow, "t_x", "T"))
        loglik, params = partial(_bgnbd_loglik, d=histories), np.array([0.3, 5.0, 0.7, 2.0])
    else:
        spends = _spends(_group(cdnow[cdnow["x"] > 0], "m_x"))
        loglik, params = partial(_gg_loglik, d=spends), np.array([5, 3, 12.0])
    _, grad = loglik(params)
    for i in range(len(params)):
        step = np.zeros(len(params))
        step[i] = 1e-6
        up, down = loglik(params * np.exp(step))[0], loglik(params * np.exp(-step))[0]
        assert grad[i] == pytest.approx((up - down) / 2e-6, rel=1e-5, abs=1e-4)


def _oracle_expected(model: BetaGeoModel, t: float, x: int, t_x: float, T: float) -> float:
    """P(alive) times E_p[(1 - (1 + p t / (alpha + T))^-(r + x)) / p], p ~ Beta(a, b + x)."""
    r, alpha, a, b = model.r_, model.alpha_, model.a_, model.b_
    drop_odds = a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x) if x > 0 else 0.0
    ratio = t / (alpha + T)
    beta = stats.beta(a, b + x)

    def integrand(p: float) -> float:
        return float(beta.pdf(p) * -math.expm1(-(r + x) * math.log1p(p * ratio)) / p)

    value, _ = integrate.quad(integrand, 0, 1, limit=200, points=[beta.mean()])
    return value / (1 + drop_odds)


@pytest.mark.parametrize(
    ("params", "history"),
    [
        ((0.243, 4.414, 0.793, 2.426), (39.0, 2, 30.43, 38.86)),
        ((0.243, 4.414, 0.793, 2.426), (52.0, 0, 0.0, 10.0)),
        ((2.0, 30.0, 3.0, 1.5), (90.0, 40, 300.0, 400.0)),
        ((0.5, 2.0, 1.5, 8.0), (1000.0, 400, 99.0, 100.0)),  # the textbook 2F1 is NaN here
    ],
)
def test_expected_purchases_matches_integral_oracle(params: tuple, history: tuple) -> None:
    model = _fitted_bgnbd(*params)
    got = model.expected_purchases(*history)[0]
    assert got == pytest.approx(_oracle_expected(model, *history), rel=1e-6)


def test_expected_purchases_where_hyp2f1_returns_nan() -> None:
    """scipy's 2F1 gives NaN here even after Euler's transformation; quadrature takes over.
    Reference from mpmath (50 digits) on the paper's closed form."""
    model = _fitted_bgnbd(0.0136, 1.0, 80.0, 1.77)
    assert model.expected_purchases(2.5e5, 0, 0, 0)[0] == pytest.approx(0.158745294024892, rel=1e-6)


shape = st.floats(0.05, 20)


@settings(max_examples=60, deadline=None)
@given(shape, st.floats(0.1, 50), shape, shape, st.integers(0, 60), st.floats(0.01, 200))
def test_quadrature_fallback_agrees_with_hyp2f1(
    r: float, alpha: float, a: float, b: float, x: int, t: float
) -> None:
    model = _fitted_bgnbd(r, alpha, a, b)
    closed = model.expected_purchases(t, x, 0.5 if x else 0.0, 1.0)[0]
    alive = model.p_alive(x, 0.5 if x else 0.0, 1.0)[0]
    quad = _expected_if_alive_quadrature(
        np.array([t]), np.array([float(x)]), np.array([alpha + 1.0]), r, a, b
    )
    assert alive * quad[0] == pytest.approx(closed, rel=1e-5)


# ---- properties ----------------------------------------------------------------------

positive = st.floats(0.01, 100)


@st.composite
def histories(draw: st.DrawFn) -> tuple[int, float, float]:
    x = draw(st.integers(0, 300))
    T = draw(st.floats(0, 1000))
    t_x = draw(st.floats(0, 1)) * T if x > 0 else 0.0
    return x, t_x, T


@settings(max_examples=150, deadline=None)
@given(positive, positive, positive, positive, histories(), st.floats(0, 500), st.floats(0, 500))
def test_probabilities_and_expectations_behave(
    r: float, alpha: float, a: float, b: float, history: tuple, t1: float, t2: float
) -> None:
    model = _fitted_bgnbd(r, alpha, a, b)
    x, t_x, T = history
    short, long = sorted((t1, t2))
    with np.errstate(all="raise"):  # nothing may overflow on the way
        alive = model.p_alive(x, t_x, T)[0]
        quiet = model.p_no_purchase([0.0, short, long], x, t_x, T)
        expected = model.expected_purchases([0.0, short, long], x, t_x, T)
    assert 0 <= alive <= 1
    if x == 0:
        assert alive == 1
    assert np.all((quiet >= 0) & (quiet <= 1))
    assert quiet[0] == 1 and quiet[1] >= quiet[2]
    assert np.all(np.isfinite(expected)) and expected[0] == 0
    assert 0 <= expected[1] <= expected[2] * (1 + 1e-9)


def test_predictions_broadcast_a_horizon_over_customers(
    cdnow: pd.DataFrame, cdnow_bgnbd: BetaGeoModel
) -> None:
    out = cdnow_bgnbd.expected_purchases(13, cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert out.shape == (len(cdnow),)
    one = cdnow_bgnbd.expected_purchases(
        13, cdnow["x"].iloc[5], cdnow["t_x"].iloc[5], cdnow["T"].iloc[5]
    )
    assert out[5] == pytest.approx(one[0])


# ---- fitting behaviour ---------------------------------------------------------------


def test_fit_recovers_simulated_parameters() -> None:
    r, alpha, a, b = 0.25, 4.0, 0.8, 2.5
    T = np.random.default_rng(1).uniform(26, 104, 40_000)
    model = BetaGeoModel().fit(*simulate_bgnbd(40_000, r, alpha, a, b, T, seed=2))
    truth = {"r": r, "alpha": alpha, "a": a, "b": b}
    for name, value in truth.items():
        assert getattr(model, name + "_") == pytest.approx(value, rel=0.15), name


def test_grouping_and_count_weights_give_the_same_fit() -> None:
    T = np.random.default_rng(3).integers(1, 60, 5_000).astype(float)
    x, t_x, T = simulate_bgnbd(5_000, 0.4, 6.0, 1.2, 3.0, T, seed=4)
    t_x = np.floor(t_x)  # whole weeks: plenty of identical histories
    grouped = BetaGeoModel().fit(x, t_x, T)
    plain = BetaGeoModel(group_identical=False).fit(x, t_x, T)
    rows, counts = np.unique(np.column_stack([x, t_x, T]), axis=0, return_counts=True)
    weighted = BetaGeoModel(group_identical=False).fit(rows[:, 0], rows[:, 1], rows[:, 2], counts)
    assert len(rows) < len(x) / 2
    for other in (plain, weighted):
        for name in ("r_", "alpha_", "a_", "b_", "log_likelihood_"):
            assert getattr(other, name) == pytest.approx(getattr(grouped, name), rel=1e-5), name


def test_time_unit_only_rescales_alpha(cdnow: pd.DataFrame, cdnow_bgnbd: BetaGeoModel) -> None:
    days = BetaGeoModel().fit(cdnow["x"], cdnow["t_x"] * 7, cdnow["T"] * 7)
    assert days.alpha_ == pytest.approx(cdnow_bgnbd.alpha_ * 7, rel=1e-5)
    for name in ("r_", "a_", "b_"):
        assert getattr(days, name) == pytest.approx(getattr(cdnow_bgnbd, name), rel=1e-5)
    assert days.p_no_purchase(91, 3, 140, 210)[0] == pytest.approx(
        cdnow_bgnbd.p_no_purchase(13, 3, 20, 30)[0], rel=1e-5
    )


def _sparse(n: int, seed: int, **scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    T = np.random.default_rng(seed).uniform(1, 50, n) * scale.get("T", 1.0)
    return simulate_bgnbd(n, 0.3, 5.0, 0.8, 2.5, T, seed)


@pytest.mark.parametrize(
    "data",
    [
        (np.zeros(200), np.zeros(200), np.linspace(1, 50, 200)),  # nobody ever came back
        (
            np.array([0.0, 1, 2, 0, 5]),
            np.array([0.0, 3, 10, 0, 20]),
            np.array([30.0, 30, 30, 12, 25]),
        ),
        _sparse(300, 5, T=1e6),  # huge ages
        (np.full(50, 10.0), np.full(50, 10.0), np.full(50, 10.0)),  # identical, bought every week
        (np.zeros(3), np.zeros(3), np.zeros(3)),  # everyone bought for the first time today
    ],
    ids=["one-time-buyers", "five-customers", "huge-T", "identical", "T-zero"],
)
def test_degenerate_data_fits_or_fails_clearly(data: tuple) -> None:
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        try:
            model = BetaGeoModel().fit(*data)
        except ValueError as error:
            assert "did not converge" in str(error)
            return
        params = [model.r_, model.alpha_, model.a_, model.b_, model.log_likelihood_]
        assert np.all(np.isfinite(params))
        for values in (model.p_no_purchase(13, *data), model.expected_purchases(13, *data)):
            assert np.all(np.isfinite(values))


def test_failed_optimisation_is_a_clear_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def gives_up(fun: object, x0: np.ndarray, **kwargs: object) -> OptimizeResult:
        failed = {"success": False, "message": "ABNORMAL_TERMINATION_IN_LNSRCH"}
        return OptimizeResult(x=x0, fun=np.nan, jac=np.full(len(x0), np.nan), **failed)

    monkeypatch.setattr(btyd, "minimize", gives_up)
    with pytest.raises(ValueError, match=r"BG/NBD fit did not converge .*penalizer"):
        BetaGeoModel().fit([0, 1, 2], [0, 1, 2], [3, 3, 3])


def test_invalid_histories_are_refused() -> None:
    with pytest.raises(ValueError, match="t_x <= T"):
        BetaGeoModel().fit([1, 2], [5, 3], [4, 4])
    with pytest.raises(ValueError, match="x == 0"):
        BetaGeoModel().fit([0, 2], [1, 3], [4, 4])
    with pytest.raises(ValueError, match="whole numbers"):
        BetaGeoModel().fit([0.5, 2], [0, 3], [4, 4])
    with pytest.raises(ValueError, match="not fitted"):
        BetaGeoModel().p_alive(1, 1, 2)


# ---- Gamma-Gamma ---------------------------------------------------------------------


def test_gamma_gamma_recovers_simulated_parameters() -> None:
    rng = np.random.default_rng(6)
    p, q, v, n = 6.0, 4.0, 15.0, 20_000
    x = rng.integers(1, 8, n)
    nu = rng.gamma(q, 1 / v, n)  # each customer's rate
    m_x = rng.gamma(p * x, 1 / (nu * x))  # mean of x Gamma(p, nu) purchases
    model = GammaGammaModel().fit(x, m_x)
    assert (model.p_, model.q_, model.v_) == pytest.approx((p, q, v), rel=0.15)


def test_gamma_gamma_ignores_one_time_buyers_and_blends_toward_the_mean(
    cdnow: pd.DataFrame,
) -> None:
    model = GammaGammaModel().fit(cdnow["x"], cdnow["m_x"])
    repeaters = cdnow[cdnow["x"] > 0]
    again = GammaGammaModel().fit(repeaters["x"], repeaters["m_x"])
    assert again.p_ == pytest.approx(model.p_, rel=1e-9)
    population = model.v_ * model.p_ / (model.q_ - 1)
    assert model.expected_spend(0, np.nan)[0] == pytest.approx(population)
    spend = model.expected_spend(repeaters["x"], repeaters["m_x"])
    low, high = np.minimum(repeaters["m_x"], population), np.maximum(repeaters["m_x"], population)
    assert np.all((spend >= low - 1e-9) & (spend <= high + 1e-9))


def test_gamma_gamma_refuses_what_it_cannot_answer() -> None:
    with pytest.raises(ValueError, match="at least 10 repeat customers"):
        GammaGammaModel().fit([0, 0, 1, 2], [0.0, 0.0, 5.0, 7.0])
    model = GammaGammaModel()
    model.p_, model.q_, model.v_ = 2.0, 0.9, 10.0
    with pytest.raises(ValueError, match=r"q = 0\.9 <= 1"):
        model.expected_spend([1], [10.0])


@pytest.mark.parametrize("with_curvature", [False, True])
def test_a_warm_start_reaches_the_same_fit_in_few_evaluations(
    monkeypatch: pytest.MonkeyPatch,
    cdnow: pd.DataFrame,
    cdnow_bgnbd: BetaGeoModel,
    with_curvature: bool,
) -> None:
    """Starting from nearby parameters (the previous cutoff's) changes speed, not the answer:
    Newton's method from there needs a handful of likelihood evaluations (TNC took 25-115
    on the 10 M benchmark's cutoffs) and lands on the cold fit to 1e-6; the previous
    fit's Hessian (``curvature_``) saves measuring one (four evaluations)."""
    calls = []

    def counted(params: np.ndarray, d: object) -> tuple[float, np.ndarray]:
        calls.append(1)
        return _bgnbd_loglik(params, d)  # type: ignore[arg-type]

    monkeypatch.setattr(btyd, "_bgnbd_loglik", counted)
    m = cdnow_bgnbd
    start = (m.r_ * 1.05, m.alpha_ * 0.95, m.a_ * 1.05, m.b_ * 0.95)
    curvature = m.curvature_ if with_curvature else None
    assert m.curvature_ is not None
    warm = BetaGeoModel().fit(
        cdnow["x"], cdnow["t_x"], cdnow["T"], start=start, curvature=curvature
    )
    np.testing.assert_allclose(
        [warm.r_, warm.alpha_, warm.a_, warm.b_], [m.r_, m.alpha_, m.a_, m.b_], rtol=1e-6
    )
    assert len(calls) <= (8 if with_curvature else 12)  # including the final log-likelihood


@pytest.mark.parametrize("which", ["bgnbd", "gg"])
def test_fits_end_where_the_gradient_vanishes(cdnow: pd.DataFrame, which: str) -> None:
    """TNC at its tolerances stopped with a gradient per customer of ~1e-7 (~1e-5 from the
    optimum in log-parameters); Newton's method takes the fit to ~1e-9 (~1e-8)."""
    if which == "bgnbd":
        m = BetaGeoModel().fit(cdnow["x"], cdnow["t_x"], cdnow["T"])
        params = np.array([m.r_, m.alpha_, m.a_, m.b_])
        _, grad = _bgnbd_loglik(params, _histories(_group(cdnow, "t_x", "T")))
    else:
        repeat = cdnow[cdnow["x"] > 0]
        gg = GammaGammaModel().fit(repeat["x"], repeat["m_x"])
        params = np.array([gg.p_, gg.q_, gg.v_])
        _, grad = _gg_loglik(params, _spends(_group(repeat, "m_x")))
    assert np.max(np.abs(grad)) / len(cdnow) < 1e-8
