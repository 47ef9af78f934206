"""Turn ranking scores into probabilities that mean what they say.

Boosted trees (and any class weighting) distort probabilities; a retention
budget multiplies them by customer value, so a 0.7 that is really 0.5 spends
money on the wrong people. The calibrator is fitted on the validation cutoff,
later than every training cutoff, and then applied unchanged at scoring time.

A fitted calibrator is a handful of numbers (Platt's slope and intercept, or
the isotonic step thresholds), kept as plain floats and applied with numpy, so
it is stored as JSON in the model folder and the loaded calibrator runs the
very same code as the one just fitted: nothing is pickled, and scikit-learn is
needed to fit but not to serve. Platt is fitted by churn.model.logistic and its
logit and sigmoid use the C library's log and exp, so the same scores give the
same parameters and probabilities on every machine (no BLAS, no per-CPU SIMD).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

import numpy as np
from scipy.special import expit

from churn.portable_math import log

CalibrationMethod = Literal["isotonic", "platt", "none"]
METHODS: tuple[str, ...] = get_args(CalibrationMethod)
_EPS = 1e-6
_PLATT_C = 1e6  # next to no penalty: only keeps the slope finite on separable scores
# hold_level's search: a logit shift within +-20 (a probability of 1e-9 moved to 1 - 1e-9),
# found to 1e-12, far below what moves a mean probability.
_MAX_SHIFT = 20.0
_SHIFT_TOLERANCE = 1e-12


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return log(q / (1 - q))


@dataclass
class ScoreCalibrator:
    """Monotone map from a raw score to P(churn): isotonic steps or a Platt sigmoid.

    Platt works on the logit of the score, so a raw probability that is only
    mis-scaled is repaired with two parameters; isotonic is free-form and needs
    more validation rows but fixes any monotone distortion.
    """

    method: CalibrationMethod = "isotonic"
    # Platt: P = sigmoid(slope * logit(score) + intercept).
    slope: float | None = None
    intercept: float | None = None
    # Isotonic: linear interpolation between these points, clipped at both ends.
    x_thresholds: list[float] = field(default_factory=list)
    y_thresholds: list[float] = field(default_factory=list)

    def fit(self, score: np.ndarray, y: np.ndarray) -> ScoreCalibrator:
        # scikit-learn only fits; serving a model never imports it (nor the Newton solver).
        from sklearn.isotonic import IsotonicRegression

        from churn.model.logistic import fit_logistic

        score = np.asarray(score, dtype=float)
        y = np.asarray(y, dtype=int)
        if len(np.unique(y)) < 2:
            raise ValueError("calibration needs both classes in the validation rows")
        if self.method == "isotonic":
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(score, y)
            self.x_thresholds = [float(v) for v in iso.X_thresholds_]
            self.y_thresholds = [float(v) for v in iso.y_thresholds_]
        elif self.method == "platt":
            platt = fit_logistic(_logit(score).reshape(-1, 1), y, c=_PLATT_C)
            self.slope = float(platt.coef[0])
            self.intercept = platt.intercept
        return self

    def hold_level(self, score: np.ndarray) -> ScoreCalibrator:
        """Shift the fitted map (in logit space) so it keeps ``score``'s mean on these rows.

        Why: a candidate's calibrator is fitted on the last few held-out cutoffs, one
        season of one year, and a level learned there is that season's, not the
        test cutoff's. On ``loyal`` (base rate 0.50-0.70 with the season) Platt from
        spring cutoffs raised the mean prediction at an autumn test cutoff from 0.65
        to 0.72 (Brier 0.2107 to 0.2196); on a shop in decline (``declining``: churn
        rises year on year, and falls each autumn) from 0.73 to 0.81 at base rate
        0.71 (Brier 0.2004 to 0.2094, behind BG/NBD's 0.2064). The learned parts
        carry their own level, fitted by log loss over every training cutoff whose
        season their features describe, and a BTYD column's level is its model's
        P(no purchase): what the calibrator may still repair is the spread (scores
        too sure or too timid), which does carry from one season to the next.
        """
        if self.method == "none":
            return self
        # scipy.optimize only fits: serving a model never imports it.
        from scipy.optimize import brentq

        score = np.asarray(score, dtype=float)
        target = math.fsum(np.clip(score, 0.0, 1.0)) / len(score)

        def excess(shift: float) -> float:  # increasing in the shift
            return math.fsum(self._shifted(shift).predict(score)) / len(score) - target

        shifted = self._shifted(brentq(excess, -_MAX_SHIFT, _MAX_SHIFT, xtol=_SHIFT_TOLERANCE))
        self.intercept, self.y_thresholds = shifted.intercept, shifted.y_thresholds
        return self

    def _shifted(self, shift: float) -> ScoreCalibrator:
        """This map with ``shift`` added to its output's logit (Platt: the intercept;
        isotonic: every step's value, so it stays a monotone step map)."""
        if self.method == "platt":
            assert self.intercept is not None
            return dataclasses.replace(self, intercept=self.intercept + shift)
        steps = _logit(np.asarray(self.y_thresholds, dtype=float)) + shift
        return dataclasses.replace(self, y_thresholds=[float(v) for v in expit(steps)])

    @property
    def fitted(self) -> bool:
        if self.method == "isotonic":
            return len(self.x_thresholds) > 0
        if self.method == "platt":
            return self.slope is not None and self.intercept is not None
        return True

    def predict(self, score: np.ndarray) -> np.ndarray:
        score = np.asarray(score, dtype=float)
        if not self.fitted:
            raise ValueError(f"the {self.method} calibrator is not fitted")
        if self.method == "isotonic":
            # np.interp holds the end values outside the range: out_of_bounds="clip".
            return np.interp(score, self.x_thresholds, self.y_thresholds)
        if self.method == "platt":
            assert self.slope is not None and self.intercept is not None
            z = self.slope * _logit(score) + self.intercept
            return np.asarray(expit(z), dtype=float)
        return score

    def to_dict(self) -> dict[str, Any]:
        """The fitted parameters as JSON-ready plain values."""
        if not self.fitted:
            raise ValueError(f"the {self.method} calibrator is not fitted")
        if self.method == "isotonic":
            return {"method": "isotonic", "x": self.x_thresholds, "y": self.y_thresholds}
        if self.method == "platt":
            return {"method": "platt", "slope": self.slope, "intercept": self.intercept}
        return {"method": "none"}

    @classmethod
    def from_dict(cls, data: Any) -> ScoreCalibrator:
        """A calibrator from ``to_dict``'s output; anything else is a ValueError saying what."""
        if not isinstance(data, dict):
            raise ValueError("calibration must be an object")
        method = data.get("method")
        if method not in METHODS:
            raise ValueError(f"calibration method {method!r} is not one of {', '.join(METHODS)}")
        if method == "platt":
            slope = _finite(data.get("slope"), "slope")
            intercept = _finite(data.get("intercept"), "intercept")
            return cls("platt", slope=slope, intercept=intercept)
        if method == "isotonic":
            x, y = _floats(data.get("x"), "x"), _floats(data.get("y"), "y")
            if not x or len(x) != len(y):
                raise ValueError("isotonic thresholds x and y must be non-empty and equally long")
            if any(b < a for a, b in itertools.pairwise(x)):
                raise ValueError("isotonic thresholds x must be increasing")
            return cls("isotonic", x_thresholds=x, y_thresholds=y)
        return cls(cast(CalibrationMethod, method))


def _finite(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise ValueError(f"calibration {name} must be a finite number")
    return float(value)


def _floats(values: Any, name: str) -> list[float]:
    if not isinstance(values, list):
        raise ValueError(f"calibration {name} must be a list of numbers")
    return [_finite(v, name) for v in values]
