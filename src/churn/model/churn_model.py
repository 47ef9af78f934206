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

from churn.features.segments import SEGMENTS

ID_COLUMNS = ("customer_id", "cutoff", "split")
LABEL = "churned"
# Text columns the model uses as LightGBM categoricals, with their fixed category order
# (fixed, so the integer codes mean the same at training and at scoring time).
CATEGORICAL_FEATURES: dict[str, tuple[str, ...]] = {"segment": SEGMENTS}


class Calibrator(Protocol):
    def predict(self, raw: np.ndarray) -> np.ndarray: ...


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """Every numeric snapshot column and every known categorical, except ids and the label."""
    return [
        c
        for c in frame.columns
        if c not in ID_COLUMNS
        and c != LABEL
        and (pd.api.types.is_numeric_dtype(frame[c]) or c in CATEGORICAL_FEATURES)
    ]


def model_matrix(frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """Features as float64, categoricals as their fixed integer codes (unknown -> NaN)."""
    out = pd.DataFrame(index=frame.index)
    for column in features:
        if column in CATEGORICAL_FEATURES:
            codes = pd.Categorical(
                frame[column].astype("string"), categories=CATEGORICAL_FEATURES[column]
            ).codes
            out[column] = np.where(codes < 0, np.nan, codes).astype("float64")
        else:
            out[column] = frame[column].astype("float64")
    return out


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
        return model_matrix(frame, self.features)

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
