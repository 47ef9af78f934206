"""Distinct rows of a few columns, by one hash table.

BTYD predictions are computed once per distinct history (x, t_x, T) and the terms
that do not depend on t_x once per distinct (x, T): millions of customers share a
few hundred thousand of them. ``np.unique(axis=0)`` finds them by a lexsort of row
views, which at 2 M rows cost seconds of the nightly feature step (issue 20).
Histories are whole days, so each row packs into one int64, and ``factorize``
numbers the keys without sorting anything. The distinct rows returned are input rows
themselves, so every value computed from them is bit for bit the per-row one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_BITS = 21  # per column: whole numbers below 2**21 (days: 5,700 years)


def distinct_rows(
    columns: tuple[np.ndarray, ...], scales: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct rows of ``columns`` stacked, in order of first appearance; per input
    row the index of its distinct row).

    ``column * scale`` must be a whole number (weeks * 7 = days) for the fast path (one
    int64 key per row); otherwise :func:`first_of_each` hashes the floats themselves.
    Callers evaluate elementwise functions on the distinct rows, so their order does
    not matter: sorting them (as ``np.unique`` does) cost more than the hashing.
    """
    key = _packed([column * scale for column, scale in zip(columns, scales, strict=True)])
    if key is None:
        first, index = first_of_each(columns)
    else:
        index = _numbered(key)
        first = _first_rows(index)
    return np.column_stack([column[first] for column in columns]), index


def _first_rows(codes: np.ndarray) -> np.ndarray:
    """The first row of each code: ``factorize`` numbers keys by first appearance, so the
    running maximum of the codes steps up exactly at each key's first row."""
    return np.flatnonzero(np.diff(np.maximum.accumulate(codes), prepend=-1) > 0)


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
    its combination), for any columns, in order of first appearance.

    Each column is numbered by ``factorize`` (NaN is a value like any other), and the
    numbers are combined column by column into one integer key, numbered again: for two
    columns three hash passes over floats and small integers, 3x faster than one over
    complex keys.
    """
    codes = _numbered(columns[0])
    for column in columns[1:]:
        numbers = _numbered(column)
        codes = _numbered(codes * (int(numbers.max(initial=0)) + 1) + numbers)
    return _first_rows(codes), codes


def _numbered(column: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... by first appearance (NaN included, as one more value)."""
    return np.asarray(pd.factorize(column, use_na_sentinel=False)[0], dtype=np.int64)
