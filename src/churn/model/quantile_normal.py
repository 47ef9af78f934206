"""The one feature transform of every logistic model: median-impute, quantile-normal, standardise.

Money and count features are heavy-tailed (a few customers with 1e6 revenue).
Standardised raw values put those customers, and with them the fitted slopes,
far out on the logit scale, so probabilities pile up at 0 and 1 (94 % of them on
one real log); a log scale tames money but leaves day counts and ratios as they
are. Mapping every column through its training quantiles to a standard normal
is bounded, rank-preserving and deterministic (no subsampling), and it is what
the logistic baseline uses; the logistic candidate uses this very function, so
the served family always holds a model at least as good as that baseline.

The arithmetic is scikit-learn's QuantileTransformer (``output_distribution=
"normal"``, the average of the forward and backward interpolation so that tied
values map to the middle of their run) followed by StandardScaler, written with
numpy's own loops and ``math.fsum`` so the fitted numbers are plain floats that
go into the model's JSON spec, serve without scikit-learn or unpickling, and are
the same on every machine.
"""

from __future__ import annotations

import itertools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtri

# Quantiles kept per column (fewer when there are fewer training rows).
N_QUANTILES = 1000
# Probabilities this close to 0 or 1 are held there before the normal quantile function.
_BOUND = 1e-7
_SPACING = float(np.spacing(1))
# Columns at least this long are checked for repeated values, on a sample of this size.
_DISTINCT_FROM_ROWS = 50_000
_DISTINCT_SAMPLE = 10_000
_MAX_THREADS = 4
# A value this close to a training quantile (relative, at least absolute) is that quantile.
_SNAP = 1e-9


@dataclass(frozen=True)
class QuantileNormal:
    """Per column: the median for missing values, the training quantiles, and the mean and
    standard deviation of the normal scores (the standardisation)."""

    medians: list[float]
    quantiles: list[list[float]]
    means: list[float]
    scales: list[float]

    @classmethod
    def fit(cls, x: np.ndarray) -> QuantileNormal:
        """Fitted on the columns of ``x`` (rows x columns, NaN for missing)."""
        x = np.asarray(x, dtype="float64")
        medians = [_median(x[:, i]) for i in range(x.shape[1])]
        filled = np.where(np.isnan(x), np.asarray(medians), x)
        references = _references(min(N_QUANTILES, max(len(x), 1)))
        quantiles = [
            np.maximum.accumulate(np.percentile(filled[:, i], references * 100)).tolist()
            for i in range(x.shape[1])
        ]
        scores = _normal_scores(filled, quantiles)
        means = [math.fsum(scores[:, i]) / len(scores) for i in range(x.shape[1])]
        scales = [_sd(scores[:, i], means[i]) for i in range(x.shape[1])]
        return cls(medians, quantiles, means, scales)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Standardised normal scores of the columns of ``x`` (same column order as fitted).

        Every step is a function of the cell's value alone, so a column with few distinct
        values (counts, scores, day numbers: most of them) is transformed once per distinct
        value and spread back, the same bits for a fraction of the work: the two
        interpolations per cell were most of the nightly's scoring time (issue 20). The
        result is one fresh matrix: at 2 M customers each temporary copy of the whole
        matrix is hundreds of MB at the nightly's memory peak.
        """
        x = np.asarray(x, dtype="float64")
        scores = np.empty(x.shape, dtype="float64")

        def column(i: int) -> None:
            col = x[:, i]
            if _few_distinct(col):
                codes, distinct = pd.factorize(col, use_na_sentinel=False)
                scores[:, i] = self._column(np.asarray(distinct, dtype="float64"), i)[codes]
            else:
                scores[:, i] = self._column(col, i)

        # The columns are independent and numpy's loops release the GIL: one per core.
        if len(x) < _DISTINCT_FROM_ROWS or x.shape[1] < 2:
            for i in range(x.shape[1]):
                column(i)
        else:
            with ThreadPoolExecutor(max_workers=min(_MAX_THREADS, os.cpu_count() or 1)) as pool:
                list(pool.map(column, range(x.shape[1])))
        return scores

    def _column(self, values: np.ndarray, i: int) -> np.ndarray:
        """Column ``i``'s standardised normal scores of ``values`` (NaN: the median)."""
        filled = np.where(np.isnan(values), self.medians[i], values)
        scores = _normal_scores(filled[:, None], [self.quantiles[i]], out=filled[:, None])[:, 0]
        scores -= self.means[i]
        scores /= self.scales[i]
        return scores

    def to_dict(self) -> dict[str, Any]:
        return {
            "medians": self.medians,
            "quantiles": self.quantiles,
            "means": self.means,
            "scales": self.scales,
        }

    @classmethod
    def from_dict(cls, data: Any, n_columns: int) -> QuantileNormal:
        """A transform from ``to_dict``'s output for ``n_columns`` columns; else a ValueError."""
        if not isinstance(data, dict):
            raise ValueError("the quantile-normal transform must be an object")
        vectors = {k: _floats(data.get(k), k) for k in ("medians", "means", "scales")}
        quantiles = data.get("quantiles")
        if not isinstance(quantiles, list):
            raise ValueError("the transform's quantiles must be a list of lists of numbers")
        columns = [_floats(q, "quantiles") for q in quantiles]
        if len(columns) != n_columns or any(len(v) != n_columns for v in vectors.values()):
            raise ValueError(
                "the transform needs one median, mean, scale, quantile list per column"
            )
        if any(not q or any(b < a for a, b in itertools.pairwise(q)) for q in columns):
            raise ValueError("the transform's quantiles must be non-empty and non-decreasing")
        if any(s <= 0 for s in vectors["scales"]):
            raise ValueError("the transform's scales must be positive")
        return cls(quantiles=columns, **vectors)


def _few_distinct(col: np.ndarray) -> bool:
    """Whether ``col`` looks like it repeats its values (judged on an even sample), so that
    transforming its distinct values and spreading them back is the cheaper way."""
    if len(col) < _DISTINCT_FROM_ROWS:
        return False
    sample = col[:: len(col) // _DISTINCT_SAMPLE]
    return len(pd.unique(sample)) < len(sample) // 2


def _references(n: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, n)


def _normal_scores(
    x: np.ndarray, quantiles: list[list[float]], out: np.ndarray | None = None
) -> np.ndarray:
    """Each column through its quantiles to a uniform, then to a bounded standard normal.
    ``out`` may be ``x`` itself: each column is read whole before it is overwritten."""
    out = np.empty_like(x) if out is None else out
    low, high = ndtri(_BOUND - _SPACING), ndtri(1 - (_BOUND - _SPACING))
    for i, q in enumerate(quantiles):
        grid = np.asarray(q, dtype="float64")
        refs = _references(len(grid))
        col = _on_knots(x[:, i], grid)
        lower, upper = col - _BOUND < grid[0], col + _BOUND > grid[-1]
        u = 0.5 * (np.interp(col, grid, refs) - np.interp(-col, -grid[::-1], -refs[::-1]))
        u[upper] = 1.0
        u[lower] = 0.0
        out[:, i] = np.clip(ndtri(u), low, high)
    return out


def _on_knots(col: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """``col`` with every value within ``_SNAP`` of a quantile moved onto it.

    A point mass (every customer with a trend of exactly 1, or no orders in a window)
    puts a run of equal quantiles in the grid, and the transform jumps there: the value
    itself maps to the middle of the run, a hair below to its bottom, a hair above to its
    top, a move of up to a whole standard deviation. Two engines that compute the same
    ratio in another order differ in the last bit (DuckDB 1.0, Spark 1.0000000000000002),
    so without this the same customer scored 0.002 apart on Spark and on DuckDB.
    """
    right = np.minimum(np.searchsorted(grid, col), len(grid) - 1)
    left = np.maximum(right - 1, 0)
    below, above = grid[left], grid[right]
    nearest = np.where(np.abs(col - below) <= np.abs(above - col), below, above)
    close = np.abs(col - nearest) <= _SNAP * np.maximum(1.0, np.abs(nearest))
    return np.where(close, nearest, col)


def _median(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else 0.0


def _sd(values: np.ndarray, mean: float) -> float:
    sd = math.sqrt(math.fsum((values - mean) ** 2) / len(values))
    return sd if sd > 0 else 1.0


def _float(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"the transform's {name} must be finite numbers")
    return float(value)


def _floats(values: Any, name: str) -> list[float]:
    if not isinstance(values, list):
        raise ValueError(f"the transform's {name} must be a list of numbers")
    return [_float(v, name) for v in values]
