"""A tiny real churn model for the model-file, loader and serving tests.

Real LightGBM and a real calibrator on a few hundred synthetic rows with the
awkward parts of the real features: integer and float columns, missing values,
both categoricals (``segment`` and a learned ``country`` with a value the model
never saw). It trains in well under a second, so each test can build its own.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from churn.features.segments import SEGMENTS
from churn.model.calibrate import CalibrationMethod, ScoreCalibrator
from churn.model.churn_model import (
    CATEGORICAL_FEATURES,
    LABEL,
    ChurnModel,
    feature_columns,
    learn_categories,
    model_matrix,
)


def tiny_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    recency = rng.exponential(60.0, n)
    overdue = np.where(rng.random(n) < 0.2, np.nan, recency / rng.uniform(10, 90, n))
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "recency_days": recency,
            "n_orders": rng.integers(1, 30, n),
            "revenue": rng.gamma(2.0, 80.0, n),
            "overdue_ratio": overdue,
            "segment": pd.Series(rng.choice(SEGMENTS, n), dtype="string"),
            "country": pd.Series(rng.choice(["DE", "FR", "GB", "NL"], n), dtype="string"),
        }
    )
    logit = 0.03 * recency - 0.1 * frame["n_orders"] + np.nan_to_num(overdue) * 0.2 - 1.0
    frame[LABEL] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int64")
    return frame


def tiny_model(calibration: CalibrationMethod | None = "platt", seed: int = 0) -> ChurnModel:
    frame = tiny_frame(seed=seed)
    features = feature_columns(frame)
    categories = learn_categories(frame.iloc[:-50], features)  # "NL" may come out rare
    data = lgb.Dataset(
        model_matrix(frame, features, categories),
        label=frame[LABEL],
        categorical_feature=[c for c in features if c in CATEGORICAL_FEATURES],
    )
    params = {
        "objective": "binary",
        "num_leaves": 7,
        "verbosity": -1,
        "seed": seed,
        "num_threads": 1,
    }
    booster = lgb.train(params, data, num_boost_round=25)
    model = ChurnModel(booster, features, None, categories)
    if calibration is not None:
        calibrator = ScoreCalibrator(calibration)
        model.calibrator = calibrator.fit(model.raw_probability(frame), frame[LABEL].to_numpy())
    return model


def scoring_rows(n: int = 40) -> pd.DataFrame:
    """Rows to score: fresh draws plus a country the model never saw and missing values."""
    rows = tiny_frame(n=n, seed=99).drop(columns=[LABEL])
    rows.loc[0, "country"] = "ZZ"
    rows.loc[1, "segment"] = pd.NA
    rows.loc[2, "overdue_ratio"] = np.nan
    return rows
