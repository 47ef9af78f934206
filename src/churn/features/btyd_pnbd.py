"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987), fitted by maximum likelihood.

Where BG/NBD lets a customer drop out only right after a purchase, Pareto/NBD
lets them leave at any moment (an exponential lifetime, mu ~ Gamma(s, beta)),
while they buy at Poisson rate lambda ~ Gamma(r, alpha). That is the better
story for quiet one-time buyers, and on CDNOW it ranks churners better than
BG/NBD. It gives the classifier, and the `pnbd` baseline, P(alive) and
P(no purchase in the next t).

Both the likelihood and the prediction need an integral of the form
``G(u) = int_u^inf (A + v)^-p (B + v)^-q dv``, a Gauss hypergeometric function
(Fader & Hardie, note 009). It is computed in log space, with A >= B or A < B
swapped so that the argument z = |A - B| / (max(A, B) + u) is always in [0, 1),
and through Euler's transformation 2F1(q, K; K+1; z) = (1-z)^(1-q)
2F1(1, p; K+1; z), whose series has positive terms shrinking at least as fast
as z^n: no cancellation, no overflow, for any x. Each G is evaluated once per
distinct (x, time) pair (day-level histories repeat a great deal).

The optimiser and its determinism are BG/NBD's (churn.features.btyd: TNC, no
BLAS, the C library's exp/log); the gradient is a central difference in the
log-parameters, as 2F1 has no closed-form derivative in its parameters.

References: Schmittlein, Morrison & Colombo (1987), Management Science 33(1);
Fader & Hardie (2005) "A note on deriving the Pareto/NBD model and related
expressions" (note 009); published CDNOW estimates r = 0.55, alpha = 10.58,
s = 0.61, beta = 11.67 (also lifetimes' and pymc-marketing's test values).
"""

# T (customer age) keeps the name every BTYD paper gives it.
# ruff: noqa: N803, N806

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import digamma, gammaln, hyp2f1

from churn.features.btyd import (
    FloatArray,
    Objective,
    _array,
    _check_history,
    _grouped,
    _maximise,
    _objective,
    _weighted_sums,
    _weights,
)
from churn.features.distinct import first_of_each
from churn.portable_math import exp, expm1, log, log1p, logaddexp


def log_tail(
    A: FloatArray, B: FloatArray, p: FloatArray, q: FloatArray, u: FloatArray
) -> FloatArray:
    """log of ``int_u^inf (A + v)^-p (B + v)^-q dv`` for A, B > 0, p + q > 1, u >= 0.

    = 2F1(q, K; K+1; z) / (K (A+u)^K) with K = p + q - 1, z = (A - B) / (A + u) when
    A >= B; the roles of (A, p) and (B, q) swap otherwise, so z is never negative.
    """
    swap = A < B
    big, small = np.where(swap, B, A), np.where(swap, A, B)
    p_big, q_small = np.where(swap, q, p), np.where(swap, p, q)
    K = p + q - 1
    base = big + u
    z = (big - small) / base
    series = hyp2f1(1.0, p_big, K + 1, z)
    return np.asarray(
        -K * log(base) - log(K) + (1 - q_small) * log1p(-z) + log(series), dtype=np.float64
    )


def _log_difference(high: FloatArray, low: FloatArray) -> FloatArray:
    """log(e^high - e^low) for high >= low; -inf where they are equal."""
    with np.errstate(divide="ignore"):
        return np.asarray(high + log(-expm1(low - high)), dtype=np.float64)


# BG/NBD's TNC, stopped earlier: where dropout is (next to) constant or absent, the
# likelihood is flat along a ridge (s and beta together to 0 or infinity, 1e-7 apart in
# log-likelihood over a decade) and TNC at BG/NBD's tolerances crawled along it for its
# whole 2000-evaluation budget (minutes per cutoff); the predictions do not move there.
_OPTIMISER = {
    "method": "TNC",
    "options": {"maxfun": 400, "ftol": 1e-10, "xtol": 1e-9, "gtol": 1e-7},
}
# Series terms at most: z^n < 1e-17 needs 400 terms up to z = 0.906 (alpha and beta ten
# times apart, for a customer with t near 0); beyond, the rest of the series is added as a
# geometric tail (1e-9 relative error at z = 0.97, 4e-4 at 0.99). z near 1 means dropout
# rates with next to no spread (s and beta both huge): the likelihood is flat along that
# ridge, and a fit there is slower, not wrong by more than that.
_MAX_TERMS = 400
_BLOCK = 512  # pairs per block of the series, by terms needed: a block needs its last's
_TERM_CLASSES = (12, 25, 50, 100, 200)  # term counts a block may stop at, below the most
_LOG_EPS = -39.2  # log(1e-17): a series' rest, relative to S >= 1, past its last term


@dataclass(frozen=True)
class _Pairs:
    """Distinct (x, t_x, T) rows with weights, and the distinct (x, time) pairs they need.

    Each tail integral is computed once per distinct (x, time) pair: day-level
    histories repeat a great deal, and no pair outside the data is computed.
    """

    x_levels: FloatArray
    x_weight: FloatArray
    pair_level: np.ndarray  # pair -> x level
    pair_t: FloatArray
    at_tx: np.ndarray  # row -> pair of (x, t_x)
    at_age: np.ndarray  # row -> pair of (x, T)
    x: FloatArray  # per row
    T: FloatArray
    weight: FloatArray


def _pairs(x: FloatArray, t_x: FloatArray, T: FloatArray, weight: FloatArray) -> _Pairs:
    h = _grouped(x, [t_x, T], weight, True)
    t_x, T = h.rest
    level = np.searchsorted(h.x_levels, h.x)
    both = np.column_stack([np.concatenate([level, level]), np.concatenate([t_x, T])])
    distinct, index = np.unique(both, axis=0, return_inverse=True)
    index = index.ravel()
    n = len(h.x)
    return _Pairs(
        h.x_levels,
        h.x_weight,
        distinct[:, 0].astype(np.int64),
        distinct[:, 1],
        index[:n],
        index[n:],
        h.x,
        T,
        h.weight,
    )


@dataclass(frozen=True)
class _Tail:
    """log G per pair and its derivatives in P, Q, big and small."""

    log_g: FloatArray
    d_p: FloatArray
    d_q: FloatArray
    d_big: FloatArray
    d_small: FloatArray


def _n_terms(z_max: float) -> int:
    """Terms for z_max^n < 1e-17 (each term is at most z^n), within _MAX_TERMS."""
    if z_max <= 0:
        return 2
    if z_max >= 0.99:
        return _MAX_TERMS
    return min(_MAX_TERMS, math.ceil(-39.2 / math.log(z_max)) + 2)


def _remainder(
    last: FloatArray, ratio: FloatArray, z: FloatArray, n: int
) -> tuple[FloatArray, FloatArray]:
    """sum_{m>=n} c_m z^m past the last term c_{n-1} z^(n-1), as the geometric series of the
    last term ratio (P + n - 1) / (P + Q + n - 1) z (the true ratios rise towards z, so it
    is a lower bound), and its z-derivative factor."""
    step = ratio * z
    tail = last * step / (1 - step)
    return tail, n / z + ratio / (1 - step)


def _coefficients(P: FloatArray, Q: FloatArray, n_terms: int) -> tuple[FloatArray, ...]:
    """c_n = prod_{k<n} (P + k) / (P + Q + k) per level, and dc_n/dP, dc_n/dQ."""
    k = np.arange(n_terms - 1, dtype=np.float64)
    upper, lower = P[:, None] + k, (P + Q)[:, None] + k
    first = np.ones((len(P), 1))
    c = np.concatenate([first, np.cumprod(upper / lower, axis=1)], axis=1)
    dc_p = c * np.concatenate([0 * first, np.cumsum(1 / upper - 1 / lower, axis=1)], axis=1)
    dc_q = c * np.concatenate([0 * first, np.cumsum(-1 / lower, axis=1)], axis=1)
    return c, dc_p, dc_q


def _terms_needed(c: FloatArray, level: np.ndarray, z: FloatArray) -> np.ndarray:
    """Terms each pair's series needs: the fewest of _TERM_CLASSES after which the rest,
    its derivatives' too, is below 1e-17 of S >= 1, else all of ``c``'s columns.

    Terms shrink at ratio z (P + n) / (P + Q + n) < z, so the rest past term N is at most
    c_N z^N / (1 - z), and the z-derivative's at most (N + 1) c_N z^N / (1 - z)^2.
    c_N falls like N^-Q: with many repeat purchases (Q = r + x) or a large s (Q = s + 1)
    a few dozen terms do where the bound z^N alone asked for hundreds. Decided in the
    C library's log (churn.portable_math), so the counts are the same on every CPU.
    """
    n_max = c.shape[1]
    needed = np.full(len(z), n_max)
    log_z, log_1mz = log(z), log1p(-z)
    for n in reversed([n for n in _TERM_CLASSES if n < n_max]):
        with np.errstate(divide="ignore"):
            bound = log(c[level, n]) + n * log_z + log(n + 1.0) - 2 * log_1mz
        needed = np.where(bound < _LOG_EPS, n, needed)
    return needed


def _series(
    P: FloatArray, Q: FloatArray, level: np.ndarray, z: FloatArray
) -> tuple[FloatArray, ...]:
    """S = 2F1(1, P; P + Q; z) per pair (P, Q per level, z per pair) and dS/dP, dS/dQ,
    dS/dz. Products and running sums only: the same bits on every CPU. Pairs go in
    blocks by the terms they need (:func:`_terms_needed`)."""
    out = np.zeros((4, len(z)))
    if not len(z):
        return tuple(out)
    coefficients = _coefficients(P, Q, _n_terms(float(np.max(z))))
    needed = _terms_needed(coefficients[0], level, z)
    order = np.argsort(needed, kind="stable")
    for lo in range(0, len(z), _BLOCK):
        block = order[lo : lo + _BLOCK]
        n_terms = int(needed[block[-1]])
        c, dc_p, dc_q = (part[level[block], :n_terms] for part in coefficients)
        steps = np.repeat(z[block, None], n_terms - 1, axis=1)
        powers = np.concatenate([np.ones((len(block), 1)), np.cumprod(steps, axis=1)], axis=1)
        n = np.arange(1, n_terms, dtype=np.float64)
        d_powers = np.concatenate([np.zeros((len(block), 1)), powers[:, :-1] * n], axis=1)
        for row, (a, b) in enumerate(((c, powers), (dc_p, powers), (dc_q, powers), (c, d_powers))):
            out[row, block] = np.einsum("pn,pn->p", a, b, optimize=False)
        if n_terms == _MAX_TERMS:
            zb, pb, qb = z[block], P[level[block]], Q[level[block]]
            last = c[:, -1] * powers[:, -1]
            ratio = (pb + n_terms - 1) / (pb + qb + n_terms - 1)
            tail, per_z = _remainder(last, ratio, zb, n_terms)
            out[0, block] += tail
            out[1, block] += tail * dc_p[:, -1] / c[:, -1]
            out[2, block] += tail * dc_q[:, -1] / c[:, -1]
            out[3, block] += tail * per_z
    return tuple(out)


def _tail(P: FloatArray, Q: FloatArray, big: float, small: float, d: _Pairs) -> _Tail:
    """log of int_u^inf (big + v)^-P (small + v)^-Q dv per pair, big >= small, with derivatives.

    = S / (K (big + u)^K) (1 - z)^(1 - Q), K = P + Q - 1, z = (big - small) / (big + u),
    S = 2F1(1, P; P + Q; z) = sum_n c_n z^n with c_n = prod_{k<n} (P + k) / (P + Q + k) < 1:
    positive terms shrinking at least like z^n, so no cancellation and no overflow.
    P and Q are given per x level.
    """
    u = d.pair_t
    base = big + u
    z = (big - small) / base
    series, ds_p, ds_q, ds_z = _series(P, Q, d.pair_level, z)
    Pp, Qp = P[d.pair_level], Q[d.pair_level]
    K = Pp + Qp - 1
    log_base, log_1mz = log(base), log1p(-z)
    via_z = -(1 - Qp) / (1 - z) + ds_z / series
    return _Tail(
        log_g=-K * log_base - log(K) + (1 - Qp) * log_1mz + log(series),
        d_p=-log_base - 1 / K + ds_p / series,
        d_q=-log_base - 1 / K - log_1mz + ds_q / series,
        d_big=-K / base + via_z * (small + u) / (base * base),
        d_small=-via_z / base,
    )


def _dropout_tail(params: FloatArray, d: _Pairs) -> tuple[FloatArray, ...]:
    """log int_t^inf (alpha + v)^-(r + x) (beta + v)^-(s + 1) dv per pair and its
    derivatives in (r, alpha, s, beta), whichever of alpha and beta is larger."""
    r, alpha, s, beta = params
    rate, life = r + d.x_levels, np.full_like(d.x_levels, s + 1)
    if alpha >= beta:
        g = _tail(rate, life, alpha, beta, d)
        return g.log_g, g.d_p, g.d_big, g.d_q, g.d_small
    g = _tail(life, rate, beta, alpha, d)
    return g.log_g, g.d_q, g.d_small, g.d_p, g.d_big


def _pnbd_loglik(params: FloatArray, d: _Pairs) -> tuple[float, FloatArray]:
    """Total weighted Pareto/NBD log-likelihood (note 009, eq. 18 ff.) and its gradient
    with respect to log(r, alpha, s, beta)."""
    r, alpha, s, beta = params
    u = d.x_levels
    per_x = [
        gammaln(r + u) - gammaln(r) + r * log(alpha) + s * log(beta),
        digamma(r + u) - digamma(r) + log(alpha),
        np.full_like(u, r / alpha),
        np.full_like(u, log(beta)),
        np.full_like(u, s / beta),
    ]
    log_g, *grids = _dropout_tail(params, d)
    at_tx, at_age = d.at_tx, d.at_age
    high = log_g[at_tx]
    ratio = exp(log_g[at_age] - high)  # G(T) / G(t_x) <= 1; exactly 1 where t_x == T
    has_gap = ratio < 1
    spread = np.where(has_gap, 1 - ratio, 1.0)
    dropped = np.where(has_gap, log(s) + high + log(spread), -np.inf)
    alive = -(r + d.x) * log(alpha + d.T) - s * log(beta + d.T)
    row_ll = logaddexp(alive, dropped)
    share = exp(dropped - row_ll)  # posterior probability of "left between t_x and T"
    stay = 1 - share
    gaps = [np.where(has_gap, (g[at_tx] - ratio * g[at_age]) / spread, 0.0) for g in grids]
    per_row = [
        row_ll,
        stay * -log(alpha + d.T) + share * gaps[0],
        stay * -(r + d.x) / (alpha + d.T) + share * gaps[1],
        stay * -log(beta + d.T) + share * (1 / s + gaps[2]),
        stay * -s / (beta + d.T) + share * gaps[3],
    ]
    total = _weighted_sums(per_x, d.x_weight) + _weighted_sums(per_row, d.weight)
    return float(total[0]), total[1:] * params


def _to_spread(theta: FloatArray) -> FloatArray:
    """log(r, alpha, s, beta) -> (log r, log alpha/r, log s, log beta/s): shapes and mean
    inverse rates, the coordinates TNC searches in.

    The flat ridge where dropout rates barely vary (s and beta growing together, their
    ratio, the mean dropout rate, pinned) runs diagonally in log(s, beta): TNC zig-zagged
    along it. Here it is one axis (log s alone), and the optimum is found in about half the
    likelihood evaluations (tests/features/test_btyd_pnbd.py counts them). Elementwise: no BLAS.
    """
    return np.array([theta[0], theta[1] - theta[0], theta[2], theta[3] - theta[2]])


def _from_spread(phi: FloatArray) -> FloatArray:
    """The inverse of :func:`_to_spread`."""
    return np.array([phi[0], phi[1] + phi[0], phi[2], phi[3] + phi[2]])


def _in_spread(objective: Objective) -> Objective:
    """``objective`` of log-parameters as a function of :func:`_to_spread`'s coordinates."""

    def in_spread(phi: FloatArray) -> tuple[float, FloatArray]:
        value, g = objective(_from_spread(phi))
        return value, np.array([g[0] + g[1], g[1], g[2] + g[3], g[3]])

    return in_spread


@dataclass
class ParetoNBDModel:
    """Pareto/NBD: Poisson(lambda) purchases while alive, an Exponential(mu) lifetime;
    lambda ~ Gamma(r, alpha), mu ~ Gamma(s, beta) across customers.

    penalizer adds penalizer * sum(log(param)^2) (alpha and beta on the rescaled time
    axis) to the mean negative log-likelihood; 0 is plain maximum likelihood.
    """

    penalizer: float = 0.0

    def fit(
        self,
        x: ArrayLike,
        t_x: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
        start: Sequence[float] | None = None,
    ) -> ParetoNBDModel:
        """Maximum likelihood; ``start`` = (r, alpha, s, beta) is tried first (a warm start)."""
        xs, txs, Ts = _array("x", x), _array("t_x", t_x), _array("T", T)
        if not len(xs) == len(txs) == len(Ts):
            raise ValueError("x, t_x and T must have the same length")
        _check_history(xs, txs, Ts)
        w = _weights(weights, len(xs))
        mean_T = float(np.sum(w * Ts)) / float(w.sum())
        scale = mean_T if mean_T > 0 else 1.0
        d = _pairs(xs, txs / scale, Ts / scale, w)
        starts = [(0.5, 0.5, 0.5, 0.5), (1.0, 0.2, 1.0, 2.0), (0.3, 0.05, 0.5, 0.1)]
        if start is not None:
            r0, a0, s0, b0 = start
            starts.insert(0, (r0, a0 / scale, s0, b0 / scale))
        objective = _in_spread(_objective(_pnbd_loglik, d, self.penalizer))
        spread_starts = [
            [float(v) for v in exp(_to_spread(log(np.asarray(x0, dtype=np.float64))))]
            for x0 in starts
        ]
        phi = _maximise(objective, spread_starts, "Pareto/NBD", _OPTIMISER, newton=False)
        r, alpha, s, beta = exp(_from_spread(phi))
        self.r_, self.s_ = float(r), float(s)
        self.alpha_, self.beta_ = float(alpha * scale), float(beta * scale)
        with np.errstate(all="ignore"):
            self.log_likelihood_ = _pnbd_loglik(self._params(), _pairs(xs, txs, Ts, w))[0]
        return self

    def _params(self) -> FloatArray:
        if not hasattr(self, "r_"):
            raise ValueError("ParetoNBDModel is not fitted yet; call fit first")
        return np.array([self.r_, self.alpha_, self.s_, self.beta_])

    def p_alive(self, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:
        """P(still alive at T | history) (note 009, eq. 19)."""
        r, alpha, s, beta = self._params()
        xs, txs, Ts = np.broadcast_arrays(_array("x", x), _array("t_x", t_x), _array("T", T))
        _check_history(xs, txs, Ts)
        with np.errstate(all="ignore"):
            tail = _log_difference(self._log_dropout_tail(xs, txs), self._log_dropout_tail(xs, Ts))
            alive = -(r + xs) * log(alpha + Ts) - s * log(beta + Ts)
            dropped = log(s) + tail
            return np.asarray(exp(alive - logaddexp(alive, dropped)), dtype=np.float64)

    def p_no_purchase(
        self,
        t: ArrayLike,
        x: ArrayLike,
        t_x: ArrayLike,
        T: ArrayLike,
        alive: FloatArray | None = None,
    ) -> FloatArray:
        """P(no purchase in (T, T + t] | history): the model's probability of our churn label.

        Alive at T, lambda ~ Gamma(r + x, alpha + T) and mu ~ Gamma(s, beta + T); the next
        purchase comes before dropout and within t with probability
        E[lambda int_0^t e^-(lambda + mu) v dv], one more tail integral. ``alive`` is
        :meth:`p_alive` of the same histories when the caller has it already (it was half
        the cost, evaluated twice).
        """
        r, alpha, s, beta = self._params()
        ts, xs, txs, Ts = np.broadcast_arrays(
            _array("t", t), _array("x", x), _array("t_x", t_x), _array("T", T)
        )
        if np.any(ts < 0):
            raise ValueError("t must be non-negative")
        alive = self.p_alive(xs, txs, Ts) if alive is None else alive
        # P(buys | alive) depends on (t, x, T) alone: once per distinct triple.
        first, which = first_of_each((ts, xs, Ts))
        t1, x1, T1 = ts[first], xs[first], Ts[first]
        with np.errstate(all="ignore"):
            a, b = alpha + T1, beta + T1
            scale = log(r + x1) + (r + x1) * log(a) + s * log(b)
            buys = exp(
                scale
                + _log_difference(
                    log_tail(a, b, r + x1 + 1, np.full_like(T1, s), np.zeros_like(T1)),
                    log_tail(a, b, r + x1 + 1, np.full_like(T1, s), t1),
                )
            )
            return np.asarray(1 - alive * np.where(ts > 0, buys[which], 0.0), dtype=np.float64)

    def _log_dropout_tail(self, xs: FloatArray, ts: FloatArray) -> FloatArray:
        """log int_t^inf (alpha + v)^-(r + x) (beta + v)^-(s + 1) dv per row, its 2F1 once
        per distinct (x, t): day-level histories share a few (x, t_x) and (x, T) pairs
        between many customers (45 k pairs for 465 k distinct histories at 10 M)."""
        r, alpha, s, beta = self._params()
        first, which = first_of_each((xs, ts))
        x1, t1 = xs[first], ts[first]
        a, b = np.full_like(t1, alpha), np.full_like(t1, beta)
        return log_tail(a, b, r + x1, np.full_like(t1, s + 1), t1)[which]
