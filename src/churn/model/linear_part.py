"""The regularised logistic candidate, as plain numbers that serve without unpickling.

A logistic regression is a serious rival to the booster on small or simple logs,
so it is trained, judged and, when it wins, served like the booster. Heavy-tailed
columns (money, counts, days) are put on a log scale first (a signed ``log1p``),
then imputed with the training median, standardised and clipped: on raw money a
handful of big spenders push most probabilities to 0 or 1. The penalty ``c`` is
chosen on the validation cutoff from a small grid, so a small log gets a strong
penalty. Everything fitted is a list of floats kept in the model's JSON spec;
statistics are summed with ``math.fsum`` and the fit is churn.model.logistic's
(no BLAS), so the same rows give the same part on every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from churn.model.churn_model import CATEGORICAL_FEATURES, LABEL, feature_columns
from churn.model.logistic import LogisticFit, fit_logistic
from churn.portable_math import log, log1p

# Columns whose 99th percentile of |x| exceeds this are put on a log scale.
_LOG_ABOVE = 10.0
# Standardised values beyond this many standard deviations are clipped (outliers).
_CLIP = 8.0
# Inverse penalty strengths tried on the validation cutoff (scikit-learn's C).
C_GRID = (0.001, 0.01, 0.1, 1.0)


def linear_features(frame: pd.DataFrame) -> list[str]:
    """The model's numeric features: categoricals have no order a linear model could use."""
    return [c for c in feature_columns(frame) if c not in CATEGORICAL_FEATURES]


@dataclass(frozen=True)
class LinearPart:
    """P(churn) = sigmoid(coef . standardised(transformed features) + intercept)."""

    features: list[str]
    log_columns: list[str]
    medians: list[float]
    means: list[float]
    scales: list[float]
    coef: list[float]
    intercept: float
    c: float

    def design(self, frame: pd.DataFrame) -> np.ndarray:
        """The standardised matrix the coefficients apply to."""
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise ValueError(f"input lacks model features: {', '.join(missing)}")
        # In place on the one fresh matrix: the same values as the expression
        # np.clip((where(nan, medians, x) - means) / scales), without its four temporaries
        # of the whole matrix (2 GB at 2 M customers, the nightly's peak; issue 20).
        x = _transformed(frame, self.features, set(self.log_columns))
        np.copyto(
            x, np.broadcast_to(np.asarray(self.medians, dtype=float), x.shape), where=np.isnan(x)
        )
        x -= np.asarray(self.means, dtype=float)
        x /= np.asarray(self.scales, dtype=float)
        return np.clip(x, -_CLIP, _CLIP, out=x)

    def probability(self, frame: pd.DataFrame) -> np.ndarray:
        fit = LogisticFit(coef=np.asarray(self.coef, dtype=float), intercept=self.intercept)
        return fit.probability(self.design(frame))

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": self.features,
            "log_columns": self.log_columns,
            "medians": self.medians,
            "means": self.means,
            "scales": self.scales,
            "coef": self.coef,
            "intercept": self.intercept,
            "c": self.c,
        }

    @classmethod
    def from_dict(cls, data: Any) -> LinearPart:
        """A part from ``to_dict``'s output; anything else is a ValueError saying what."""
        if not isinstance(data, dict):
            raise ValueError("the logistic part must be an object")
        features = data.get("features")
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            raise ValueError("the logistic part's features must be a list of names")
        logs = data.get("log_columns")
        if not isinstance(logs, list) or not set(logs) <= set(features):
            raise ValueError("the logistic part's log_columns must be some of its features")
        vectors = {k: _floats(data.get(k), k) for k in ("medians", "means", "scales", "coef")}
        if any(len(v) != len(features) for v in vectors.values()):
            raise ValueError("the logistic part needs one median, mean, scale, coef per feature")
        if any(s <= 0 for s in vectors["scales"]):
            raise ValueError("the logistic part's scales must be positive")
        return cls(
            features=list(features),
            log_columns=list(logs),
            intercept=_float(data.get("intercept"), "intercept"),
            c=_float(data.get("c"), "c"),
            **vectors,
        )


def fit_linear_part(train: pd.DataFrame, c: float) -> LinearPart:
    """The part fitted on ``train`` (snapshot rows with the label) with penalty ``c``."""
    features = linear_features(train)
    raw = train[features].to_numpy(dtype="float64", na_value=np.nan)
    logs = [f for i, f in enumerate(features) if _heavy(raw[:, i])]
    x = _transformed(train, features, set(logs))
    medians = [_median(x[:, i]) for i in range(x.shape[1])]
    x = np.where(np.isnan(x), np.asarray(medians), x)
    means = [math.fsum(x[:, i]) / len(x) for i in range(x.shape[1])]
    scales = [_sd(x[:, i], means[i]) for i in range(x.shape[1])]
    z = np.clip((x - np.asarray(means)) / np.asarray(scales), -_CLIP, _CLIP)
    fit = fit_logistic(z, train[LABEL].to_numpy(dtype=float), c=c)
    return LinearPart(
        features=features,
        log_columns=logs,
        medians=medians,
        means=means,
        scales=scales,
        coef=[float(v) for v in fit.coef],
        intercept=fit.intercept,
        c=c,
    )


def choose_linear_part(train: pd.DataFrame, valid: pd.DataFrame) -> LinearPart:
    """Fitted on ``train`` with the ``c`` of C_GRID that gives the best ``valid`` log loss."""
    y = valid[LABEL].to_numpy(dtype=float)
    best: tuple[float, LinearPart] | None = None
    for c in C_GRID:
        part = fit_linear_part(train, c)
        p = np.clip(part.probability(valid), 1e-6, 1 - 1e-6)
        loss = -math.fsum(y * log(p) + (1 - y) * log(1 - p)) / len(y)
        if best is None or loss < best[0]:
            best = (loss, part)
    assert best is not None
    return best[1]


def _transformed(frame: pd.DataFrame, features: list[str], logs: set[str]) -> np.ndarray:
    x = frame[features].to_numpy(dtype="float64", na_value=np.nan, copy=True)
    for i, name in enumerate(features):
        if name in logs:
            x[:, i] = np.sign(x[:, i]) * log1p(np.abs(x[:, i]))
    return x


def _heavy(values: np.ndarray) -> bool:
    finite = np.abs(values[np.isfinite(values)])
    return finite.size > 0 and float(np.percentile(finite, 99)) > _LOG_ABOVE


def _median(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else 0.0


def _sd(values: np.ndarray, mean: float) -> float:
    sd = math.sqrt(math.fsum((values - mean) ** 2) / len(values))
    return sd if sd > 0 else 1.0


def _float(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"the logistic part's {name} must be a finite number")
    return float(value)


def _floats(values: Any, name: str) -> list[float]:
    if not isinstance(values, list):
        raise ValueError(f"the logistic part's {name} must be a list of numbers")
    return [_float(v, name) for v in values]
