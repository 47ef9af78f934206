"""The regularised logistic model, as plain numbers that serve without unpickling.

A logistic regression is a serious rival to the booster on small or simple logs,
so it is trained, judged and, when it wins, served like the booster; and it is
also the ``logistic`` baseline (churn.model.baselines), fitted by this very code
on the training cutoffs alone. The features are put through
churn.model.quantile_normal (median-impute, quantile-normal, standardise): on
raw money a handful of big spenders push most probabilities to 0 or 1. The
penalty ``c`` is chosen on the validation cutoff from a small grid, so a small
log gets a strong penalty. Everything fitted is a list of floats kept in the
model's JSON spec, and the fit is churn.model.logistic's (no BLAS), so the same
rows give the same part on every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from churn.model.churn_model import LABEL, LEARNED_CATEGORICALS, feature_columns, model_matrix
from churn.model.logistic import LogisticFit, fit_logistic
from churn.model.model_input import require_columns
from churn.model.quantile_normal import QuantileNormal
from churn.portable_math import log

# Inverse penalty strengths tried on the validation cutoff (scikit-learn's C, per row).
C_GRID = (0.001, 0.01, 0.1, 1.0)


def linear_features(frame: pd.DataFrame) -> list[str]:
    """The model's features but learned categoricals (a country's code has no order)."""
    return [c for c in feature_columns(frame) if c not in LEARNED_CATEGORICALS]


@dataclass(frozen=True)
class LinearPart:
    """P(churn) = sigmoid(coef . quantile_normal(features) + intercept)."""

    features: list[str]
    transform: QuantileNormal
    coef: list[float]
    intercept: float
    c: float

    def design(self, frame: pd.DataFrame) -> np.ndarray:
        """The transformed matrix the coefficients apply to."""
        require_columns(frame, self.features)
        return self.transform.transform(_matrix(frame, self.features))

    def probability(self, frame: pd.DataFrame) -> np.ndarray:
        fit = LogisticFit(coef=np.asarray(self.coef, dtype=float), intercept=self.intercept)
        return fit.probability(self.design(frame))

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": self.features,
            "transform": self.transform.to_dict(),
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
        if "transform" not in data:
            raise ValueError(
                "the logistic part was saved by an older churn (log-scaled features);"
                " retrain the model (churn train)"
            )
        coef = _floats(data.get("coef"), "coef")
        if len(coef) != len(features):
            raise ValueError("the logistic part needs one coef per feature")
        return cls(
            features=list(features),
            transform=QuantileNormal.from_dict(data["transform"], len(features)),
            coef=coef,
            intercept=_float(data.get("intercept"), "intercept"),
            c=_float(data.get("c"), "c"),
        )


def fit_linear_part(train: pd.DataFrame, c: float, weight: np.ndarray | None = None) -> LinearPart:
    """The part fitted on ``train`` (snapshot rows with the label) with penalty ``c``, each
    row's log loss scaled by ``weight`` (e.g. churn.model.recency's; None: equal weights)."""
    features = linear_features(train)
    transform = QuantileNormal.fit(_matrix(train, features))
    return _fit(train, features, transform, c, weight)


def choose_linear_part(
    train: pd.DataFrame, valid: pd.DataFrame, weight: np.ndarray | None = None
) -> LinearPart:
    """Fitted on ``train`` with the ``c`` of C_GRID that gives the best ``valid`` log loss
    (``weight`` as in ``fit_linear_part``; the baseline keeps equal weights)."""
    features = linear_features(train)
    transform = QuantileNormal.fit(_matrix(train, features))
    y = valid[LABEL].to_numpy(dtype=float)
    best: tuple[float, LinearPart] | None = None
    for c in C_GRID:
        part = _fit(train, features, transform, c, weight)
        p = np.clip(part.probability(valid), 1e-15, 1 - 1e-15)
        loss = -math.fsum(y * log(p) + (1 - y) * log(1 - p)) / len(y)
        if best is None or loss < best[0]:
            best = (loss, part)
    assert best is not None
    return best[1]


def _fit(
    train: pd.DataFrame,
    features: list[str],
    transform: QuantileNormal,
    c: float,
    weight: np.ndarray | None = None,
) -> LinearPart:
    x = transform.transform(_matrix(train, features))
    fit = fit_logistic(x, train[LABEL].to_numpy(dtype=float), c=c, weight=weight)
    coef = [float(v) for v in fit.coef]
    return LinearPart(features, transform, coef, fit.intercept, c)


def _matrix(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """Numeric columns as floats, a fixed categorical (segment) as its code, missing as NaN."""
    return model_matrix(frame, features).to_numpy(dtype="float64", na_value=np.nan)


def _float(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"the logistic part's {name} must be a finite number")
    return float(value)


def _floats(values: Any, name: str) -> list[float]:
    if not isinstance(values, list):
        raise ValueError(f"the logistic part's {name} must be a list of numbers")
    return [_float(v, name) for v in values]
