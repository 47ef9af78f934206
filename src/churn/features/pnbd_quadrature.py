"""``log int_lo^hi (A + v)^-P (B + v)^-Q dv`` and its derivatives, by Gauss-Legendre quadrature.

Pareto/NBD's likelihood needs this finite integral once per customer history: the
density of dropping out between the last purchase (lo = t_x) and the cutoff (hi = T),
mixed over the gamma-distributed rates. It used to be the difference of two infinite
tails, each a Gauss hypergeometric series; on real logs alpha and beta are a hundred
times apart, the series' argument is near 1, and a third of the histories needed the
400-term maximum plus an approximate geometric tail: 8 ms a likelihood evaluation.

Here the finite integral is taken directly, in w = log(small + v) (small = min(A, B),
big = max(A, B), D = big - small). There the log-integrand
h(w) = -(P_s - 1) w - Q_b log(D + e^w) is concave with a slope between -(P_s - 1) and
-(P_s + Q_b - 1): an exponential-like decay, smooth on the real axis, whose nearest
singularities are pi away from it (e^w = -D). So:
- the interval is cut where the integrand has fallen e^-45 below its value at lo
  (concavity bounds what is left past that point by the same factor);
- it is split into panels at most ``_WIDTH`` wide over which the integrand falls by at
  most e^``_FALL``; a 16-point rule is exact to rounding on each (checked against a
  long-double reference in tests/features/test_pnbd_quadrature.py); most histories
  need one panel, heavy buyers two or three;
- the derivatives in P, Q, A and B are integrals of the same integrand times
  -log(small + v), -log(big + v), -P/(A + v), -Q/(B + v): the same nodes, no further
  special functions. No cancellation anywhere (every term is positive), and no
  difference of two tails that are nearly equal when t_x is close to T.
Elementwise NumPy, einsum sums (no BLAS) and churn.portable_math's exp/log: the same
bits on every CPU (btyd.py's module docstring says why that matters).
"""

# A, B, P, Q keep the names of the integral's formula.
# ruff: noqa: N803, N806

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

from churn.portable_math import exp, log, log1p

FloatArray = NDArray[np.float64]

# The 16-point Gauss-Legendre rule on [-1, 1], positive half (Abramowitz & Stegun 25.4):
# literals, not np.polynomial.legendre.leggauss, which solves an eigenproblem in LAPACK.
_NODES = (
    0.09501250983763744,
    0.2816035507792589,
    0.45801677765722737,
    0.6178762444026438,
    0.755404408355003,
    0.8656312023878318,
    0.9445750230732326,
    0.9894009349916499,
)
_WEIGHTS = (
    0.18945061045506864,
    0.18260341504492364,
    0.16915651939500265,
    0.1495959888165767,
    0.12462897125553407,
    0.0951585116824926,
    0.062253523938647456,
    0.027152459411754176,
)
_CUT = 45.0  # stop where the integrand is e^-45 (3e-20) of its value at lo
_WIDTH = 3.0  # panel width in w at most: the singularities stay pi / 1.5 half-widths away
_FALL = 20.0  # log-integrand change across a panel at most
_MAX_PANELS = 64  # bounds the work at absurd parameters (at the optimiser's bounds)
_CHUNK = 16_384  # nodes per batch: its temporaries stay in the CPU's cache


@dataclass(frozen=True)
class LogIntegral:
    """log I per row and d log I / d P, Q, A, B."""

    value: FloatArray
    d_p: FloatArray
    d_q: FloatArray
    d_a: FloatArray
    d_b: FloatArray


@lru_cache(maxsize=_MAX_PANELS)
def _rule(panels: int) -> tuple[FloatArray, FloatArray]:
    """Nodes (as fractions of [0, 1]) and weights (summing to 1) of the 16-point rule
    repeated on ``panels`` equal panels."""
    half = np.array([-v for v in reversed(_NODES)] + list(_NODES))
    weight = np.array(list(reversed(_WEIGHTS)) + list(_WEIGHTS))
    starts = np.arange(panels, dtype=np.float64)[:, None]
    nodes = (starts + (half + 1) / 2) / panels
    return nodes.ravel(), np.tile(weight / (2 * panels), panels)


def _panels(
    small: FloatArray,
    big: FloatArray,
    p_s: FloatArray,
    q_b: FloatArray,
    lo: FloatArray,
    hi: FloatArray,
) -> tuple[FloatArray, FloatArray, np.ndarray]:
    """(w at lo, the width in w up to where the integral is cut, panels per row)."""
    w_lo = log(small + lo)
    width = log1p((hi - lo) / (small + lo))  # not log(small + hi) - w_lo: no cancellation
    fall_lo = (p_s - 1) + q_b * (small + lo) / (big + lo)  # -h'(w_lo)
    cut = _CUT / np.where(fall_lo > 0, fall_lo, 1.0)
    span = np.where((fall_lo > 0) & (cut < width), cut, width)
    at_end = exp(w_lo + span)
    fall_end = (p_s - 1) + q_b * at_end / (big - small + at_end)
    steep = np.maximum(np.abs(fall_lo), np.abs(fall_end)) * span  # h' is monotone
    needed = np.ceil(np.maximum(span / _WIDTH, steep / _FALL))
    return w_lo, span, np.clip(needed, 1, _MAX_PANELS).astype(np.int64)


def log_integral(
    A: ArrayLike, B: ArrayLike, P: ArrayLike, Q: ArrayLike, lo: ArrayLike, hi: ArrayLike
) -> LogIntegral:
    """log of ``int_lo^hi (A + v)^-P (B + v)^-Q dv`` for A, B > 0, lo > -min(A, B), lo < hi,
    and its derivatives in P, Q, A and B (all broadcast to one shape, 1-D)."""
    A, B, P, Q, lo, hi = np.broadcast_arrays(
        *(np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (A, B, P, Q, lo, hi))
    )
    swap = A > B
    small, big = np.where(swap, B, A), np.where(swap, A, B)
    p_s, q_b = np.where(swap, Q, P), np.where(swap, P, Q)
    w_lo, span, panels = _panels(small, big, p_s, q_b, lo, hi)
    sums = np.zeros((6, len(A)))
    for count in np.unique(panels):
        chosen = np.flatnonzero(panels == count)
        step = max(1, _CHUNK // (16 * int(count)))
        for lo_row in range(0, len(chosen), step):
            rows = chosen[lo_row : lo_row + step]
            sums[:, rows] = _sums(
                big[rows] - small[rows], p_s[rows], q_b[rows], w_lo[rows], span[rows], int(count)
            )
    shift, total, at_small, at_big, per_small, per_big = sums
    value = shift + log(span) + log(total)
    d_ps, d_qb = -at_small / total, -at_big / total
    d_small, d_big = -p_s * per_small / total, -q_b * per_big / total
    return LogIntegral(
        value=value,
        d_p=np.where(swap, d_qb, d_ps),
        d_q=np.where(swap, d_ps, d_qb),
        d_a=np.where(swap, d_big, d_small),
        d_b=np.where(swap, d_small, d_big),
    )


def _sums(
    D: FloatArray, p_s: FloatArray, q_b: FloatArray, w_lo: FloatArray, span: FloatArray, panels: int
) -> FloatArray:
    """Per row: the log-integrand's largest value at the nodes (the shift), then the
    quadrature sums of e^(h - shift) (per unit of w) times 1, log(small + v),
    log(big + v), 1 / (small + v) and 1 / (big + v)."""
    nodes, weights = _rule(panels)
    w = w_lo[:, None] + span[:, None] * nodes  # log(small + v)
    at_small = exp(w)
    at_big = D[:, None] + at_small  # big + v
    log_big = log(at_big)
    h = -(p_s - 1)[:, None] * w - q_b[:, None] * log_big
    shift = np.max(h, axis=1)
    g = exp(h - shift[:, None]) * weights
    total = np.einsum("pn->p", g)
    return np.stack(
        [
            shift,
            total,
            np.einsum("pn,pn->p", g, w),
            np.einsum("pn,pn->p", g, log_big),
            np.einsum("pn,pn->p", g, 1 / at_small),
            np.einsum("pn,pn->p", g, 1 / at_big),
        ]
    )


def panel_counts(
    A: ArrayLike, B: ArrayLike, P: ArrayLike, Q: ArrayLike, lo: ArrayLike, hi: ArrayLike
) -> np.ndarray:
    """Panels :func:`log_integral` spends per row (for tests and benchmarks)."""
    A, B, P, Q, lo, hi = np.broadcast_arrays(
        *(np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (A, B, P, Q, lo, hi))
    )
    swap = A > B
    return _panels(
        np.where(swap, B, A),
        np.where(swap, A, B),
        np.where(swap, Q, P),
        np.where(swap, P, Q),
        lo,
        hi,
    )[2]
