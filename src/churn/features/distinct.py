"""Distinct rows of a few whole-number columns, by one integer sort.

BTYD predictions are computed once per distinct history (x, t_x, T) and the CLV sums
once per distinct (x, T): millions of customers share a few hundred thousand of them.
``np.unique(axis=0)`` finds them by a lexsort of row views, which at 2 M rows cost
seconds of the nightly feature step (issue 20). Histories are whole days, so each row
packs into one int64 whose order is the rows' lexicographic order, and a 1-D unique
does the same job ~10x faster. The distinct rows returned are input rows themselves,
so every value computed from them is bit for bit what it was.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_BITS = 21  # per column: whole numbers below 2**21 (days: 5,700 years)


def distinct_rows(
    columns: tuple[np.ndarray, ...], scales: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct rows of ``columns`` stacked, in lexicographic order; per input row the
    index of its distinct row), exactly as ``np.unique(stacked, axis=0, return_inverse=True)``.

    ``column * scale`` must be a whole number (weeks * 7 = days) for the fast path;
    otherwise the general one runs.
    """
    rows = np.column_stack(columns)
    key = _packed([column * scale for column, scale in zip(columns, scales, strict=True)])
    if key is None:
        distinct, index = np.unique(rows, axis=0, return_inverse=True)
        return distinct, index.ravel()
    first, index = _first_and_rank(key)
    return rows[first], index


def _first_and_rank(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(key, return_index=True, return_inverse=True)[1:]`` by a hash table:
    the stable argsort of every key was most of the cost; this sorts only the distinct
    ones. ``factorize`` numbers keys by first appearance, so the running maximum of
    the codes steps up exactly at each key's first row."""
    codes, uniques = pd.factorize(key)
    first = np.flatnonzero(np.diff(np.maximum.accumulate(codes), prepend=-1) > 0)
    order = np.argsort(uniques)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order], rank[codes]


def _packed(columns: list[np.ndarray]) -> np.ndarray | None:
    """The columns (whole non-negative numbers up to float noise) as one order-keeping
    int64 key; None when any value is not one."""
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        whole = np.rint(column)
        ok = np.isfinite(column) & (np.abs(column - whole) < 1e-6) & (whole >= 0)
        if not ok.all() or (len(whole) and whole.max() >= 2**_BITS):
            return None
        key = (key << _BITS) | whole.astype(np.int64)
    return key


def first_of_each(columns: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(the first row of each distinct combination of ``columns``, per row the number of
    its combination), for any float columns, in order of first appearance: a hash table
    where ``distinct_rows`` needs whole numbers (its order is lexicographic, this one's
    is the input's, which is just as deterministic).

    Each column is folded into the running code as the imaginary part of a complex
    number (exact: no arithmetic touches either part) and hashed by ``factorize``.
    """
    codes = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        codes, _ = pd.factorize(codes + 1j * np.asarray(column, dtype=np.float64))
    first = np.flatnonzero(np.diff(np.maximum.accumulate(codes), prepend=-1) > 0)
    return first, np.asarray(codes, dtype=np.int64)
