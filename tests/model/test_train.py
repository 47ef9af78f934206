"""Training: country as a learned categorical, and the optional refit on train + valid."""

from __future__ import annotations

import datetime as dt
import logging

import ibis
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from churn.config import FeaturesConfig, SnapshotConfig, TrainConfig
from churn.features.tables import build_feature_tables
from churn.model.churn_model import LABEL, MAX_LEARNED_CATEGORIES, learn_categories
from churn.model.train import TrainingResult, train_model
from synthetic import canonical_transactions

CONFIG = TrainConfig(n_estimators=150, early_stopping_rounds=20, min_customers=100)


@pytest.fixture(scope="module")
def snapshots() -> pd.DataFrame:
    transactions = canonical_transactions(seed=11, n_customers=3_000)
    labelled = build_feature_tables(
        ibis.memtable(transactions), SnapshotConfig(n_train_cutoffs=4), FeaturesConfig()
    ).labelled
    return labelled


@pytest.fixture(scope="module")
def held_out(snapshots: pd.DataFrame) -> TrainingResult:
    return train_model(snapshots, CONFIG.model_copy(update={"refit_full": False}))


@pytest.fixture(scope="module")
def refitted(snapshots: pd.DataFrame) -> TrainingResult:
    return train_model(snapshots, CONFIG.model_copy(update={"refit_full": True}))


def test_country_is_a_lightgbm_categorical(held_out: TrainingResult) -> None:
    model = held_out.model
    assert "country" in model.features
    infos = model.booster.dump_model()["feature_infos"]
    # LightGBM lists the seen codes of a categorical feature, none for a numeric one.
    assert infos["country"]["values"], infos["country"]
    assert not infos["recency_days"]["values"]
    assert model.categories["country"]


def test_an_unseen_country_scores_as_missing(
    held_out: TrainingResult, snapshots: pd.DataFrame
) -> None:
    rows = snapshots[snapshots["split"] == "test"].head(200)
    unseen = rows.assign(country="Atlantis")
    missing = rows.assign(country=None)
    model = held_out.model
    np.testing.assert_array_equal(model.churn_probability(unseen), model.churn_probability(missing))


def test_learned_categories_are_the_most_frequent_ones_in_a_stable_order() -> None:
    train = pd.DataFrame(
        {"country": ["b"] * 3 + ["a"] * 3 + ["c"] * 5 + [f"x{i}" for i in range(40)] + [None]}
    )
    categories = learn_categories(train, ["country"])["country"]
    assert categories[:3] == ("c", "a", "b")
    assert len(categories) == MAX_LEARNED_CATEGORIES
    assert learn_categories(train.sample(frac=1, random_state=1), ["country"]) == {
        "country": categories
    }


def test_refit_uses_train_and_valid_with_the_chosen_tree_count(
    held_out: TrainingResult, refitted: TrainingResult, snapshots: pd.DataFrame
) -> None:
    assert held_out.n_fit == held_out.n_train
    assert refitted.n_fit == refitted.n_train + refitted.n_valid
    assert refitted.best_iteration == held_out.best_iteration
    assert refitted.model.booster.num_trees() == held_out.model.booster.num_trees()
    assert refitted.model.booster.model_to_string() != held_out.model.booster.model_to_string()
    test = snapshots[snapshots["split"] == "test"]
    auc = {
        name: roc_auc_score(test[LABEL], result.model.churn_probability(test))
        for name, result in (("held_out", held_out), ("refit", refitted))
    }
    # More (and more recent) rows with the same tree count: no worse out of time.
    assert auc["refit"] > auc["held_out"] - 0.01, auc


def test_fifteen_months_of_history_still_train() -> None:
    """Real exports are often short; 15 months with a 90-day horizon must be enough."""
    transactions = canonical_transactions(
        seed=5, n_customers=2_000, start=dt.date(2025, 7, 1), end=dt.date(2026, 10, 1)
    )
    tables = build_feature_tables(ibis.memtable(transactions), SnapshotConfig(), FeaturesConfig())
    assert len(tables.calendar.train_cutoffs) >= TrainConfig().min_train_cutoffs
    result = train_model(tables.labelled, TrainConfig(n_estimators=100))
    test = tables.labelled[tables.labelled["split"] == "test"]
    assert roc_auc_score(test[LABEL], result.model.churn_probability(test)) > 0.6


def test_boosting_and_refit_report_progress_in_bounded_plain_lines(
    snapshots: pd.DataFrame, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERM", "dumb")  # not a terminal: log lines, no bar
    caplog.set_level(logging.INFO, logger="churn.progress")
    config = CONFIG.model_copy(update={"refit_full": True})
    result = train_model(snapshots, config)
    lines = [r.getMessage() for r in caplog.records if r.name == "churn.progress"]
    boosting = [line for line in lines if "boosting rounds" in line]
    refit = [line for line in lines if "refit rounds" in line]
    folds = [line for line in lines if "out-of-time fold rounds" in line]  # candidates' folds
    assert len(boosting) + len(refit) + len(folds) == len(lines) and 1 <= len(boosting) <= 11
    # Early stopping ends boosting short of n_estimators; the last line says where
    stopped = result.best_iteration + config.early_stopping_rounds
    assert boosting[-1].startswith(f"train: {stopped}/{config.n_estimators} boosting rounds")
    assert len(refit) == 10
    assert refit[-1].startswith(f"train: {result.best_iteration}/{result.best_iteration} refit")
