"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987), fitted by maximum likelihood.

Where BG/NBD lets a customer drop out only right after a purchase, Pareto/NBD
lets them leave at any moment (an exponential lifetime, mu ~ Gamma(s, beta)),
while they buy at Poisson rate lambda ~ Gamma(r, alpha). That is the better
story for quiet one-time buyers, and on CDNOW it ranks churners better than
BG/NBD. It gives the classifier, and the `pnbd` baseline, P(alive) and
P(no purchase in the next t).

The likelihood needs, per history, the finite integral
``int_{t_x}^T (alpha + v)^-(r+x) (beta + v)^-(s+1) dv`` (dropping out between the
last purchase and the cutoff). It is taken directly by Gauss-Legendre quadrature
(churn.features.pnbd_quadrature), with its exact derivatives in all four parameters
at the same nodes; the 2F1 series it replaced needed up to 400 terms and an
approximate tail where alpha and beta are far apart, as they are on real logs.

The predictions need infinite tails ``G(u) = int_u^inf (A + v)^-p (B + v)^-q dv``, a
Gauss hypergeometric function (Fader & Hardie, note 009): scipy's hyp2f1 after
Euler's transformation (:func:`log_tail`), once per distinct (x, time) pair.

The fit is Newton's method (churn.features.newton) from the first start, normally
the previous cutoff's parameters a month earlier: two or three steps with a
finite-difference Hessian of the exact gradient. Where it does not converge inside
the bounds (a cold start far off, a flat ridge, an optimum at a bound), BG/NBD's
TNC from every start takes over. Both are deterministic like BG/NBD's (no BLAS,
the C library's exp/log: churn.features.btyd's module docstring).

References: Schmittlein, Morrison & Colombo (1987), Management Science 33(1);
Fader & Hardie (2005) "A note on deriving the Pareto/NBD model and related
expressions" (note 009); published CDNOW estimates r = 0.55, alpha = 10.58,
s = 0.61, beta = 11.67 (also lifetimes' and pymc-marketing's test values).
"""

# T (customer age) keeps the name every BTYD paper gives it.
# ruff: noqa: N803, N806

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import digamma, gammaln, hyp2f1

from churn.features.btyd import (
    _LOG_BOUND,
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
from churn.features.pnbd_quadrature import log_integral
from churn.portable_math import exp, expm1, log, log1p, logaddexp

# BG/NBD's TNC, stopped earlier, for the fits Newton's method does not finish: where
# dropout is (next to) constant or absent, the likelihood is flat along a ridge (s and
# beta together to 0 or infinity, 1e-7 apart in log-likelihood over a decade) and TNC at
# BG/NBD's tolerances crawled along it for its whole 2000-evaluation budget (minutes per
# cutoff); the predictions do not move there.
_OPTIMISER = {
    "method": "TNC",
    "options": {"maxfun": 400, "ftol": 1e-10, "xtol": 1e-9, "gtol": 1e-7},
}


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


def _log_tails(
    A: FloatArray, B: FloatArray, p: FloatArray, q: FloatArray, u: FloatArray, codes: np.ndarray
) -> FloatArray:
    """:func:`log_tail` per row, evaluated once per distinct code (rows with equal codes
    have equal arguments): the same bits, for a fraction of the hyp2f1 calls.

    Day-level histories repeat (x, time) pairs a great deal: at the 10 M benchmark's
    scoring cutoff, 465 k distinct histories had 55 k distinct (x, t_x) and (x, T).
    """
    first = np.zeros(int(codes.max()) + 1 if len(codes) else 0, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)  # each code's first row
    return log_tail(A[first], B[first], p[first], q[first], u[first])[codes]


def _repaired(
    log_value: FloatArray,
    A: FloatArray,
    B: FloatArray,
    p: FloatArray,
    q: FloatArray,
    lo: FloatArray,
    hi: FloatArray,
) -> FloatArray:
    """``log_value``, log int_lo^hi (A + v)^-p (B + v)^-q dv as a difference of two
    :func:`log_tail`, where it is finite; by quadrature (churn.features.pnbd_quadrature)
    where it is not although lo < hi: hyp2f1 gives NaN at extreme parameters (a
    degenerate fit that ended near its bounds), and the difference is -inf where the two
    tails agree to the last bit."""
    bad = np.flatnonzero(~np.isfinite(log_value) & (lo < hi))
    if not len(bad):
        return log_value
    fixed = log_value.copy()
    fixed[bad] = log_integral(A[bad], B[bad], p[bad], q[bad], lo[bad], hi[bad]).value
    return fixed


def _codes(x: FloatArray, time: FloatArray) -> np.ndarray:
    """Equal codes for equal (x, time) rows (a hash table: exact)."""
    return first_of_each((x, time))[1]


@dataclass(frozen=True)
class _Histories:
    """Distinct (x, t_x, T) rows with weights; the rows whose t_x < T (the only ones
    with a dropout integral); the distinct x with their summed weights."""

    x_levels: FloatArray
    x_weight: FloatArray
    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    weight: FloatArray
    gap: np.ndarray


def _histories(x: FloatArray, t_x: FloatArray, T: FloatArray, weight: FloatArray) -> _Histories:
    h = _grouped(x, [t_x, T], weight, True)
    t_x, T = h.rest
    return _Histories(h.x_levels, h.x_weight, h.x, t_x, T, h.weight, np.flatnonzero(t_x < T))


def _dropout_integral(params: FloatArray, d: _Histories) -> tuple[FloatArray, FloatArray]:
    """log int_{t_x}^T (alpha + v)^-(r + x) (beta + v)^-(s + 1) dv per row (-inf where
    t_x == T) and its derivatives in (r, alpha, s, beta) (rows: the four, then rows)."""
    r, alpha, s, beta = params
    gap = d.gap
    tail = log_integral(alpha, beta, r + d.x[gap], s + 1, d.t_x[gap], d.T[gap])
    log_i = np.full(len(d.x), -np.inf)
    log_i[gap] = tail.value
    grads = np.zeros((4, len(d.x)))
    grads[:, gap] = np.stack([tail.d_p, tail.d_a, tail.d_q, tail.d_b])
    return log_i, grads


def _pnbd_loglik(params: FloatArray, d: _Histories) -> tuple[float, FloatArray]:
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
    log_i, grads = _dropout_integral(params, d)
    dropped = log(s) + log_i  # left between t_x and T; -inf where t_x == T
    alive = -(r + d.x) * log(alpha + d.T) - s * log(beta + d.T)
    row_ll = logaddexp(alive, dropped)
    share = exp(dropped - row_ll)  # posterior probability of "left between t_x and T"
    stay = 1 - share
    per_row = [
        row_ll,
        stay * -log(alpha + d.T) + share * grads[0],
        stay * -(r + d.x) / (alpha + d.T) + share * grads[1],
        stay * -log(beta + d.T) + share * (1 / s + grads[2]),
        stay * -s / (beta + d.T) + share * grads[3],
    ]
    total = _weighted_sums(per_x, d.x_weight) + _weighted_sums(per_row, d.weight)
    return float(total[0]), total[1:] * params


def _to_spread(theta: FloatArray) -> FloatArray:
    """log(r, alpha, s, beta) -> (log r, log alpha/r, log s, log beta/s): shapes and mean
    inverse rates, the coordinates Newton's method and TNC search in.

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


def _inside(phi: FloatArray) -> bool:
    """Whether search coordinates map to log-parameters inside BG/NBD's bounds."""
    return bool(np.all(np.abs(_from_spread(phi)) < _LOG_BOUND))


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
        curvature: FloatArray | None = None,
    ) -> ParetoNBDModel:
        """Maximum likelihood by Newton's method from ``start`` = (r, alpha, s, beta) when
        given (a warm start: the previous cutoff's fit, with its ``curvature_`` when given),
        else from a default; by TNC from where Newton stopped and from every start when
        Newton cannot finish."""
        xs, txs, Ts = _array("x", x), _array("t_x", t_x), _array("T", T)
        if not len(xs) == len(txs) == len(Ts):
            raise ValueError("x, t_x and T must have the same length")
        _check_history(xs, txs, Ts)
        w = _weights(weights, len(xs))
        mean_T = float(np.sum(w * Ts)) / float(w.sum())
        scale = mean_T if mean_T > 0 else 1.0
        d = _histories(xs, txs / scale, Ts / scale, w)
        starts = [(0.5, 0.5, 0.5, 0.5), (1.0, 0.2, 1.0, 2.0), (0.3, 0.05, 0.5, 0.1)]
        warm_curvature = None if start is None else curvature
        if start is not None:
            r0, a0, s0, b0 = start
            starts.insert(0, (r0, a0 / scale, s0, b0 / scale))
        objective = _in_spread(_objective(_pnbd_loglik, d, self.penalizer))
        spread_starts = [
            [float(v) for v in exp(_to_spread(log(np.asarray(x0, dtype=np.float64))))]
            for x0 in starts
        ]
        phi, self.curvature_ = _maximise(
            objective, spread_starts, "Pareto/NBD", _OPTIMISER, _inside, warm_curvature
        )
        r, alpha, s, beta = exp(_from_spread(phi))
        self.r_, self.s_ = float(r), float(s)
        self.alpha_, self.beta_ = float(alpha * scale), float(beta * scale)
        with np.errstate(all="ignore"):
            self.log_likelihood_ = _pnbd_loglik(self._params(), _histories(xs, txs, Ts, w))[0]
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
        n = len(Ts)
        with np.errstate(all="ignore"):
            both = np.concatenate([txs, Ts])  # G(t_x) and G(T), per distinct (x, time)
            x2 = np.concatenate([xs, xs])
            a, b = np.full(2 * n, alpha), np.full(2 * n, beta)
            tails = _log_tails(a, b, r + x2, np.full(2 * n, s + 1), both, _codes(x2, both))
            tail = np.where(txs < Ts, _log_difference(tails[:n], tails[n:]), -np.inf)
            tail = _repaired(tail, a[:n], b[:n], r + xs, np.full(n, s + 1), txs, Ts)
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
        with np.errstate(all="ignore"):
            a, b = alpha + Ts, beta + Ts
            scale = log(r + xs) + (r + xs) * log(a) + s * log(b)
            p, q = r + xs + 1, np.full_like(Ts, s)
            per_age = _codes(xs, Ts)  # both tails depend on (x, T) and t only
            same_t = len(ts) == 0 or bool(np.all(ts == ts[0]))
            horizon = per_age if same_t else _codes(per_age.astype(np.float64), ts)
            within = _log_difference(
                _log_tails(a, b, p, q, np.zeros_like(Ts), per_age),
                _log_tails(a, b, p, q, ts, horizon),
            )
            buys = exp(scale + _repaired(within, a, b, p, q, np.zeros_like(Ts), ts))
            # A probability: where a flat likelihood ran the fit to extreme parameters
            # (r and alpha ~ 1e7 for identical customers) its terms lose a few digits and
            # could land a hair above 1.
            buys = np.minimum(buys, 1.0)
            return np.asarray(1 - alive * np.where(ts > 0, buys, 0.0), dtype=np.float64)
