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
is therefore mapped through its training quantiles to a standard normal
(churn.model.quantile_normal: bounded, rank-preserving, deterministic), and the
L2 strength is chosen on the validation cutoff's log loss. It is the logistic
candidate's code (churn.model.linear_part) fitted on the training cutoffs only,
so the served family always holds a model at least as good as this baseline.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from churn.model.calibrate import ScoreCalibrator
from churn.model.linear_part import choose_linear_part
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


def _logistic(train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    # The logistic candidate's own code (churn.model.linear_part), fitted on train alone.
    return choose_linear_part(train, valid).probability(test)


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
