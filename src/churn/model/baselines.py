"""What a marketer or a statistician could do without us, scored on the same test cutoff.

A churn model earns its keep only if it beats these on ranking (AUC) and on
probability quality (Brier) at once. Rule-based scores are turned into
probabilities by the same validation-fitted calibration as the model, so the
Brier comparison is fair; BG/NBD already speaks in probabilities and is taken
as it is. The logistic baseline is fitted by churn.model.logistic (no BLAS), so
its metrics in metrics/eval.json are the same on every machine.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from churn.model.calibrate import ScoreCalibrator
from churn.model.churn_model import LEARNED_CATEGORICALS, feature_columns, model_matrix
from churn.model.logistic import fit_logistic
from churn.schema import LABEL, LABELLED_SPLITS, SPLIT, TEST_SPLIT, TRAIN_SPLIT, VALID_SPLIT

Baseline = Callable[[pd.DataFrame, pd.DataFrame, pd.DataFrame], np.ndarray]


def _calibrated_rule(score: Callable[[pd.DataFrame], np.ndarray]) -> Baseline:
    def run(train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
        calibrator = ScoreCalibrator("isotonic").fit(score(valid), valid[LABEL].to_numpy())
        return calibrator.predict(score(test))

    return run


def _bgnbd(train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    return test["btyd_p_no_purchase"].to_numpy(dtype=float)


def _logistic(train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    # A learned categorical (country) has no meaningful order for a linear model: left out.
    features = [c for c in feature_columns(train) if c not in LEARNED_CATEGORICALS]
    prepare = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    x_train = prepare.fit_transform(model_matrix(train, features))
    fit = fit_logistic(x_train, train[LABEL].to_numpy(), c=1.0)
    return fit.probability(prepare.transform(model_matrix(test, features)))


BASELINES: dict[str, Baseline] = {
    "recency": _calibrated_rule(lambda f: f["recency_days"].to_numpy(dtype=float)),
    "rfm_score": _calibrated_rule(lambda f: -f["rfm_score"].to_numpy(dtype=float)),
    "bgnbd": _bgnbd,
    "logistic": _logistic,
}


def baseline_probabilities(snapshots: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each baseline's P(churn) for the test rows, fitted on the train/valid rows only."""
    split = {name: snapshots[snapshots[SPLIT] == name] for name in LABELLED_SPLITS}
    return {
        name: baseline(split[TRAIN_SPLIT], split[VALID_SPLIT], split[TEST_SPLIT])
        for name, baseline in BASELINES.items()
    }
