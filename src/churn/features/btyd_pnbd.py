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
    _array,
    _check_history,
    _grouped,
    _maximise,
    _objective,
    _weighted_sums,
    _weights,
)
from churn.portable_math import exp, expm1, log, log1p, logaddexp



def log_tail(A: FloatArray, B: FloatArray, p: FloatArray, q: FloatArray, u: FloatArray) -> FloatArray:
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


_MAX_TERMS = 4000  # series terms at most: z^4000 < 1e-17 for z up to 0.99 (alpha/beta ~ 100)


@dataclass(frozen=True)
class _Pairs:
    """Distinct (x, t_x, T) rows with weights, indexed into the distinct x and time levels.

    The likelihood's tail integrals are computed on the (x level, time level) grid:
    a few hundred by a few thousand values at most on day-level histories.
    """

    x_levels: FloatArray
    x_weight: FloatArray
    t_levels: FloatArray
    x_of: np.ndarray  # row -> x level
    tx_of: np.ndarray  # row -> time level of t_x
    T_of: np.ndarray  # row -> time level of T
    x: FloatArray  # per row
    T: FloatArray
    weight: FloatArray


def _pairs(x: FloatArray, t_x: FloatArray, T: FloatArray, weight: FloatArray) -> _Pairs:
    h = _grouped(x, [t_x, T], weight, True)
    t_x, T = h.rest
    t_levels, t_index = np.unique(np.concatenate([t_x, T]), return_inverse=True)
    t_index = t_index.ravel()
    n = len(h.x)
    x_of = np.searchsorted(h.x_levels, h.x)
    return _Pairs(h.x_levels, h.x_weight, t_levels, x_of, t_index[:n], t_index[n:], h.x, T, h.weight)


@dataclass(frozen=True)
class _Tail:
    """log G on the (x level, time level) grid and its derivatives in P, Q, big and small."""

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
    return min(_MAX_TERMS, int(math.ceil(-39.2 / math.log(z_max))) + 2)


def _series(P: FloatArray, Q: FloatArray, z: FloatArray) -> tuple[FloatArray, ...]:
    """S = 2F1(1, P; P + Q; z) on the grid (P, Q per row, z per column) and dS/dP, dS/dQ,
    dS/dz. Products and running sums only: the same bits on every CPU."""
    n_terms = _n_terms(float(z.max()) if len(z) else 0.0)
    k = np.arange(n_terms - 1, dtype=np.float64)
    upper, lower = P[:, None] + k, (P + Q)[:, None] + k
    first = np.ones((len(P), 1))
    c = np.concatenate([first, np.cumprod(upper / lower, axis=1)], axis=1)
    dc_p = c * np.concatenate([0 * first, np.cumsum(1 / upper - 1 / lower, axis=1)], axis=1)
    dc_q = c * np.concatenate([0 * first, np.cumsum(-1 / lower, axis=1)], axis=1)
    steps = np.repeat(z[:, None], n_terms - 1, axis=1)
    powers = np.concatenate([np.ones((len(z), 1)), np.cumprod(steps, axis=1)], axis=1)
    n = np.arange(1, n_terms, dtype=np.float64)
    d_powers = np.concatenate([np.zeros((len(z), 1)), powers[:, :-1] * n], axis=1)
    return (
        _einsum("xn,tn->xt", c, powers),
        _einsum("xn,tn->xt", dc_p, powers),
        _einsum("xn,tn->xt", dc_q, powers),
        _einsum("xn,tn->xt", c, d_powers),
    )


def _tail_grid(P: FloatArray, Q: FloatArray, big: float, small: float, u: FloatArray) -> _Tail:
    """log of int_u^inf (big + v)^-P (small + v)^-Q dv for big >= small, with derivatives.

    = S / (K (big + u)^K) (1 - z)^(1 - Q), K = P + Q - 1, z = (big - small) / (big + u),
    S = 2F1(1, P; P + Q; z) = sum_n c_n z^n with c_n = prod_{k<n} (P + k) / (P + Q + k) < 1:
    positive terms shrinking at least like z^n, so no cancellation and no overflow.
    """
    base = big + u
    z = (big - small) / base
    series, ds_p, ds_q, ds_z = _series(P, Q, z)
    K = (P + Q - 1)[:, None]
    log_base, log_1mz = log(base)[None, :], log1p(-z)[None, :]
    via_z = -(1 - Q[:, None]) / (1 - z[None, :]) + ds_z / series
    return _Tail(
        log_g=-K * log_base - log(K) + (1 - Q[:, None]) * log_1mz + log(series),
        d_p=-log_base - 1 / K + ds_p / series,
        d_q=-log_base - 1 / K - log_1mz + ds_q / series,
        d_big=-K / base[None, :] + via_z * ((small + u) / (base * base))[None, :],
        d_small=via_z * (-1 / base)[None, :],
    )


def _einsum(spec: str, a: FloatArray, b: FloatArray) -> FloatArray:
    """numpy's own loops (optimize=False never hands the work to BLAS): one order everywhere."""
    return np.asarray(np.einsum(spec, a, b, optimize=False), dtype=np.float64)


def _dropout_tail(params: FloatArray, d: _Pairs) -> tuple[FloatArray, ...]:
    """The grid of log int_t^inf (alpha + v)^-(r + x) (beta + v)^-(s + 1) dv and its
    derivatives in (r, alpha, s, beta), whichever of alpha and beta is larger."""
    r, alpha, s, beta = params
    rate, life = r + d.x_levels, np.full_like(d.x_levels, s + 1)
    if alpha >= beta:
        g = _tail_grid(rate, life, alpha, beta, d.t_levels)
        return g.log_g, g.d_p, g.d_big, g.d_q, g.d_small
    g = _tail_grid(life, rate, beta, alpha, d.t_levels)
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
    at_tx, at_T = (d.x_of, d.tx_of), (d.x_of, d.T_of)
    high = log_g[at_tx]
    ratio = exp(log_g[at_T] - high)  # G(T) / G(t_x) <= 1; exactly 1 where t_x == T
    has_gap = ratio < 1
    spread = np.where(has_gap, 1 - ratio, 1.0)
    dropped = np.where(has_gap, log(s) + high + log(spread), -np.inf)
    alive = -(r + d.x) * log(alpha + d.T) - s * log(beta + d.T)
    row_ll = logaddexp(alive, dropped)
    share = exp(dropped - row_ll)  # posterior probability of "left between t_x and T"
    stay = 1 - share
    gaps = [np.where(has_gap, (g[at_tx] - ratio * g[at_T]) / spread, 0.0) for g in grids]
    per_row = [
        row_ll,
        stay * -log(alpha + d.T) + share * gaps[0],
        stay * -(r + d.x) / (alpha + d.T) + share * gaps[1],
        stay * -log(beta + d.T) + share * (1 / s + gaps[2]),
        stay * -s / (beta + d.T) + share * gaps[3],
    ]
    total = _weighted_sums(per_x, d.x_weight) + _weighted_sums(per_row, d.weight)
    return float(total[0]), total[1:] * params


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
        theta = _maximise(_objective(_pnbd_loglik, d, self.penalizer), starts, "Pareto/NBD")
        r, alpha, s, beta = exp(theta)
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
            a, b = np.full_like(Ts, alpha), np.full_like(Ts, beta)
            tail = _log_difference(
                log_tail(a, b, r + xs, s + 1, txs), log_tail(a, b, r + xs, s + 1, Ts)
            )
            alive = -(r + xs) * log(alpha + Ts) - s * log(beta + Ts)
            dropped = log(s) + tail
            return np.asarray(exp(alive - logaddexp(alive, dropped)), dtype=np.float64)

    def p_no_purchase(self, t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:
        """P(no purchase in (T, T + t] | history): the model's probability of our churn label.

        Alive at T, lambda ~ Gamma(r + x, alpha + T) and mu ~ Gamma(s, beta + T); the next
        purchase comes before dropout and within t with probability
        E[lambda int_0^t e^-(lambda + mu) v dv], one more tail integral.
        """
        r, alpha, s, beta = self._params()
        ts, xs, txs, Ts = np.broadcast_arrays(
            _array("t", t), _array("x", x), _array("t_x", t_x), _array("T", T)
        )
        if np.any(ts < 0):
            raise ValueError("t must be non-negative")
        alive = self.p_alive(xs, txs, Ts)
        with np.errstate(all="ignore"):
            a, b = alpha + Ts, beta + Ts
            scale = log(r + xs) + (r + xs) * log(a) + s * log(b)
            buys = exp(
                scale
                + _log_difference(
                    log_tail(a, b, r + xs + 1, np.full_like(Ts, s), np.zeros_like(Ts)),
                    log_tail(a, b, r + xs + 1, np.full_like(Ts, s), ts),
                )
            )
            return np.asarray(1 - alive * np.where(ts > 0, buys, 0.0), dtype=np.float64)
