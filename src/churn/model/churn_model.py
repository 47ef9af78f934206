"""The churn model: booster, feature list, category lists and calibrator as one object.

Wrapping them together means scoring, the registry and evaluation all see the
same object and the same probabilities; a caller can never apply the booster
without its calibration or with columns in the wrong order. It is a plain
object, never pickled: churn.model.model_files stores it as LightGBM text and
JSON, and churn.model.pyfunc serves it through MLflow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lightgbm as lgb
import numpy as np
import pandas as pd

from churn.features.segments import SEGMENTS
from churn.model.calibrate import ScoreCalibrator
from churn.model.model_input import require_columns

if TYPE_CHECKING:
    from churn.model.ensemble import Ensemble

ID_COLUMNS = ("customer_id", "cutoff", "split")
LABEL = "churned"
# Text columns the model uses as LightGBM categoricals. The segment's categories are
# fixed; a country's are learned from the training rows (the most frequent ones) and
# stored in the model, so the integer codes mean the same at training and scoring time.
FIXED_CATEGORIES: dict[str, tuple[str, ...]] = {"segment": SEGMENTS}
LEARNED_CATEGORICALS = ("country",)
CATEGORICAL_FEATURES = (*FIXED_CATEGORIES, *LEARNED_CATEGORICALS)
# More categories than this and a rare country's split is noise; the rest scores as missing.
MAX_LEARNED_CATEGORIES = 30


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """Every numeric snapshot column and every known categorical, except ids and the label."""
    return [
        c
        for c in frame.columns
        if c not in ID_COLUMNS
        and c != LABEL
        and (pd.api.types.is_numeric_dtype(frame[c]) or c in CATEGORICAL_FEATURES)
    ]


def learn_categories(train: pd.DataFrame, features: list[str]) -> dict[str, tuple[str, ...]]:
    """Category lists for every categorical feature: fixed ones as given, learned ones by count.

    Ties in count are broken by name, so the same training rows always give the
    same codes.
    """
    categories = {c: v for c, v in FIXED_CATEGORIES.items() if c in features}
    for column in LEARNED_CATEGORICALS:
        if column in features:
            counts = train[column].dropna().astype("string").value_counts()
            ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            categories[column] = tuple(str(k) for k, _ in ranked[:MAX_LEARNED_CATEGORIES])
    return categories


def model_matrix(
    frame: pd.DataFrame,
    features: list[str],
    categories: dict[str, tuple[str, ...]] | None = None,
) -> pd.DataFrame:
    """Features as float64, categoricals as integer codes into ``categories`` (unknown -> NaN).

    ``categories`` defaults to the fixed ones; a categorical without a list is an error,
    not a silent guess, because its codes would differ from the ones the model learned.
    """
    known = FIXED_CATEGORIES if categories is None else categories
    # One column-major float64 block, filled column by column: LightGBM reads it as it is
    # (no copy into a row-major matrix), where a frame of separate columns was copied
    # whole before every prediction (2 M customers: about a GB, issue 20).
    values = np.empty((len(frame), len(features)), dtype="float64", order="F")
    for i, column in enumerate(features):
        if column in CATEGORICAL_FEATURES:
            if column not in known:
                raise ValueError(f"no category list for categorical feature {column!r}")
            codes = category_codes(frame[column], known[column])
            values[:, i] = np.where(codes < 0, np.nan, codes)
        else:
            values[:, i] = frame[column].astype("float64").to_numpy()
    return pd.DataFrame(values, index=frame.index, columns=list(features), copy=False)


def category_codes(values: pd.Series, categories: tuple[str, ...]) -> np.ndarray:
    """Each value's position in ``categories`` as text (-1: missing or not listed), as
    ``pd.Categorical(values.astype("string"), categories).codes`` gives them, but from
    the few distinct values: the text conversion of every row was most of the model
    matrix's time at 2 M customers (issue 20)."""
    codes, distinct = pd.factorize(values, use_na_sentinel=True)
    if not len(distinct):
        return np.full(len(values), -1, dtype="int64")
    as_text = pd.Index(distinct).astype("string").astype(object)
    positions = pd.Index(list(categories), dtype=object).get_indexer(as_text)
    return np.where(codes < 0, -1, positions[codes])


class ChurnModel:
    """Churn probability for snapshot rows; extra columns are ignored, missing ones fail loudly."""

    def __init__(
        self,
        booster: lgb.Booster,
        features: list[str],
        calibrator: ScoreCalibrator | None = None,
        categories: dict[str, tuple[str, ...]] | None = None,
        ensemble: Ensemble | None = None,
    ) -> None:
        self.booster = booster
        self.features = features
        self.calibrator = calibrator
        self.categories = dict(FIXED_CATEGORIES if categories is None else categories)
        # The trained candidates (churn.model.ensemble); None: the booster alone is served.
        self.ensemble = ensemble

    def matrix(self, frame: pd.DataFrame) -> pd.DataFrame:
        require_columns(frame, self.features)
        return model_matrix(frame, self.features, self.categories)

    def booster_probability(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.booster.predict(self.matrix(frame)), dtype="float64")

    def raw_probability(self, frame: pd.DataFrame) -> np.ndarray:
        """The served candidate's probability before calibration."""
        booster = self.booster_probability(frame)
        return booster if self.ensemble is None else self.ensemble.raw(frame, booster)

    def candidate_probabilities(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Every trained candidate's calibrated P(churn) by name ({} for a booster alone)."""
        if self.ensemble is None:
            return {}
        return self.ensemble.probabilities(frame, self.booster_probability(frame))

    def churn_probability(self, frame: pd.DataFrame) -> np.ndarray:
        raw = self.raw_probability(frame)
        if self.calibrator is None:
            return raw
        return np.clip(self.calibrator.predict(raw), 0.0, 1.0)

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The served output: one ``churn_probability`` column (what MLflow's pyfunc returns)."""
        return pd.DataFrame({"churn_probability": self.churn_probability(frame)})
