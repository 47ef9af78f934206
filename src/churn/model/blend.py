"""A candidate's probability from the parts: one part as it is, or a stacked blend of them.

The parts are the booster's probability (``lightgbm``), the regularised logistic
model's (``logistic``) and every BTYD probability of churn among the snapshot
columns (any column named ``*_p_no_purchase``: BG/NBD's ``btyd_p_no_purchase``
and whatever model the features stage adds, without a list to update here). A
blend is a logistic regression on the parts' logits, its weights fitted on
out-of-time predictions (churn.model.crossfit), so it is a handful of numbers
in the model's JSON spec and loads without unpickling.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit

from churn.model.logistic import fit_logistic
from churn.portable_math import log

BOOSTER_PART = "lightgbm"
LINEAR_PART = "logistic"
BTYD_SUFFIX = "_p_no_purchase"
BLEND_NAME = "blend"
AVERAGE_NAME = "average"
# The parts the average takes in equal measure: the two learned from every feature (the
# BTYD probabilities are among those features already).
AVERAGE_PARTS = (BOOSTER_PART, LINEAR_PART)
# Inverse penalty of the stacker: mild, it only keeps correlated parts' weights finite.
_BLEND_C = 1.0
_EPS = 1e-6


def btyd_parts(columns: Iterable[str]) -> list[str]:
    """The snapshot columns that are a BTYD model's P(no purchase within the horizon)."""
    return sorted(c for c in columns if c.endswith(BTYD_SUFFIX))


def logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return log(q / (1 - q))


@dataclass(frozen=True)
class Blend:
    """P = sigmoid(intercept + sum of weight x logit(part)); ``passthrough``: one part as is."""

    weights: dict[str, float]
    intercept: float = 0.0
    passthrough: bool = False

    @classmethod
    def single(cls, part: str) -> Blend:
        return cls({part: 1.0}, 0.0, passthrough=True)

    @property
    def parts(self) -> list[str]:
        return list(self.weights)

    def combine(self, probabilities: Mapping[str, np.ndarray]) -> np.ndarray:
        if self.passthrough:
            return np.asarray(probabilities[self.parts[0]], dtype=float)
        z = np.full(len(next(iter(probabilities.values()))), self.intercept)
        for part, weight in self.weights.items():
            z = z + weight * logit(probabilities[part])
        return np.asarray(expit(z), dtype=float)

    def to_dict(self) -> dict[str, Any]:
        if self.passthrough:
            return {"part": self.parts[0]}
        return {"weights": dict(self.weights), "intercept": self.intercept}

    @classmethod
    def from_dict(cls, data: Any) -> Blend:
        """A blend from ``to_dict``'s output; anything else is a ValueError saying what."""
        if isinstance(data, dict) and isinstance(data.get("part"), str):
            return cls.single(data["part"])
        if not isinstance(data, dict) or not isinstance(data.get("weights"), dict):
            raise ValueError("a blend must name one part or map parts to weights")
        weights = {str(k): _finite(v) for k, v in data["weights"].items()}
        if not weights:
            raise ValueError("a blend needs at least one part")
        return cls(weights, _finite(data.get("intercept")))


def average_blend() -> Blend:
    """The booster's and the logistic part's logits in equal measure, nothing fitted.

    Stacking weights are fitted on one out-of-time cutoff, and with parts this close
    they follow that cutoff's noise: on held-out cutoffs of all eight data sets in
    ``benchmarks/quality.py`` the stacked blend's log loss was worse than the plain
    average's on seven and level on the eighth (the forecast-combination puzzle:
    estimated weights lose to equal ones when the parts are about as good). Its
    calibrator is fitted like every candidate's.
    """
    return Blend({part: 1.0 / len(AVERAGE_PARTS) for part in AVERAGE_PARTS}, 0.0)


def fit_blend(probabilities: Mapping[str, np.ndarray], y: np.ndarray) -> Blend:
    """Non-negative stacking weights for the parts, fitted on out-of-time predictions.

    Every part is a P(churn), so a negative weight only trades one correlated
    part against another on the rows it was fitted on (BG/NBD against
    Pareto/NBD, say), and such trades do not carry over to the next cutoff.
    Parts whose weight comes out non-positive are dropped and the rest refitted
    until every weight is positive (an active-set solution of the constrained
    fit); with no part left the blend is the best single part's logit.
    """
    parts = sorted(probabilities)
    target = np.asarray(y, dtype=float)
    while True:
        x = np.column_stack([logit(probabilities[p]) for p in parts])
        fit = fit_logistic(x, target, c=_BLEND_C)
        keep = [p for p, w in zip(parts, fit.coef, strict=True) if w > 0]
        if len(keep) == len(parts):
            return Blend({p: float(w) for p, w in zip(parts, fit.coef, strict=True)}, fit.intercept)
        if not keep:  # every part ranks backwards here: trust the one fitted least badly
            keep = [parts[int(np.argmax(fit.coef))]]
            return Blend({keep[0]: 1.0}, 0.0)
        parts = keep


def _finite(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("blend weights and intercept must be finite numbers")
    return float(value)
