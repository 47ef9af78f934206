"""What a marketer or a statistician could do without us, scored on the same test cutoff.

A churn model earns its keep only if it beats these on ranking (AUC) and on
probability quality (Brier) at once. Rule-based scores are turned into
probabilities by the same validation-fitted calibration as the model, so the
Brier comparison is fair; BG/NBD and Pareto/NBD already speak in probabilities
and are taken as they are. The logistic baseline is fitted by
churn.model.logistic (no BLAS), so its metrics in metrics/eval.json are the same
on every machine.

The logistic baseline has to be an honest one: money and count features are
heavy-tailed (a few customers with 1e6 revenue), and standardised raw values put
those customers, and with them the fitted slopes, far out on the logit scale, so
probabilities piled up at 0 and 1 (94 % of them on one real log). Every feature
is therefore mapped through its training quantiles to a standard normal (bounded,
rank-preserving, deterministic: no subsampling), and the L2 strength is chosen
on the validation cutoff's log loss.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import QuantileTransformer, StandardScaler

from churn.model.calibrate import ScoreCalibrator
from churn.model.churn_model import LEARNED_CATEGORICALS, feature_columns, model_matrix
from churn.model.logistic import LogisticFit, fit_logistic
from churn.portable_math import log
from churn.schema import LABEL, LABELLED_SPLITS, SPLIT, TEST_SPLIT, TRAIN_SPLIT, VALID_SPLIT

Baseline = Callable[[pd.DataFrame, pd.DataFrame, pd.DataFrame], np.ndarray]


def _calibrated_rule(score: Callable[[pd.DataFrame], np.ndarray]) -> Baseline:
    def run(train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
        calibrator = ScoreCalibrator("isotonic").fit(score(valid), valid[LABEL].to_numpy())
        return calibrator.predict(score(test))

    return run


def _bgnbd(train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    return test["btyd_p_no_purchase"].to_numpy(dtype=float)


def _pnbd(train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    return test["pnbd_p_no_purchase"].to_numpy(dtype=float)


# Inverse L2 strengths tried (scikit-learn's C, per row); the validation log loss picks one.
LOGISTIC_C = (0.001, 0.01, 0.1, 1.0)
_QUANTILES = 1000


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return float(-np.mean(y * log(p) + (1 - y) * log(1 - p)))


def _logistic(train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    # A learned categorical (country) has no meaningful order for a linear model: left out.
    features = [c for c in feature_columns(train) if c not in LEARNED_CATEGORICALS]
    rows = len(train)
    prepare = make_pipeline(
        SimpleImputer(strategy="median"),
        QuantileTransformer(
            n_quantiles=min(_QUANTILES, rows),
            output_distribution="normal",
            subsample=max(rows, 1),
            random_state=0,
        ),
        StandardScaler(),
    )
    x_train = prepare.fit_transform(model_matrix(train, features))
    x_valid = prepare.transform(model_matrix(valid, features))
    y_train, y_valid = train[LABEL].to_numpy(), valid[LABEL].to_numpy()
    best: tuple[float, LogisticFit] | None = None
    for c in LOGISTIC_C:
        fit = fit_logistic(x_train, y_train, c=c)
        loss = _log_loss(y_valid, fit.probability(x_valid))
        if best is None or loss < best[0]:
            best = (loss, fit)
    assert best is not None
    return best[1].probability(prepare.transform(model_matrix(test, features)))


BASELINES: dict[str, Baseline] = {
    "recency": _calibrated_rule(lambda f: f["recency_days"].to_numpy(dtype=float)),
    "rfm_score": _calibrated_rule(lambda f: -f["rfm_score"].to_numpy(dtype=float)),
    "bgnbd": _bgnbd,
    "pnbd": _pnbd,
    "logistic": _logistic,
}


def baseline_probabilities(snapshots: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each baseline's P(churn) for the test rows, fitted on the train/valid rows only."""
    split = {name: snapshots[snapshots[SPLIT] == name] for name in LABELLED_SPLITS}
    return {
        name: baseline(split[TRAIN_SPLIT], split[VALID_SPLIT], split[TEST_SPLIT])
        for name, baseline in BASELINES.items()
    }
