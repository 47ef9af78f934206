"""Train the candidates, choose one, and build the served model around it.

Kept out of churn.model.train so the booster's own training stays one short
function: this module adds the logistic part (its penalty chosen on the
validation cutoff), the out-of-time folds, the choice (churn.model.candidates)
and the refit on train + valid. The refit happens only when the folds were out
of time: then the calibrators and blend weights were fitted on predictions of
models that never saw those rows, so they apply honestly to the refitted parts.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from churn.config import TrainConfig
from churn.model.candidates import Selection, select
from churn.model.churn_model import ChurnModel
from churn.model.crossfit import FitBooster, cross_fit
from churn.model.ensemble import Ensemble
from churn.model.linear_part import choose_linear_part, fit_linear_part
from churn.model.recency import cutoff_weights


@dataclass(frozen=True)
class ServedModel:
    model: ChurnModel
    selection: Selection
    # Rows the served parts were fitted on (train, or train + valid after the refit).
    n_fit: int


def train_candidates(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    held_out: ChurnModel,
    fit_fold: FitBooster,
    refit: FitBooster,
    config: TrainConfig,
) -> ServedModel:
    """The served model: ``held_out`` is the booster trained on ``train`` alone;
    ``fit_fold`` and ``refit`` train one like it on other rows (fold models, the refit)."""
    half_life = config.recency_half_life
    linear = choose_linear_part(train, valid, cutoff_weights(train, half_life))
    crossfit = cross_fit(
        train, valid, held_out, fit_fold, linear.c, config.calibration_cutoffs, half_life
    )
    selection = select(crossfit, config.calibration)
    booster, n_fit = held_out.booster, len(train)
    if config.refit_full and crossfit.out_of_time:
        rows = pd.concat([train, valid])
        booster = refit(rows)
        linear = fit_linear_part(rows, linear.c, cutoff_weights(rows, half_life))
        n_fit = len(rows)
    ensemble = Ensemble(selection.candidates, selection.served, linear)
    calibrator = selection.candidates[selection.served].calibrator
    model = ChurnModel(booster, held_out.features, calibrator, held_out.categories, ensemble)
    return ServedModel(model, selection, n_fit)
