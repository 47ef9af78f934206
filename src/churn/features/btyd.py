"""BG/NBD and Gamma-Gamma ("buy till you die") models, fitted by maximum likelihood.

They turn a customer's purchase history (x repeat purchases, the last at t_x,
observed for T since the first) into the probabilities and expectations the
classifier and the targeting step use as features: P(alive), P(no purchase in
the label horizon), expected purchases and expected spend per purchase.

Why the fit looks the way it does:
- Log-likelihoods are summed in log space (gammaln, logaddexp), so no customer
  overflows, however long their history.
- Parameters are optimised on the log scale (always positive) within wide
  bounds: where the maximum is at the edge (e.g. nobody ever came back) the fit
  ends at a bound with finite, usable parameters instead of an overflow.
- Times are rescaled internally to a mean T of 1, so the starting point and
  the bounds work for days, weeks or seconds alike; only alpha depends on units.
- Customers with identical inputs are merged and the likelihood weighted by
  counts (day-level histories repeat a lot), and every gamma-family function
  is evaluated once per distinct x, not per customer: a million customers fit
  in seconds.
- The same inputs give the same bits on every machine (the features are DVC
  outputs that a fresh clone must reproduce): the optimiser (TNC) and the
  likelihood's sums use no BLAS, whose kernel and thread count vary by host
  (OPENBLAS_CORETYPE, OPENBLAS_NUM_THREADS), and exp/log come from
  churn.portable_math, not NumPy's per-CPU SIMD versions. The fit's path
  depends on every bit of the likelihood, so a last-bit difference there moved
  the parameters by ~1e-7.

References: Fader, Hardie & Lee (2005a) "Counting your customers the easy way",
Marketing Science 24(2); (2005b) "RFM and CLV: using iso-value curves for
customer base analysis", JMR 42(4); Hardie's note 025 on the Gamma-Gamma model.
"""

# T (customer age) keeps the name every BTYD paper gives it.
# ruff: noqa: N803, N806

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import betainc, betaln, digamma, expit, gammaln, hyp2f1

from churn.features.distinct import first_of_each
from churn.features.newton import NewtonResult, newton_minimise
from churn.portable_math import exp, expm1, log, log1p, logaddexp

FloatArray = NDArray[np.float64]
Objective = Callable[[FloatArray], tuple[float, FloatArray]]
_LOG_BOUND = 20.0  # parameters stay in [e^-20, e^20] on the rescaled time / spend axis
MIN_REPEATERS = 10
# Newton stops where its next step would raise the mean log-likelihood per customer by at
# most this: there the gradient per customer is ~1e-9 (~1e-8 from the optimum in
# log-parameters), where TNC's tolerances had stopped the 10 M benchmark's fits at up to
# 2e-4 (Pareto/NBD) and 1e-7 (BG/NBD, ~1e-5 from the optimum).
_NEWTON_TOL = 1e-15
# TNC (truncated Newton, scipy's C code) rather than L-BFGS-B, whose C code calls BLAS
# (ddot, dpotrf, ...): a different OpenBLAS kernel gave different fits. The tolerances
# stop it where L-BFGS-B stopped (parameters within ~1e-7 of its).
_OPTIMISER = {
    "method": "TNC",
    "options": {"maxfun": 2000, "ftol": 1e-13, "xtol": 1e-12, "gtol": 1e-9},
}


def _array(name: str, values: ArrayLike) -> FloatArray:
    array = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _check_history(x: FloatArray, t_x: FloatArray, T: FloatArray) -> None:
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise ValueError("x (repeat purchases) must be non-negative whole numbers")
    if np.any(t_x < 0) or np.any(t_x > T):
        raise ValueError("need 0 <= t_x <= T for every customer")
    if np.any((x == 0) & (t_x > 0)):
        raise ValueError("customers with x == 0 must have t_x == 0")


@dataclass(frozen=True)
class _Grouped:
    """Distinct input rows with their summed weights, plus the distinct values of x.

    Every term of either likelihood that depends on x alone (the gamma, beta and
    digamma functions, the slow part) is evaluated once per distinct x and weighted
    by x_weight; x takes a few hundred values at most, however many customers.
    """

    x: FloatArray
    rest: tuple[FloatArray, ...]  # (t_x, T) for BG/NBD, (m_x,) for Gamma-Gamma
    weight: FloatArray
    x_levels: FloatArray
    x_weight: FloatArray


def _grouped(x: FloatArray, rest: list[FloatArray], weight: FloatArray, merge: bool) -> _Grouped:
    """Merge identical rows (a hash table; the first of each kept, in input order) when
    asked; exact either way."""
    if merge:
        first, codes = first_of_each((x, *rest))
        weight = np.bincount(codes, weights=weight, minlength=len(first)).astype(np.float64)
        x, rest = x[first], [c[first] for c in rest]
    levels, index = np.unique(x, return_inverse=True)
    x_weight = np.bincount(index.ravel(), weights=weight, minlength=len(levels))
    return _Grouped(x, tuple(rest), weight, levels, x_weight.astype(np.float64))


def _weights(weights: ArrayLike | None, n: int) -> FloatArray:
    if n == 0:
        raise ValueError("no customers to fit")
    if weights is None:
        return np.ones(n)
    w = _array("weights", weights)
    if w.shape != (n,) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights must be non-negative, one per customer, with a positive sum")
    return w


def _maximise(
    objective: Objective,
    starts: Sequence[Sequence[float]],
    model: str,
    optimiser: dict[str, Any] | None = None,
    inside: Callable[[FloatArray], bool] | None = None,
    curvature: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray | None]:
    """(the optimum, and the Hessian there when Newton's method knows it).

    Newton's method (churn.features.newton) on log-parameters from each start until
    one converges; where Newton is not the tool, TNC from where it stopped, then Newton
    from where TNC stopped (TNC's tolerances leave it ~1e-5 short of the optimum in
    log-parameters, Newton's ~1e-8), or TNC's answer as it is (e.g. at a bound).
    ``inside``: which points Newton may step to (default: every coordinate within the
    bounds). ``curvature``: the Hessian of a similar fit (the previous cutoff's, with
    the first start: a warm start), which saves measuring it.
    """
    message = ""
    for number, start in enumerate(starts):
        theta0 = log(np.asarray(start, dtype=np.float64))
        newton = _newton(objective, theta0, inside, curvature if number == 0 else None)
        if newton.converged:
            return newton.x, newton.hessian
        theta0 = newton.x  # where Newton stopped: no higher than the start
        bounds = [(-_LOG_BOUND, _LOG_BOUND)] * len(theta0)
        with np.errstate(all="ignore"):
            result = minimize(
                objective, theta0, jac=True, bounds=bounds, **(optimiser or _OPTIMISER)
            )
        message = str(result.message)
        # The optimiser may stop in a line search exactly at the optimum; accept a small
        # projected gradient as convergence too.
        theta = np.asarray(result.x, dtype=np.float64)
        grad = np.asarray(result.jac, dtype=np.float64)
        at_bound = np.abs(theta) >= _LOG_BOUND - 1e-9
        small = np.all(np.abs(np.where(at_bound, 0.0, grad)) < 1e-5)
        if np.isfinite(result.fun) and np.all(np.isfinite(theta)) and (result.success or small):
            polished = _newton(objective, theta, inside, None)
            return (polished.x, polished.hessian) if polished.converged else (theta, None)
    raise ValueError(
        f"{model} fit did not converge (TNC: {message or 'no reason given'}); "
        "check the inputs (enough customers, not all identical) or set penalizer > 0"
    )


def _newton(
    objective: Objective,
    theta0: FloatArray,
    inside: Callable[[FloatArray], bool] | None,
    curvature: FloatArray | None,
) -> NewtonResult:
    with np.errstate(all="ignore"):
        return newton_minimise(
            objective, theta0, inside or _inside, tol=_NEWTON_TOL, hessian0=curvature
        )


def _inside(theta: FloatArray) -> bool:
    return bool(np.all(np.abs(theta) < _LOG_BOUND))


def _weighted_sums(rows: list[FloatArray], weights: FloatArray) -> FloatArray:
    """sum_i w_i f_k(i) for each k. einsum, not BLAS: its loops add in one fixed order on
    every CPU (a BLAS ddot's order depends on the kernel and the thread count), and a
    threaded ddot can stall for milliseconds per call on a busy machine."""
    return np.einsum("kn,n->k", np.stack(rows), weights)


@dataclass(frozen=True)
class _Histories:
    """BG/NBD's likelihood data: the grouped rows, and the distinct values of x and of the
    ages (t_x and T together) with each row's index into them.

    Every log of a parameter plus an age, or of b + x - 1, is evaluated once per distinct
    value and gathered: ages are whole days, so a few hundred values serve hundreds of
    thousands of rows, and it is the same function of the same number, so the same bits.
    """

    rows: _Grouped
    at_x: np.ndarray  # row -> x level
    ages: FloatArray
    at_tx: np.ndarray  # row -> index of its t_x in ages
    at_age: np.ndarray

    @property
    def weight(self) -> FloatArray:
        return self.rows.weight


def _histories(h: _Grouped) -> _Histories:
    t_x, T = h.rest
    ages, index = np.unique(np.concatenate([t_x, T]), return_inverse=True)
    index = index.ravel()
    at_x = np.searchsorted(h.x_levels, h.x)
    return _Histories(h, at_x, ages, index[: len(t_x)], index[len(t_x) :])


def _bgnbd_loglik(params: FloatArray, d: _Histories) -> tuple[float, FloatArray]:
    """Total weighted log-likelihood and its gradient w.r.t. log(r, alpha, a, b)."""
    r, alpha, a, b = params
    h = d.rows
    u, x = h.x_levels, h.x
    t_x, T = h.rest
    # Terms in x alone: Gamma(r + x) alpha^r / Gamma(r) and B(a, b + x) / B(a, b).
    d_ab = digamma(a + b) - digamma(a + b + u)
    per_x = [
        gammaln(r + u) - gammaln(r) + r * log(alpha) + betaln(a, b + u) - betaln(a, b),
        digamma(r + u) - digamma(r) + log(alpha),
        np.full_like(u, r / alpha),
        d_ab,
        d_ab + digamma(b + u) - digamma(b),
    ]
    # Per row: alive at T, or dropped out right after the purchase at t_x (needs x > 0).
    repeat, s = x > 0, r + x
    bx1 = np.where(repeat, b + x - 1, 1.0)  # b + x - 1 >= b > 0 wherever it is used
    log_ages = log(alpha + d.ages)
    log_age_T, log_age_tx = log_ages[d.at_age], log_ages[d.at_tx]
    log_bx1 = log(np.where(u > 0, b + u - 1, 1.0))[d.at_x]
    log_drop = np.where(repeat, log(a) - log_bx1 - s * log_age_tx, -np.inf)
    mix = logaddexp(-s * log_age_T, log_drop)
    share = exp(log_drop - mix)  # posterior probability of "dropped out after t_x"
    stay = 1 - share
    per_row = [
        mix,
        -(stay * log_age_T + share * log_age_tx),
        -s * (stay / (alpha + T) + share / (alpha + t_x)),
        share / a,
        -share / bx1,
    ]
    total = _weighted_sums(per_x, h.x_weight) + _weighted_sums(per_row, h.weight)
    return float(total[0]), total[1:] * params


@dataclass(frozen=True)
class _Spends:
    """Gamma-Gamma's likelihood data: the grouped (x, m_x) rows and the logs that do not
    depend on the parameters (of m, x and the total spend x m), taken once per fit
    instead of once per evaluation: the same values, so the same bits."""

    rows: _Grouped
    total: FloatArray  # x m
    log_m: FloatArray
    log_x: FloatArray
    log_xm: FloatArray

    @property
    def weight(self) -> FloatArray:
        return self.rows.weight


def _spends(h: _Grouped) -> _Spends:
    (m,) = h.rest
    return _Spends(h, h.x * m, log(m), log(h.x), log(h.x * m))


def _gg_loglik(params: FloatArray, d: _Spends) -> tuple[float, FloatArray]:
    """Total weighted Gamma-Gamma log-likelihood of mean spends m_x and its gradient in logs."""
    p, q, v = params
    h = d.rows
    u, x = h.x_levels, h.x
    pu, px = p * u, p * x
    per_x = [
        gammaln(pu + q) - gammaln(pu) - gammaln(q) + q * log(v),
        u * (digamma(pu + q) - digamma(pu)),
        digamma(pu + q) - digamma(q) + log(v),
        np.full_like(u, q / v),
    ]
    log_total = log(v + d.total)
    per_row = [
        (px - 1) * d.log_m + px * d.log_x - (px + q) * log_total,
        x * (d.log_xm - log_total),
        -log_total,
        -(px + q) / (v + d.total),
    ]
    total = _weighted_sums(per_x, h.x_weight) + _weighted_sums(per_row, h.weight)
    return float(total[0]), total[1:] * params


class _Weighted(Protocol):
    """Likelihood data: anything with one weight per (distinct) row."""

    @property
    def weight(self) -> FloatArray: ...


_Data = TypeVar("_Data", bound=_Weighted)


def _objective(
    loglik: Callable[[FloatArray, _Data], tuple[float, FloatArray]],
    h: _Data,
    penalizer: float,
) -> Objective:
    """Mean negative log-likelihood per customer plus an L2 penalty on the log-parameters."""
    total = h.weight.sum()

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        with np.errstate(all="ignore"):
            ll, grad = loglik(exp(theta), h)
        # A Python sum, not theta @ theta: numpy's @ is a BLAS call.
        penalty = penalizer * sum(float(t) * float(t) for t in theta)
        return -ll / total + penalty, -grad / total + 2 * penalizer * theta

    return objective


# Tanh-sinh nodes on (0, 1): p = 1 / (1 + exp(-pi sinh y)). They crowd both ends doubly
# exponentially, so Beta densities with a or b + x far below 1 are still integrated well.
_Y = np.linspace(-6.0, 6.0, 769)[:, None]
_STEP = float(_Y[1, 0] - _Y[0, 0])
_SINH = np.array([[math.sinh(y)] for y in _Y[:, 0]])  # the C library's, like portable_math
_COSH = np.array([[math.cosh(y)] for y in _Y[:, 0]])
_LOG_P = -logaddexp(0.0, -np.pi * _SINH)  # log p and log(1 - p), without cancellation
_LOG_Q = -logaddexp(0.0, np.pi * _SINH)
_LOG_JACOBIAN = log(np.pi * _COSH)  # dp/dy = p (1 - p) pi cosh y
_P = exp(_LOG_P)
_P_SAFE = np.maximum(_P, 1e-300)


def _expected_if_alive_quadrature(
    t: FloatArray, x: FloatArray, k: FloatArray, r: float, a: float, b: float
) -> FloatArray:
    """E[purchases in t | alive] as an integral over p ~ Beta(a, b + x) (tanh-sinh rule).

    Given alive, lambda ~ Gamma(r + x, k) and E[Y | lambda, p] = (1 - e^{-lambda p t}) / p,
    so E = E_p[(1 - (1 + p t / k)^{-(r + x)}) / p]. Bounded integrand, no special
    functions: the fallback wherever hyp2f1 gives up.
    """
    out = np.empty(len(t))
    for lo in range(0, len(t), 4096):  # chunks keep the (nodes x customers) grid small
        part = slice(lo, lo + 4096)
        s, ratio, bx = r + x[part], t[part] / k[part], b + x[part]
        log_w = a * _LOG_P + bx * _LOG_Q + _LOG_JACOBIAN - betaln(a, bx)
        gain = np.where(_P > 0, -expm1(-s * log1p(_P * ratio)) / _P_SAFE, s * ratio)
        inside = np.sum(exp(log_w) * gain, axis=0) * _STEP
        # Beta mass beyond the outermost nodes (only for a or b + x near 0), where the
        # integrand is at its limits: s * ratio as p -> 0, 1 - (1 + ratio)^-s as p -> 1.
        below = betainc(a, bx, exp(_LOG_P[0, 0]))
        above = betainc(bx, a, exp(_LOG_Q[-1, 0]))
        out[part] = inside + below * s * ratio - above * expm1(-s * log1p(ratio))
    return out


@dataclass
class BetaGeoModel:
    """BG/NBD: purchases are Poisson(lambda) while alive; after each purchase the customer
    drops out with probability p; lambda ~ Gamma(r, alpha), p ~ Beta(a, b) across customers.

    penalizer adds penalizer * sum(log(param)^2) (alpha on the rescaled time axis) to the
    mean negative log-likelihood; 0 is plain maximum likelihood.
    """

    penalizer: float = 0.0
    group_identical: bool = True

    def fit(
        self,
        x: ArrayLike,
        t_x: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
        start: Sequence[float] | None = None,
        curvature: FloatArray | None = None,
    ) -> BetaGeoModel:
        """Maximum likelihood; ``start`` = (r, alpha, a, b) tried first (e.g. a previous fit's
        parameters on similar data: a warm start converges in a fraction of the steps), with
        that fit's ``curvature_`` when given (it saves a Hessian)."""
        xs, txs, Ts = _array("x", x), _array("t_x", t_x), _array("T", T)
        if not len(xs) == len(txs) == len(Ts):
            raise ValueError("x, t_x and T must have the same length")
        _check_history(xs, txs, Ts)
        h = _grouped(xs, [txs, Ts], _weights(weights, len(xs)), self.group_identical)
        total = h.weight.sum()
        mean_T = float(np.sum(h.weight * h.rest[1])) / total
        scale = mean_T if mean_T > 0 else 1.0
        scaled = replace(h, rest=(h.rest[0] / scale, h.rest[1] / scale))
        alpha0 = float(np.clip(total / max(np.sum(h.weight * h.x), 1e-2 * total), 1e-2, 1e2))
        starts = [(1.0, alpha0, 1.0, 1.0), (0.5, 1.0, 0.5, 2.0), (2.0, 10.0, 2.0, 5.0)]
        if start is not None:
            r0, a0, aa0, b0 = start
            starts.insert(0, (r0, a0 / scale, aa0, b0))
        objective = _objective(_bgnbd_loglik, _histories(scaled), self.penalizer)
        warm = None if start is None else curvature
        theta, self.curvature_ = _maximise(objective, starts, "BG/NBD", curvature=warm)
        r, alpha, a, b = exp(theta)
        self.r_, self.alpha_, self.a_, self.b_ = float(r), float(alpha * scale), float(a), float(b)
        with np.errstate(all="ignore"):
            self.log_likelihood_ = _bgnbd_loglik(self._params(), _histories(h))[0]
        return self

    def _params(self) -> FloatArray:
        if not hasattr(self, "r_"):
            raise ValueError("BetaGeoModel is not fitted yet; call fit first")
        return np.array([self.r_, self.alpha_, self.a_, self.b_])

    def _history(
        self, t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Validated, broadcast (t, x, T) and log[P(dropped out at t_x) / P(alive)]."""
        r, alpha, a, b = self._params()
        ts, xs, txs, Ts = np.broadcast_arrays(
            _array("t", t), _array("x", x), _array("t_x", t_x), _array("T", T)
        )
        _check_history(xs, txs, Ts)
        if np.any(ts < 0):
            raise ValueError("t must be non-negative")
        repeat = xs > 0
        bx1 = np.where(repeat, b + xs - 1, 1.0)
        odds = log(a) - log(bx1) + (r + xs) * (log(alpha + Ts) - log(alpha + txs))
        return ts, xs, Ts, np.where(repeat, odds, -np.inf)

    def p_alive(self, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:
        """P(still alive at T | history). Exactly 1 when x == 0: BG/NBD customers can only
        drop out right after a purchase, so a one-time buyer is alive by construction."""
        with np.errstate(all="ignore"):
            *_, odds = self._history(0.0, x, t_x, T)
            return np.asarray(expit(-odds), dtype=np.float64)

    def p_no_purchase(self, t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:
        """P(no purchase in (T, T + t] | history): the model's probability of our churn label.

        This, not P(alive), is the churn-facing quantity. P(alive) is 1 for every one-time
        buyer, though most of them never return; here they still get a high probability of
        not buying when their (posterior) purchase rate is low. An alive customer who does
        not buy cannot drop out, so P(no purchase) = 1 - P(alive) P(buys | alive).
        """
        with np.errstate(all="ignore"):
            ts, xs, Ts, odds = self._history(t, x, t_x, T)
            return np.asarray(1 - expit(-odds) * self._buys_if_alive(ts, xs, Ts), dtype=np.float64)

    def p_buy_if_alive(self, t: ArrayLike, x: ArrayLike, T: ArrayLike) -> FloatArray:
        """P(a purchase in (T, T + t] | alive at T, x, T): does not depend on t_x, so a caller
        with many histories evaluates it once per distinct (x, T) (:meth:`p_no_purchase`)."""
        ts, xs, Ts = self._age_history(t, x, T)
        with np.errstate(all="ignore"):
            return self._buys_if_alive(ts, xs, Ts)

    def _buys_if_alive(self, ts: FloatArray, xs: FloatArray, Ts: FloatArray) -> FloatArray:
        # Given alive, lambda ~ Gamma(r + x, alpha + T): P(0 | alive) = ((alpha + T) /
        # (alpha + T + t))^(r + x) exactly.
        return np.asarray(
            -expm1(-(self.r_ + xs) * log1p(ts / (self.alpha_ + Ts))), dtype=np.float64
        )

    def _age_history(
        self, t: ArrayLike, x: ArrayLike, T: ArrayLike
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Validated, broadcast (t, x, T), for the terms that do not depend on t_x."""
        self._params()
        ts, xs, Ts = np.broadcast_arrays(_array("t", t), _array("x", x), _array("T", T))
        _check_history(xs, np.zeros_like(Ts), Ts)
        if np.any(ts < 0):
            raise ValueError("t must be non-negative")
        return ts, xs, Ts

    def expected_purchases(
        self, t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """E[purchases in (T, T + t] | history] (Fader, Hardie & Lee 2005a, eq. 10):
        P(alive) times :meth:`expected_if_alive`."""
        with np.errstate(all="ignore"):
            ts, xs, Ts, odds = self._history(t, x, t_x, T)
            if_alive = self._expected_if_alive(ts, xs, Ts)
            return np.asarray(np.where(ts > 0, expit(-odds) * if_alive, 0.0), dtype=np.float64)

    def expected_if_alive(self, t: ArrayLike, x: ArrayLike, T: ArrayLike) -> FloatArray:
        """E[purchases in (T, T + t] | alive at T, x, T]. It does not depend on t_x, so a
        caller with many histories evaluates its 2F1 once per distinct (x, T): ten times
        fewer than distinct histories on day-level data."""
        ts, xs, Ts = self._age_history(t, x, T)
        with np.errstate(all="ignore"):
            return self._expected_if_alive(ts, xs, Ts)

    def _expected_if_alive(self, ts: FloatArray, xs: FloatArray, Ts: FloatArray) -> FloatArray:
        """The 2F1 is evaluated after Euler's transformation,
        (1-z)^(r+x) 2F1(r+x, b+x; c; z) = (1-z)^(a-1) 2F1(a+b-1-r, a-1; c; z),
        whose terms stay near 1 instead of overflowing for large x; any value still
        not finite (and a ~ 1, where the closed form is 0/0) comes from quadrature.
        """
        r, alpha, a, b = self._params()
        k, c = alpha + Ts, a + b + xs - 1
        tail = exp(-(a - 1) * log1p(ts / k)) * hyp2f1(a + b - 1 - r, a - 1, c, ts / (k + ts))
        if_alive = c / (a - 1) * (1 - tail)
        # E[Y | alive] = E_p[(1 - (1 + p t / k)^-(r+x)) / p], and the integrand falls
        # from (r+x) t / k at p = 0 to 1 - (1 + t / k)^-(r+x) at p = 1: a value outside
        # those bounds means hyp2f1 lost accuracy (huge or near-singular parameters).
        upper = (r + xs) * ts / k
        lower = -expm1(-(r + xs) * log1p(ts / k))
        slack = 1e-9 * upper + 1e-300
        redo = ~((if_alive >= lower - slack) & (if_alive <= upper + slack))
        redo |= abs(a - 1) < 1e-6
        if np.any(redo):
            if_alive[redo] = _expected_if_alive_quadrature(ts[redo], xs[redo], k[redo], r, a, b)
        return np.asarray(if_alive, dtype=np.float64)


@dataclass
class GammaGammaModel:
    """Gamma-Gamma: each purchase's value ~ Gamma(p, nu), the customer's nu ~ Gamma(q, v)
    (the paper's gamma). Fitted on repeat customers' mean spend per repeat purchase,
    independent of the BG/NBD fit (the model assumes spend and frequency independent).
    """

    penalizer: float = 0.0
    group_identical: bool = True

    def fit(
        self,
        x: ArrayLike,
        m_x: ArrayLike,
        weights: ArrayLike | None = None,
        start: Sequence[float] | None = None,
        curvature: FloatArray | None = None,
    ) -> GammaGammaModel:
        """Maximum likelihood; ``start`` = (p, q, v) is tried first (a warm start), with
        that fit's ``curvature_`` when given."""
        xs, ms = _array("x", x), _array("m_x", m_x)
        if len(xs) != len(ms):
            raise ValueError("x and m_x must have the same length")
        w = _weights(weights, len(xs))
        repeat = xs > 0  # one-time buyers carry no repeat spend: excluded, as in the paper
        if repeat.sum() < MIN_REPEATERS:
            raise ValueError(
                f"Gamma-Gamma needs at least {MIN_REPEATERS} repeat customers, "
                f"got {int(repeat.sum())}"
            )
        xs, ms, w = xs[repeat], ms[repeat], w[repeat]
        if np.any(ms <= 0):
            raise ValueError("m_x (mean spend) must be positive for every customer with x > 0")
        h = _grouped(xs, [ms], w, self.group_identical)
        scale = float(np.sum(h.weight * h.rest[0]) / h.weight.sum())
        scaled = _spends(replace(h, rest=(h.rest[0] / scale,)))
        objective = _objective(_gg_loglik, scaled, self.penalizer)
        starts = [(1.0, 2.0, 1.0), (5.0, 3.0, 10.0), (0.5, 1.5, 0.5)]
        if start is not None:
            p0, q0, v0 = start
            starts.insert(0, (p0, q0, v0 / scale))
        warm = None if start is None else curvature
        theta, self.curvature_ = _maximise(objective, starts, "Gamma-Gamma", curvature=warm)
        p, q, v = exp(theta)
        self.p_, self.q_, self.v_ = float(p), float(q), float(v * scale)
        with np.errstate(all="ignore"):
            params = np.array([self.p_, self.q_, self.v_])
            self.log_likelihood_ = _gg_loglik(params, _spends(h))[0]
        return self

    def expected_spend(self, x: ArrayLike, m_x: ArrayLike) -> FloatArray:
        """E[value per purchase | x, m_x]: a credibility-weighted blend of the population
        mean v p / (q - 1) and the customer's own mean; x == 0 gives the population mean."""
        if not hasattr(self, "p_"):
            raise ValueError("GammaGammaModel is not fitted yet; call fit first")
        p, q, v = self.p_, self.q_, self.v_
        if q <= 1:
            raise ValueError(f"fitted q = {q:.3g} <= 1: the population mean spend is infinite")
        xs = _array("x", x)
        ms = np.asarray(m_x, dtype=np.float64)  # may be NaN where x == 0: it is not used there
        if np.any(xs < 0):
            raise ValueError("x must be non-negative")
        own = p * xs / (p * xs + q - 1)
        blended = (1 - own) * v * p / (q - 1) + own * np.where(xs > 0, ms, 0.0)
        return np.asarray(blended, dtype=np.float64)
