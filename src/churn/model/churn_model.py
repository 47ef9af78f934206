"""The served model: booster, feature list and calibrator as one MLflow pyfunc.

Wrapping them together means scoring, the registry and evaluation all see the
same object and the same probabilities; a caller can never apply the booster
without its calibration or with columns in the wrong order.
"""

from __future__ import annotations

from typing import Any, Protocol

import lightgbm as lgb
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

ID_COLUMNS = ("customer_id", "cutoff", "split")
LABEL = "churned"
CATEGORICAL_FEATURES: tuple[str, ...] = ()


class Calibrator(Protocol):
    def predict(self, raw: np.ndarray) -> np.ndarray: ...


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """Every numeric snapshot column that is neither an identifier nor the label.

    Text columns such as the RFM segment name are for people; the model sees the
    scores they are derived from.
    """
    return [
        c
        for c in frame.columns
        if c not in ID_COLUMNS and c != LABEL and pd.api.types.is_numeric_dtype(frame[c])
    ]


class ChurnModel(PythonModel):
    """Churn probability for snapshot rows; extra columns are ignored, missing ones fail loudly."""

    def __init__(
        self, booster: lgb.Booster, features: list[str], calibrator: Calibrator | None = None
    ) -> None:
        self.booster = booster
        self.features = features
        self.calibrator = calibrator

    def matrix(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise ValueError(f"input lacks model features: {', '.join(missing)}")
        return frame[self.features].astype("float64")

    def raw_probability(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.booster.predict(self.matrix(frame)), dtype="float64")

    def churn_probability(self, frame: pd.DataFrame) -> np.ndarray:
        raw = self.raw_probability(frame)
        if self.calibrator is None:
            return raw
        return np.clip(self.calibrator.predict(raw), 0.0, 1.0)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return pd.DataFrame({"churn_probability": self.churn_probability(model_input)})
