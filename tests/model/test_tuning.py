"""The booster search: out of time, seeded, and stopped by its time budget."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pandas as pd
import pytest

from churn.config import TrainConfig, TuneConfig
from churn.errors import UserError
from churn.model.crossfit import fold_cutoffs
from churn.model.tuning import TUNED_KEYS, TuneResult, tune
from churn.schema import SPLIT, TRAIN_SPLIT, VALID_SPLIT
from labelled_sample import labelled_snapshots

CONFIG = TrainConfig(n_estimators=40, early_stopping_rounds=10, min_customers=100)
SETTINGS = TuneConfig(n_trials=3, max_seconds=600, seed=3, folds=2)


@pytest.fixture(scope="module")
def splits() -> tuple[pd.DataFrame, pd.DataFrame]:
    labelled = labelled_snapshots()
    return labelled[labelled[SPLIT] == TRAIN_SPLIT], labelled[labelled[SPLIT] == VALID_SPLIT]


@pytest.fixture(scope="module")
def searched(splits: tuple[pd.DataFrame, pd.DataFrame]) -> TuneResult:
    return tune(*splits, CONFIG, SETTINGS)


def test_trials_are_judged_on_the_last_out_of_time_folds_first_on_the_current_settings(
    splits: tuple[pd.DataFrame, pd.DataFrame], searched: TuneResult
) -> None:
    train, valid = splits
    result = searched
    expected = [str(c.date()) for c in fold_cutoffs(train, valid, SETTINGS.folds)]
    assert result.folds == expected and len(expected) == 2
    assert len(result.trials) == SETTINGS.n_trials and not result.budget_hit
    assert result.trials[0].params == {k: getattr(CONFIG, k) for k in TUNED_KEYS}
    assert all(set(t.fold_log_loss) == set(expected) for t in result.trials)
    assert result.best.log_loss == min(t.log_loss or 1.0 for t in result.trials)
    assert len({tuple(t.params.values()) for t in result.trials}) == SETTINGS.n_trials


def test_the_same_seed_gives_the_same_trials_and_another_seed_other_ones(
    splits: tuple[pd.DataFrame, pd.DataFrame], searched: TuneResult
) -> None:
    train, valid = splits
    first = searched
    again = tune(train, valid, CONFIG, SETTINGS)
    other = tune(train, valid, CONFIG, SETTINGS.model_copy(update={"seed": 4, "n_trials": 2}))
    assert again.trials == first.trials and again.best == first.best
    assert other.trials[1].params != first.trials[1].params


def test_the_time_budget_stops_the_search_and_cuts_the_running_trial(
    splits: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, valid = splits
    slow = CONFIG.model_copy(update={"n_estimators": 100_000, "early_stopping_rounds": 100_000})
    budget = SETTINGS.model_copy(update={"n_trials": 10_000, "max_seconds": 0.5})
    with pytest.raises(UserError, match=r"no trial finished within tune.max_seconds=0.5"):
        tune(train, valid, slow, budget, clock=_round_counter())
    # Each reading of the clock is 10 ms: a trial of 2 folds x <= 40 rounds is <= 0.8 s.
    budget = SETTINGS.model_copy(update={"n_trials": 10_000, "max_seconds": 2})
    result = tune(train, valid, CONFIG, budget, clock=_round_counter())
    assert result.budget_hit
    assert 2 <= sum(t.complete for t in result.trials) < budget.n_trials
    assert not result.trials[-1].complete or result.seconds > budget.max_seconds


def _round_counter() -> Callable[[], float]:
    """A clock that moves 10 ms each time it is read: a budget in boosting rounds, not time."""
    readings = itertools.count()
    return lambda: next(readings) * 0.01
