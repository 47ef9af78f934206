"""Turn ranking scores into probabilities that mean what they say.

Boosted trees (and any class weighting) distort probabilities; a retention
budget multiplies them by customer value, so a 0.7 that is really 0.5 spends
money on the wrong people. The calibrator is fitted on the validation cutoff,
later than every training cutoff, and then applied unchanged at scoring time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

CalibrationMethod = Literal["isotonic", "platt", "none"]
_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return np.log(q / (1 - q))


@dataclass
class ScoreCalibrator:
    """Monotone map from a raw score to P(churn): isotonic steps or a Platt sigmoid.

    Platt works on the logit of the score, so a raw probability that is only
    mis-scaled is repaired with two parameters; isotonic is free-form and needs
    more validation rows but fixes any monotone distortion.
    """

    method: CalibrationMethod = "isotonic"

    def fit(self, score: np.ndarray, y: np.ndarray) -> ScoreCalibrator:
        score = np.asarray(score, dtype=float)
        y = np.asarray(y, dtype=int)
        if len(np.unique(y)) < 2:
            raise ValueError("calibration needs both classes in the validation rows")
        if self.method == "isotonic":
            self.model_: IsotonicRegression | LogisticRegression | None = IsotonicRegression(
                y_min=0.0, y_max=1.0, out_of_bounds="clip"
            ).fit(score, y)
        elif self.method == "platt":
            self.model_ = LogisticRegression(C=1e6).fit(_logit(score).reshape(-1, 1), y)
        else:
            self.model_ = None
        return self

    def predict(self, score: np.ndarray) -> np.ndarray:
        score = np.asarray(score, dtype=float)
        if isinstance(self.model_, IsotonicRegression):
            return np.asarray(self.model_.predict(score), dtype=float)
        if isinstance(self.model_, LogisticRegression):
            return np.asarray(self.model_.predict_proba(_logit(score).reshape(-1, 1))[:, 1])
        return score
