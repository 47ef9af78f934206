"""exp, log, log1p, expm1 and logaddexp whose float64 results do not depend on the CPU.

NumPy ships its own SIMD versions of these for float64 and picks one when it is
imported, by what the CPU offers (AVX-512, AVX2 or none): on an AVX-512 server
``np.exp`` differs from an AVX2 laptop's in the last bit for about one input in
twenty. One bit is enough to move a BTYD fit (the optimiser's path depends on
every bit of the likelihood) by ~1e-7, and with it every feature, the model and
each DVC output after it, so `dvc repro` on another machine would not reproduce
the committed dvc.lock (DESIGN.md: exact reproduction).

scipy.special's loops are compiled once for every x86-64 CPU and call the C
library's ``exp`` and ``log`` (glibc picks one variant for every CPU with FMA,
i.e. since 2013). ``inv_boxcox(x, 0)`` is exactly ``exp(x)`` and ``xlogy(1, x)``
exactly ``log(x)`` there; ``log1p`` and ``expm1`` are scipy's own (Cephes),
arithmetic only. Division, multiplication, ``sqrt`` and the like are exact in
IEEE 754 and need none of this.
"""

from __future__ import annotations

from typing import cast

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

FloatArray = NDArray[np.float64]


def exp(x: ArrayLike) -> FloatArray:
    """e**x, as the C library computes it (Box-Cox inverse with lambda 0)."""
    return cast(FloatArray, special.inv_boxcox(np.asarray(x, dtype=np.float64), 0.0))


def log(x: ArrayLike) -> FloatArray:
    """Natural log, as the C library computes it (-inf at 0, NaN below)."""
    return cast(FloatArray, special.xlogy(1.0, np.asarray(x, dtype=np.float64)))


def log1p(x: ArrayLike) -> FloatArray:
    """log(1 + x), accurate near 0."""
    return cast(FloatArray, special.log1p(np.asarray(x, dtype=np.float64)))


def expm1(x: ArrayLike) -> FloatArray:
    """e**x - 1, accurate near 0."""
    return cast(FloatArray, special.expm1(np.asarray(x, dtype=np.float64)))


def logaddexp(a: ArrayLike, b: ArrayLike) -> FloatArray:
    """log(e**a + e**b) without overflow; -inf where both are -inf."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    high = np.maximum(a, b)
    with np.errstate(invalid="ignore"):  # inf - inf where both are infinite: fixed below
        out = high + log1p(exp(-np.abs(a - b)))
    return np.asarray(np.where(np.isinf(high), high, out), dtype=np.float64)
