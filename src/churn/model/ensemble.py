"""Every trained candidate in the served model: its parts, blends, calibrators and choice.

The model folder holds the booster (always: reasons are its TreeSHAP
contributions, whichever candidate is served), the logistic part as JSON, and
for each candidate a blend over the parts plus its own calibrator. One of them
is served; the rest ride along so `churn evaluate` judges every candidate on the
test cutoff from the very files that were saved, without retraining.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from churn.model.blend import BOOSTER_PART, LINEAR_PART, Blend
from churn.model.calibrate import ScoreCalibrator
from churn.model.linear_part import LinearPart
from churn.model.model_input import require_columns


@dataclass(frozen=True)
class Candidate:
    """A blend of parts, the calibrator chosen for it, and its validation metrics."""

    blend: Blend
    calibrator: ScoreCalibrator
    valid: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "blend": self.blend.to_dict(),
            "calibration": self.calibrator.to_dict(),
            "valid": dict(self.valid),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Candidate:
        if not isinstance(data, dict):
            raise ValueError("a candidate must be an object")
        valid = data.get("valid", {})
        if not isinstance(valid, dict):
            raise ValueError("a candidate's valid metrics must be an object")
        return cls(
            Blend.from_dict(data.get("blend")),
            ScoreCalibrator.from_dict(data.get("calibration")),
            {str(k): float(v) for k, v in valid.items() if isinstance(v, int | float)},
        )


@dataclass(frozen=True)
class Ensemble:
    """The candidates over the booster, the logistic part and BTYD columns; one is served."""

    candidates: dict[str, Candidate]
    served: str
    linear: LinearPart | None = None

    def __post_init__(self) -> None:
        if self.served not in self.candidates:
            raise ValueError(f"the served candidate {self.served!r} is not among the candidates")
        for name, candidate in self.candidates.items():
            if LINEAR_PART in candidate.blend.parts and self.linear is None:
                raise ValueError(f"candidate {name!r} needs the logistic part, which is missing")

    @property
    def columns(self) -> list[str]:
        """Snapshot columns the parts read, beyond the booster's features."""
        needed = {p for c in self.candidates.values() for p in c.blend.parts}
        extra = needed - {BOOSTER_PART, LINEAR_PART}
        linear = [] if self.linear is None else self.linear.features
        return sorted(extra | set(linear))

    def parts(
        self, frame: pd.DataFrame, booster: np.ndarray, only: Candidate | None = None
    ) -> dict[str, np.ndarray]:
        """Each part's P(churn) for ``frame``'s rows (``booster``: the booster's own); with
        ``only``, just the parts that candidate blends. Scoring needs the served candidate
        alone: a served booster skipped the logistic part's transform of every row, half
        of the nightly's scoring time (issue 20)."""
        chosen = self.candidates.values() if only is None else [only]
        needed = {p for c in chosen for p in c.blend.parts}
        require_columns(frame, needed - {BOOSTER_PART, LINEAR_PART})
        out = {BOOSTER_PART: np.asarray(booster, dtype=float)}
        if self.linear is not None and LINEAR_PART in needed:
            out[LINEAR_PART] = self.linear.probability(frame)
        for column in needed - {BOOSTER_PART, LINEAR_PART}:
            # A customer the BTYD fit could not score gets an uninformative 0.5, not a NaN.
            out[column] = frame[column].fillna(0.5).to_numpy(dtype="float64")
        return out

    def raw(self, frame: pd.DataFrame, booster: np.ndarray) -> np.ndarray:
        """The served candidate's probability before its calibrator."""
        served = self.candidates[self.served]
        return served.blend.combine(self.parts(frame, booster, only=served))

    def probabilities(self, frame: pd.DataFrame, booster: np.ndarray) -> dict[str, np.ndarray]:
        """Every candidate's calibrated P(churn), by name."""
        parts = self.parts(frame, booster)
        return {
            name: np.clip(c.calibrator.predict(c.blend.combine(parts)), 0.0, 1.0)
            for name, c in self.candidates.items()
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "served": self.served,
            "linear": None if self.linear is None else self.linear.to_dict(),
            "candidates": {name: c.to_dict() for name, c in self.candidates.items()},
        }

    @classmethod
    def from_dict(cls, data: Any) -> Ensemble:
        """An ensemble from ``to_dict``'s output; anything else is a ValueError saying what."""
        if not isinstance(data, dict) or not isinstance(data.get("candidates"), dict):
            raise ValueError("candidates must be an object mapping names to candidates")
        linear = data.get("linear")
        return cls(
            candidates={str(k): Candidate.from_dict(v) for k, v in data["candidates"].items()},
            served=str(data.get("served")),
            linear=None if linear is None else LinearPart.from_dict(linear),
        )
