"""Candidates: the choice by validation log loss, honest calibration, and the served blend."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from pathlib import Path

import ibis
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from churn.config import FeaturesConfig, SnapshotConfig, TrainConfig
from churn.features.tables import build_feature_tables
from churn.model.blend import AVERAGE_NAME, BLEND_NAME, BOOSTER_PART
from churn.model.calibrate import ScoreCalibrator
from churn.model.candidates import choose, choose_calibration, select
from churn.model.churn_model import CATEGORICAL_FEATURES, LABEL, model_matrix
from churn.model.crossfit import CrossFit, FoldPredictions
from churn.model.ensemble import Ensemble
from churn.model.model_files import read_model_files, write_model_files
from churn.model.recency import cutoff_weights
from churn.model.train import TrainingResult, lightgbm_params, train_model
from synthetic import canonical_transactions

CONFIG = TrainConfig(n_estimators=80, early_stopping_rounds=10, min_customers=100)


@pytest.fixture(scope="module")
def snapshots() -> pd.DataFrame:
    transactions = canonical_transactions(seed=11, n_customers=2_000)
    tables = build_feature_tables(
        ibis.memtable(transactions), SnapshotConfig(n_train_cutoffs=4), FeaturesConfig()
    )
    return tables.labelled


@pytest.fixture(scope="module")
def platt(snapshots: pd.DataFrame) -> TrainingResult:
    return train_model(snapshots, CONFIG.model_copy(update={"calibration": "platt"}))


def _fold(name: str, truth: np.ndarray, rng: np.random.Generator) -> FoldPredictions:
    y = (rng.random(len(truth)) < truth).astype(int)
    noisy = np.clip(truth + rng.normal(0, 0.25, len(truth)), 0.01, 0.99)
    parts = {BOOSTER_PART: noisy, "logistic": np.full(len(truth), y.mean())}
    parts["planted_p_no_purchase"] = truth  # the true probability: the best candidate
    return FoldPredictions(name, y, parts)


def test_a_clearly_better_part_is_served_or_the_blend_that_contains_it() -> None:
    rng = np.random.default_rng(3)
    folds = [_fold(f"c{i}", rng.beta(2, 2, 4_000), rng) for i in range(3)]
    selection = select(CrossFit(folds, out_of_time=True), "auto")
    losses = {n: j.heldout_log_loss for n, j in selection.judged.items()}
    assert set(losses) == {
        BOOSTER_PART,
        "logistic",
        "planted_p_no_purchase",
        BLEND_NAME,
        AVERAGE_NAME,
    }
    assert selection.served in {"planted_p_no_purchase", BLEND_NAME}
    assert losses[selection.served] < losses[BOOSTER_PART] - 0.01
    # The metrics of record are the validation (last) fold's, by fits on earlier ones.
    assert selection.judged[selection.served].candidate.valid["n"] == len(folds[-1].y)


def _twins(name: str, truth: np.ndarray, rng: np.random.Generator) -> FoldPredictions:
    """The booster is the truth itself; the other parts are the truth with a little noise."""
    y = (rng.random(len(truth)) < truth).astype(int)
    parts = {BOOSTER_PART: truth}
    for part in ("logistic", "planted_p_no_purchase"):
        parts[part] = np.clip(truth + rng.normal(0, 0.03, len(truth)), 0.01, 0.99)
    return FoldPredictions(name, y, parts)


def test_when_the_folds_cannot_separate_the_candidates_the_average_is_served() -> None:
    """A single candidate with a (tiny) lead on the validation fold and on the pooled
    held-out folds is not served over the average that contains it: its lead is noise."""
    rng = np.random.default_rng(1)
    folds = [_twins(f"c{i}", rng.beta(2, 2, 3_000), rng) for i in range(4)]
    selection = select(CrossFit(folds, out_of_time=True), "none")
    valid = {n: j.candidate.valid["log_loss"] for n, j in selection.judged.items()}
    heldout = {n: j.heldout_log_loss for n, j in selection.judged.items()}
    assert min(valid, key=valid.__getitem__) != AVERAGE_NAME  # the old rule served a part
    assert min(heldout, key=heldout.__getitem__) != AVERAGE_NAME
    assert selection.served == AVERAGE_NAME
    assert "not clear on every held-out cutoff" in selection.summary()


def _heldout(
    truth: np.ndarray, noise: float, y: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return y, np.clip(truth + rng.normal(0, noise, len(truth)), 0.01, 0.99)


def test_a_part_that_beats_the_blend_clearly_on_every_held_out_cutoff_is_served() -> None:
    """The rule itself, on planted held-out predictions: the booster is the truth, the blend
    a noisy copy. Clear on both of two cutoffs: the booster; on one cutoff only, or with a
    single held-out cutoff (whose SE says nothing of the swing between cutoffs): the blend."""
    rng = np.random.default_rng(7)
    truth = [rng.beta(2, 2, 3_000) for _ in range(2)]
    ys = [(rng.random(len(t)) < t).astype(int) for t in truth]
    booster = [(y, t) for y, t in zip(ys, truth, strict=True)]
    noisy = [_heldout(t, 0.15, y, i) for i, (y, t) in enumerate(zip(ys, truth, strict=True))]
    names = [BOOSTER_PART, BLEND_NAME]
    served, why = choose({BOOSTER_PART: booster, BLEND_NAME: noisy}, names)
    assert served == BOOSTER_PART and "every held-out cutoff" in why
    mixed = [noisy[0], booster[1]]  # the blend as good as the booster on the second cutoff
    assert choose({BOOSTER_PART: booster, BLEND_NAME: mixed}, names)[0] == BLEND_NAME
    alone = choose({BOOSTER_PART: booster[:1], BLEND_NAME: noisy[:1]}, names)
    assert alone[0] == BLEND_NAME and "one held-out cutoff" in alone[1]


def test_the_average_is_the_default_and_fitted_weights_must_beat_it_clearly() -> None:
    """With the average among the candidates it is the default, the stacked blend one
    more challenger: a lead on one cutoff only keeps the average; a clear lead on both
    serves the challenger, whichever it is."""
    rng = np.random.default_rng(11)
    truth = [rng.beta(2, 2, 3_000) for _ in range(2)]
    ys = [(rng.random(len(t)) < t).astype(int) for t in truth]
    best = [(y, t) for y, t in zip(ys, truth, strict=True)]
    noisy = [_heldout(t, 0.15, y, i) for i, (y, t) in enumerate(zip(ys, truth, strict=True))]
    worse = [_heldout(t, 0.25, y, 10 + i) for i, (y, t) in enumerate(zip(ys, truth, strict=True))]
    names = [BOOSTER_PART, BLEND_NAME, AVERAGE_NAME]
    mixed = [best[0], noisy[1]]  # the stacked blend leads on the first cutoff only
    served, why = choose({BOOSTER_PART: worse, BLEND_NAME: mixed, AVERAGE_NAME: noisy}, names)
    assert served == AVERAGE_NAME and "not clear on every held-out cutoff" in why
    assert "average of the booster and the logistic part" in why
    served, why = choose({BOOSTER_PART: worse, BLEND_NAME: best, AVERAGE_NAME: noisy}, names)
    assert served == BLEND_NAME and "beats the average" in why
    served, _ = choose({BOOSTER_PART: best, BLEND_NAME: worse, AVERAGE_NAME: noisy}, names)
    assert served == BOOSTER_PART


def test_no_calibration_unless_a_calibrator_is_clearly_better() -> None:
    """On planted held-out predictions: Platt a hair better than "none" (one season's
    level, the noise of a cutoff) keeps the scores as they are, where the old rules
    (lowest Brier, or Platt by default) would calibrate; a part off everywhere (squashed
    probabilities, like a BTYD column) gets the calibrator that repairs it; without
    "none", lowest Brier."""
    rng = np.random.default_rng(5)
    truth = rng.beta(2, 2, 4_000)
    y = (rng.random(len(truth)) < truth).astype(int)
    hair = {"none": (y, np.clip(truth + 0.01, 0, 1)), "platt": (y, truth)}
    hair["isotonic"] = (y, np.clip(truth + rng.normal(0, 0.01, len(y)), 0, 1))
    brier = {m: float(np.mean((p - y) ** 2)) for m, (y, p) in hair.items()}
    assert min(brier, key=brier.__getitem__) != "none"
    assert choose_calibration(hair) == "none"
    squashed = {"none": (y, 0.5 + (truth - 0.5) / 3), "platt": (y, truth)}
    squashed["isotonic"] = (y, np.clip(truth + rng.normal(0, 0.05, len(y)), 0, 1))
    assert choose_calibration(squashed) == "platt"
    bent = {"none": (y, truth**3), "isotonic": (y, truth), "platt": (y, truth**2)}
    assert choose_calibration(bent) == "isotonic"
    assert choose_calibration({"platt": hair["none"], "isotonic": hair["isotonic"]}) == "isotonic"


def _booster(rows: pd.DataFrame, result: TrainingResult) -> lgb.Booster:
    model = result.model
    categorical = [c for c in model.features if c in CATEGORICAL_FEATURES]
    data = lgb.Dataset(
        model_matrix(rows, model.features, model.categories),
        label=rows[LABEL],
        weight=cutoff_weights(rows, CONFIG.recency_half_life),
        categorical_feature=categorical,
    )
    return lgb.train(lightgbm_params(CONFIG), data, num_boost_round=result.best_iteration)


def test_the_calibrator_is_fitted_on_out_of_time_predictions_of_models_that_never_saw_them(
    snapshots: pd.DataFrame, platt: TrainingResult
) -> None:
    """Rebuilt by hand: each of the last cutoffs scored by a booster trained only on cutoffs
    whose label windows closed before it; Platt on those scores, shifted back to their mean
    (``hold_level``), is the served calibrator. The old wiring (Platt on the validation
    cutoff only, then a refit that saw it) fails."""
    rows = snapshots[snapshots["split"].isin(["train", "valid"])]
    valid_cutoff = rows.loc[rows["split"] == "valid", "cutoff"].max()
    gap = valid_cutoff - rows.loc[rows["split"] == "train", "cutoff"].max()
    scores, labels = [], []
    for target in sorted(rows["cutoff"].unique())[-CONFIG.calibration_cutoffs :]:
        seen = rows[rows["cutoff"] <= target - gap]
        if seen[LABEL].nunique() < 2:
            continue
        here = rows[rows["cutoff"] == target]
        assert not set(seen.index) & set(here.index)
        matrix = model_matrix(here, platt.model.features, platt.model.categories)
        scores.append(_booster(seen, platt).predict(matrix))
        labels.append(here[LABEL].to_numpy())
    assert len(scores) >= 2  # cross-fitted over several cutoffs, not the validation one alone
    score = np.concatenate(scores)
    expected = ScoreCalibrator("platt").fit(score, np.concatenate(labels)).hold_level(score)
    assert platt.model.ensemble is not None
    served = platt.model.ensemble.candidates[BOOSTER_PART].calibrator
    assert served.slope == pytest.approx(expected.slope, rel=1e-9)
    assert served.intercept == pytest.approx(expected.intercept, rel=1e-9)
    # And the served booster is the refit on train + valid, which saw those rows.
    assert platt.n_fit == platt.n_train + platt.n_valid


def test_auto_calibration_reports_its_choice_and_held_out_brier(platt: TrainingResult) -> None:
    result = platt.selection
    assert result.labels()["calibration"] == "platt"
    metrics = result.metrics()
    assert 0 < metrics["calibration_heldout_brier"] < 0.25
    assert {f"candidates.{n}.valid_log_loss" for n in result.judged} <= set(metrics)


def test_a_served_blend_loads_without_unpickling_and_scores_as_in_training(
    snapshots: pd.DataFrame,
    platt: TrainingResult,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = copy.copy(platt.model)  # the fixture's model stays as trained
    assert model.ensemble is not None
    model.ensemble = dataclasses.replace(model.ensemble, served=BLEND_NAME)
    model.calibrator = model.ensemble.candidates[BLEND_NAME].calibrator
    files = write_model_files(model, tmp_path)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model must load without unpickling")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    loaded = read_model_files(files.booster, files.spec)
    test = snapshots[snapshots["split"] == "test"]
    assert isinstance(loaded.ensemble, Ensemble) and loaded.ensemble.served == BLEND_NAME
    served = loaded.churn_probability(test)
    assert np.array_equal(served, model.churn_probability(test))
    assert not np.array_equal(served, loaded.candidate_probabilities(test)[BOOSTER_PART])
    assert np.array_equal(served, loaded.candidate_probabilities(test)[BLEND_NAME])


def test_scores_and_reasons_work_whichever_candidate_is_served(
    snapshots: pd.DataFrame, platt: TrainingResult
) -> None:
    """A non-tree winner still scores, and its reasons come from the booster inside."""
    from churn.scoring.score import explain, score_customers

    assert platt.model.ensemble is not None
    rows = snapshots[snapshots["split"] == "test"].drop(columns=[LABEL]).head(300)
    # Lifetime value and next purchase exist at the scoring cutoff only; these test-cutoff
    # rows stand in for a scoring snapshot.
    rows = rows.assign(clv_discounted=np.nan, next_purchase_date=pd.NaT)
    for served in ("logistic", "btyd_p_no_purchase", BLEND_NAME, AVERAGE_NAME):
        model = copy.copy(platt.model)
        model.ensemble = dataclasses.replace(platt.model.ensemble, served=served)
        model.calibrator = model.ensemble.candidates[served].calibrator
        scores = score_customers(rows, model, "models/churn_model")
        expected = model.candidate_probabilities(rows)[served]
        by_id = dict(zip(rows["customer_id"], expected, strict=True))
        assert np.allclose(scores["churn_probability"], scores["customer_id"].map(by_id))
        reasons = explain(rows, model, scores["customer_id"].head(20))
        assert (reasons["reason_1"] != "").all()


def test_scoring_computes_only_the_served_candidates_parts(
    snapshots: pd.DataFrame, platt: TrainingResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A served booster never runs the logistic part's transform over every row (half of
    the nightly's scoring, issue 20), and its scores are the same bits as before."""
    from churn.model.linear_part import LinearPart

    assert platt.model.ensemble is not None
    model = copy.copy(platt.model)
    model.ensemble = dataclasses.replace(platt.model.ensemble, served=BOOSTER_PART)
    model.calibrator = model.ensemble.candidates[BOOSTER_PART].calibrator
    rows = snapshots[snapshots["split"] == "test"]
    expected = model.candidate_probabilities(rows)[BOOSTER_PART]

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the served booster needs no logistic part")

    monkeypatch.setattr(LinearPart, "probability", refuse)
    assert np.array_equal(model.churn_probability(rows), expected)


def test_without_two_out_of_time_folds_the_validation_halves_judge_and_nothing_is_refit(
    snapshots: pd.DataFrame,
) -> None:
    """One training cutoff: no earlier cutoff predicts it, so the calibration is chosen on
    two halves of the validation cutoff and the served booster is the one that never saw it."""
    train = snapshots[snapshots["split"] == "train"]
    last = snapshots["cutoff"] == train["cutoff"].max()
    short = snapshots[(snapshots["split"] != "train") | last]
    config = CONFIG.model_copy(update={"min_train_cutoffs": 1, "refit_full": True})
    result = train_model(short, config)
    assert not result.selection.out_of_time
    assert result.n_fit == result.n_train
    judged_on = {j.candidate.valid["n"] for j in result.selection.judged.values()}
    assert len(judged_on) == 1 and 0 < judged_on.pop() < result.n_valid  # the second half


def test_rows_or_a_blend_the_model_cannot_score_are_one_user_error_naming_the_columns(
    snapshots: pd.DataFrame, platt: TrainingResult
) -> None:
    """A blend naming a part this code does not know (a model file from other code) and
    rows built without a feature the booster reads are the user's to fix: a UserError
    naming the columns (one line from the CLI), not a ValueError traceback."""
    from churn.errors import UserError
    from churn.model.blend import Blend

    assert platt.model.ensemble is not None
    rows = snapshots[snapshots["split"] == "test"].head(50)
    model = copy.copy(platt.model)
    served = model.ensemble.candidates[BLEND_NAME]
    weights = {**served.blend.weights, "logistic_equal": 0.5}
    unknown = Blend(weights, served.blend.intercept)
    model.ensemble = dataclasses.replace(
        platt.model.ensemble,
        served=BLEND_NAME,
        candidates={BLEND_NAME: dataclasses.replace(served, blend=unknown)},
    )
    with pytest.raises(UserError, match=r"lack columns the model reads: logistic_equal \("):
        model.churn_probability(rows)
    feature = platt.model.features[0]
    with pytest.raises(UserError, match=f"lack columns the model reads: {feature} "):
        platt.model.churn_probability(rows.drop(columns=[feature]))
