"""A held-out calibrator reshapes the spread of the scores and leaves their level alone."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit, logit
from sklearn.metrics import brier_score_loss

from churn.model.calibrate import ScoreCalibrator


def _season(seed: int, *, sureness: float, level_error: float, n: int = 20_000):
    """Labels drawn from true probabilities, and scores that are ``sureness`` times too
    sure (in logit) and ``level_error`` off in level: a model on one season's cutoffs."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.2, n)
    y = (rng.random(n) < expit(z)).astype(int)
    return expit(sureness * z + level_error), y


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_the_level_of_the_scores_is_kept_and_their_spread_repaired(method: str) -> None:
    """Scores twice too sure and 1 logit too low: Platt alone moves the mean up to the
    labels' rate; held to the level it keeps the scores' mean, still fixes the spread, and
    beats both the raw scores and the unheld map on a later season whose true level is
    the scores' own (what the learned parts' features say about the season)."""
    score, y = _season(1, sureness=2.0, level_error=-1.0)
    free = ScoreCalibrator(method).fit(score, y)
    held = ScoreCalibrator(method).fit(score, y).hold_level(score)
    assert free.predict(score).mean() == pytest.approx(y.mean(), abs=0.01)
    assert held.predict(score).mean() == pytest.approx(score.mean(), abs=1e-9)
    assert abs(score.mean() - y.mean()) > 0.1  # the level really was off
    # Next season, the true level is where the scores put it: only the spread was wrong.
    later_score, _ = _season(2, sureness=2.0, level_error=-1.0)
    rng = np.random.default_rng(3)
    later_truth = expit(logit(later_score) / 2.0)
    later_y = (rng.random(len(later_truth)) < later_truth).astype(int)
    raw = brier_score_loss(later_y, later_score)
    assert brier_score_loss(later_y, held.predict(later_score)) < raw
    assert brier_score_loss(later_y, held.predict(later_score)) < brier_score_loss(
        later_y, free.predict(later_score)
    )
    if method == "platt":
        assert held.slope == free.slope == pytest.approx(0.5, abs=0.05)


def test_holding_the_level_survives_the_model_file() -> None:
    """The shift lives in Platt's intercept and the isotonic steps: nothing new to store."""
    score, y = _season(4, sureness=1.5, level_error=0.5, n=3_000)
    for method in ("platt", "isotonic"):
        held = ScoreCalibrator(method).fit(score, y).hold_level(score)
        again = ScoreCalibrator.from_dict(held.to_dict())
        np.testing.assert_array_equal(again.predict(score), held.predict(score))
        steps = held.predict(np.sort(score))
        assert np.all(np.diff(steps) >= 0) and steps.min() >= 0 and steps.max() <= 1


def test_no_calibration_has_no_level_to_hold() -> None:
    score, y = _season(5, sureness=1.0, level_error=0.3, n=500)
    none = ScoreCalibrator("none").fit(score, y).hold_level(score)
    np.testing.assert_array_equal(none.predict(score), score)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    sureness=st.floats(0.3, 3.0),
    level_error=st.floats(-2.0, 2.0),
    method=st.sampled_from(["platt", "isotonic"]),
)
def test_the_held_mean_is_the_scores_mean_whatever_the_distortion(
    seed: int, sureness: float, level_error: float, method: str
) -> None:
    score, y = _season(seed, sureness=sureness, level_error=level_error, n=400)
    held = ScoreCalibrator(method).fit(score, y).hold_level(score)
    assert held.predict(score).mean() == pytest.approx(score.mean(), abs=1e-6)
