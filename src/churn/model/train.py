"""LightGBM on stacked training cutoffs, early-stopped on the later validation cutoff.

The split is by cutoff, never random: a random split lets the model see a
customer's future snapshot while predicting their past, which inflates AUC and
ships a model that fails out of time.

The booster is the same on every machine and for any thread count, so a fresh
clone's `dvc repro` reproduces the committed model: ``deterministic`` with
column-wise histograms (each feature's histogram is summed by one thread, in
row order; row-wise sums per-thread partial histograms), no BLAS anywhere, and
``train.num_threads`` applied as an OpenMP limit around training instead of a
LightGBM parameter, which the model file would record.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import lightgbm as lgb
import pandas as pd
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from churn.config import TrainConfig
from churn.errors import UserError
from churn.model.candidate_training import train_candidates
from churn.model.candidates import Selection
from churn.model.churn_model import (
    CATEGORICAL_FEATURES,
    ChurnModel,
    feature_columns,
    learn_categories,
    model_matrix,
)
from churn.model.recency import cutoff_weights
from churn.model.sufficiency import check_training_data
from churn.progress import lightgbm_callback, progress
from churn.schema import LABEL, SPLIT, TRAIN_SPLIT, VALID_SPLIT


@dataclass(frozen=True)
class TrainingResult:
    model: ChurnModel
    best_iteration: int
    valid_auc: float
    n_train: int
    n_valid: int
    # Rows the served booster was fitted on: n_train, or n_train + n_valid after a refit.
    n_fit: int
    # Every candidate's validation numbers, the served one and its calibration.
    selection: Selection


def lightgbm_params(config: TrainConfig) -> dict[str, object]:
    """LightGBM's parameters, as the model file records them (no thread count)."""
    return {
        "objective": "binary",
        "metric": "binary_logloss",
        "learning_rate": config.learning_rate,
        "num_leaves": config.num_leaves,
        "min_child_samples": config.min_child_samples,
        "feature_fraction": config.feature_fraction,
        "bagging_fraction": config.bagging_fraction,
        "bagging_freq": config.bagging_freq,
        "lambda_l2": config.lambda_l2,
        "scale_pos_weight": config.scale_pos_weight,
        "seed": config.seed,
        "deterministic": True,
        "force_col_wise": True,
        "verbosity": -1,
    }


@contextmanager
def _threads(config: TrainConfig) -> Iterator[None]:
    """At most ``train.num_threads`` OpenMP threads for LightGBM (and anything else) inside."""
    with threadpool_limits(config.num_threads, user_api="openmp"):
        yield


def _check_split(frame: pd.DataFrame, name: str) -> None:
    if frame.empty:
        raise UserError(f"no {name} rows in the snapshots (check snapshots.* in params.yaml)")
    if frame[LABEL].nunique() < 2:
        raise UserError(
            f"the {name} rows hold only one class (churned={int(frame[LABEL].iloc[0])});"
            " a churn model needs both churners and retained customers"
        )


def _refit(
    rows: pd.DataFrame,
    features: list[str],
    categories: dict[str, tuple[str, ...]],
    config: TrainConfig,
    n_trees: int,
    unit: str = "refit rounds",
) -> lgb.Booster:
    """The same model refitted on other rows, with the tree count early stopping chose."""
    categorical = [c for c in features if c in CATEGORICAL_FEATURES]
    full_set = lgb.Dataset(
        model_matrix(rows, features, categories),
        label=rows[LABEL],
        weight=cutoff_weights(rows, config.recency_half_life),
        categorical_feature=categorical,
    )
    with _threads(config), progress("train", n_trees, unit) as shown:
        return lgb.train(
            lightgbm_params(config),
            full_set,
            num_boost_round=n_trees,
            callbacks=[lightgbm_callback(shown)],
        )


def train_model(snapshots: pd.DataFrame, config: TrainConfig) -> TrainingResult:
    """Fit on split == 'train', stop early on split == 'valid', then choose what to serve.

    The candidates (booster, logistic part, BTYD probabilities, a stacked blend, the
    average of booster and logistic part) and their calibration are judged on out-of-time folds by
    churn.model.candidate_training. With ``refit_full`` the served parts are
    refitted on the train and valid cutoffs (the booster with the chosen tree
    count), so they have seen the most recent closed label window; the
    calibrators were fitted on predictions of models that never saw those rows.
    The test cutoff stays out on purpose: evaluate and the promotion gate judge
    the served model there, and must not judge it on rows it was fitted on.
    """
    check_training_data(snapshots, config)
    train = snapshots[snapshots[SPLIT] == TRAIN_SPLIT]
    valid = snapshots[snapshots[SPLIT] == VALID_SPLIT]
    _check_split(train, "training")
    _check_split(valid, "validation")
    features = feature_columns(snapshots)
    categories = learn_categories(train, features)
    booster, best = _fit_early_stopped(train, valid, features, categories, config)
    held_out = ChurnModel(booster, features, categories=categories)

    def refit(rows: pd.DataFrame) -> lgb.Booster:
        return _refit(rows, features, categories, config, best)

    def fold_fit(rows: pd.DataFrame) -> lgb.Booster:
        return _refit(rows, features, categories, config, best, "out-of-time fold rounds")

    served = train_candidates(train, valid, held_out, fold_fit, refit, config)
    valid_auc = float(roc_auc_score(valid[LABEL], held_out.booster_probability(valid)))
    return TrainingResult(
        model=served.model,
        best_iteration=best,
        valid_auc=valid_auc,
        n_train=len(train),
        n_valid=len(valid),
        n_fit=served.n_fit,
        selection=served.selection,
    )


def _fit_early_stopped(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    features: list[str],
    categories: dict[str, tuple[str, ...]],
    config: TrainConfig,
) -> tuple[lgb.Booster, int]:
    """(booster, best tree count): boosting on ``train`` until ``valid``'s loss stops
    improving for ``early_stopping_rounds``; the booster is cut to the best tree count."""
    categorical = [c for c in features if c in CATEGORICAL_FEATURES]
    train_set = lgb.Dataset(
        model_matrix(train, features, categories),
        label=train[LABEL],
        weight=cutoff_weights(train, config.recency_half_life),
        categorical_feature=categorical,
    )
    valid_set = lgb.Dataset(
        model_matrix(valid, features, categories),
        label=valid[LABEL],
        reference=train_set,
        categorical_feature=categorical,
    )
    with _threads(config), progress("train", config.n_estimators, "boosting rounds") as shown:
        booster = lgb.train(
            lightgbm_params(config),
            train_set,
            num_boost_round=config.n_estimators,
            valid_sets=[valid_set],
            valid_names=["valid"],
            callbacks=[
                lgb.early_stopping(config.early_stopping_rounds, verbose=False),
                lightgbm_callback(shown),
            ],
        )
    best = int(booster.best_iteration or booster.current_iteration())
    # Keep only the trees up to the best iteration, so every consumer predicts the same.
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best)), best
