"""A small hyperparameter search for the booster, judged out of time, within a time budget.

A random or k-fold split would let a trial learn a customer's future while being
judged on their past, and would reward settings that do not survive the move to
a later cutoff. So every trial is judged on rolling out-of-time folds: each of the
last ``tune.folds`` training/validation cutoffs is predicted by a booster trained
only on cutoffs whose label windows closed before it (the folds of
churn.model.crossfit, so tuning and the served model's calibration agree on what
"out of time" means). The test cutoff is never passed in: evaluate and the
promotion gate judge the tuned model there, and a search that saw it would
flatter itself.

Each fold is early-stopped on its own held-out rows, as the train stage chooses
the tree count on the validation cutoff; the tree count is not a tuned parameter.
The score is the mean log loss over the folds (lower is better). The first trial
is always the current ``train.*`` settings, so the best trial is never worse than
them on the folds.

Optuna's TPE sampler is seeded and LightGBM is deterministic, so the same trials
give the same result on any machine; the time budget may end the search early
(then fewer trials ran, and the log says so).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import optuna
import pandas as pd
from sklearn.metrics import log_loss
from threadpoolctl import threadpool_limits

from churn.config import TrainConfig, TuneConfig
from churn.errors import UserError
from churn.model.churn_model import (
    CATEGORICAL_FEATURES,
    LABEL,
    feature_columns,
    learn_categories,
    model_matrix,
)
from churn.model.crossfit import fold_cutoffs, fold_rows
from churn.model.train import lightgbm_params

log = logging.getLogger(__name__)

# The searched train.* keys, in the order the dvc command lists them.
TUNED_KEYS = ("num_leaves", "learning_rate", "min_child_samples", "feature_fraction", "lambda_l2")


@dataclass(frozen=True)
class Trial:
    """One trial: its settings and mean out-of-time log loss (None: cut by the budget)."""

    number: int
    params: dict[str, Any]
    log_loss: float | None
    fold_log_loss: dict[str, float] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.log_loss is not None


@dataclass(frozen=True)
class TuneResult:
    """Every trial in order, the best one, the folds judged on, and whether time ran out."""

    trials: list[Trial]
    best: Trial
    folds: list[str]
    budget_hit: bool
    seconds: float


@dataclass(frozen=True)
class _Fold:
    name: str
    fit: pd.DataFrame
    fit_y: np.ndarray
    held_out: pd.DataFrame
    held_out_y: np.ndarray
    categorical: list[str]


class _OutOfTimeError(Exception):
    """Raised inside boosting when the search's deadline has passed."""


def _round(value: float) -> float:
    """Three significant digits: a readable `dvc exp run -S` line, and the value trained on."""
    return float(f"{value:.3g}")


def suggest(trial: optuna.Trial) -> dict[str, Any]:
    """The search space: sane bounds around LightGBM's defaults for a tabular churn model."""
    return {
        "num_leaves": trial.suggest_int("num_leaves", 4, 127, log=True),
        "learning_rate": _round(trial.suggest_float("learning_rate", 0.005, 0.2, log=True)),
        "min_child_samples": trial.suggest_int("min_child_samples", 5, 500, log=True),
        "feature_fraction": _round(trial.suggest_float("feature_fraction", 0.4, 1.0)),
        "lambda_l2": _round(trial.suggest_float("lambda_l2", 0.001, 100.0, log=True)),
    }


def _folds(train: pd.DataFrame, valid: pd.DataFrame, k: int) -> list[_Fold]:
    """The last ``k`` usable out-of-time folds of ``train`` + ``valid`` (never the test cutoff)."""
    features = feature_columns(pd.concat([train, valid]))
    folds = []
    for target in fold_cutoffs(train, valid, k):
        fit, held_out = fold_rows(train, valid, target)
        categories = learn_categories(fit, features)
        folds.append(
            _Fold(
                name=str(target.date()),
                fit=model_matrix(fit, features, categories),
                fit_y=fit[LABEL].to_numpy(dtype=int),
                held_out=model_matrix(held_out, features, categories),
                held_out_y=held_out[LABEL].to_numpy(dtype=int),
                categorical=[c for c in features if c in CATEGORICAL_FEATURES],
            )
        )
    if not folds:
        raise UserError(
            "churn tune found no out-of-time fold with both classes and earlier cutoffs to"
            " learn from; add history (snapshots.n_train_cutoffs) or raise tune.folds"
        )
    return folds


Clock = Callable[[], float]


def _deadline_callback(deadline: float, clock: Clock) -> Callable[[Any], None]:
    def check(env: Any) -> None:
        if clock() > deadline:
            raise _OutOfTimeError

    return check


def _fold_loss(fold: _Fold, config: TrainConfig, deadline: float, clock: Clock) -> float:
    """Log loss on the fold's held-out cutoff of a booster trained on its earlier cutoffs."""
    fit_set = lgb.Dataset(fold.fit, label=fold.fit_y, categorical_feature=fold.categorical)
    held_set = lgb.Dataset(
        fold.held_out,
        label=fold.held_out_y,
        reference=fit_set,
        categorical_feature=fold.categorical,
    )
    with threadpool_limits(config.num_threads, user_api="openmp"):
        booster = lgb.train(
            lightgbm_params(config),
            fit_set,
            num_boost_round=config.n_estimators,
            valid_sets=[held_set],
            valid_names=["held_out"],
            callbacks=[
                lgb.early_stopping(config.early_stopping_rounds, verbose=False),
                _deadline_callback(deadline, clock),
            ],
        )
    best = int(booster.best_iteration or booster.current_iteration())
    predicted = booster.predict(fold.held_out, num_iteration=best)
    return float(log_loss(fold.held_out_y, predicted, labels=[0, 1]))


def _objective(
    folds: list[_Fold], config: TrainConfig, deadline: float, clock: Clock
) -> Callable[[optuna.Trial], float]:
    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial)
        trial.set_user_attr("params", params)
        settings = config.model_copy(update=params)
        losses: dict[str, float] = {}
        try:
            for fold in folds:
                losses[fold.name] = _fold_loss(fold, settings, deadline, clock)
        except _OutOfTimeError:
            raise optuna.TrialPruned("time budget reached") from None
        trial.set_user_attr("fold_log_loss", losses)
        return float(np.mean(list(losses.values())))

    return objective


def _trial(frozen: optuna.trial.FrozenTrial) -> Trial:
    done = frozen.state == optuna.trial.TrialState.COMPLETE
    return Trial(
        number=frozen.number,
        params=dict(frozen.user_attrs.get("params", {})),
        log_loss=float(frozen.value) if done and frozen.value is not None else None,
        fold_log_loss=dict(frozen.user_attrs.get("fold_log_loss", {})),
    )


def tune(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    config: TrainConfig,
    settings: TuneConfig,
    on_trial: Callable[[Trial], None] | None = None,
    clock: Clock = time.monotonic,
) -> TuneResult:
    """Search ``settings.n_trials`` booster settings (at most ``settings.max_seconds``).

    ``train`` and ``valid`` are the training and validation cutoffs only; ``on_trial``
    is told of each finished or cut trial (the stage logs it to MLflow). ``clock`` is
    read after every boosting round and trial; a test passes one that counts rounds, so
    that "the budget cuts the search" does not depend on how busy the machine is.
    """
    folds = _folds(train, valid, settings.folds)
    started = clock()  # the budget is for the trials; the folds are built once
    deadline = started + settings.max_seconds
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="minimize", sampler=optuna.samplers.TPESampler(seed=settings.seed)
    )
    # Trial 0 is the current settings: the search can only improve on them.
    study.enqueue_trial({key: getattr(config, key) for key in TUNED_KEYS})

    def report(running: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        if on_trial is not None:
            on_trial(_trial(frozen))
        if clock() > deadline:
            running.stop()

    study.optimize(
        _objective(folds, config, deadline, clock),
        n_trials=settings.n_trials,
        callbacks=[report],
    )
    trials = [_trial(t) for t in study.trials]
    complete = [t for t in trials if t.complete]
    if not complete:
        raise UserError(
            f"churn tune: no trial finished within tune.max_seconds={settings.max_seconds:g};"
            " raise it (one trial trains one booster per fold)"
        )
    best = min(complete, key=lambda t: (t.log_loss or math.inf, t.number))
    return TuneResult(
        trials=trials,
        best=best,
        folds=[f.name for f in folds],
        budget_hit=len(complete) < settings.n_trials,
        seconds=clock() - started,
    )
