"""The model on disk: LightGBM text + JSON round-trips exactly, and bad files are named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from tiny_model import scoring_rows, tiny_frame, tiny_model

from churn.model.calibrate import ScoreCalibrator, _logit
from churn.model.churn_model import LABEL
from churn.model.model_files import (
    ModelFormatError,
    model_spec,
    parse_spec,
    read_model_files,
    write_model_files,
)


@pytest.mark.parametrize("calibration", ["platt", "isotonic", "none", None])
def test_files_give_back_the_same_probabilities(calibration: Any, tmp_path: Path) -> None:
    model = tiny_model(calibration)
    files = write_model_files(model, tmp_path)
    loaded = read_model_files(files.booster, files.spec)
    rows = scoring_rows()
    assert np.array_equal(loaded.churn_probability(rows), model.churn_probability(rows))
    assert loaded.features == model.features and loaded.categories == model.categories
    assert files.booster.read_text().startswith("tree\n")
    assert json.loads(files.spec.read_text())["format"] == "churn-model"


def test_files_are_deterministic(tmp_path: Path) -> None:
    model = tiny_model("isotonic")
    (tmp_path / "a").mkdir()
    first = write_model_files(model, tmp_path / "a")
    (tmp_path / "b").mkdir()
    second = write_model_files(model, tmp_path / "b")
    assert first.booster.read_bytes() == second.booster.read_bytes()
    assert first.spec.read_bytes() == second.spec.read_bytes()


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibrator_matches_scikit_learn(method: Any) -> None:
    """The stored numbers reproduce scikit-learn's fit (Platt: solved to its optimum by
    churn.model.logistic; scikit-learn's lbfgs gets within ~1e-9 of it at a tight tol)."""
    frame = tiny_frame()
    score = np.clip(frame["recency_days"].to_numpy() / 400, 0, 1)
    y = frame[LABEL].to_numpy()
    ours = ScoreCalibrator(method).fit(score, y)
    grid = np.linspace(-0.2, 1.2, 301)
    if method == "isotonic":
        sk = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(score, y)
        expected = sk.predict(grid)
    else:
        sk = LogisticRegression(C=1e6, tol=1e-12, max_iter=10_000)
        sk.fit(_logit(score).reshape(-1, 1), y)
        expected = sk.predict_proba(_logit(grid).reshape(-1, 1))[:, 1]
    atol = 1e-12 if method == "isotonic" else 1e-8
    assert np.allclose(ours.predict(grid), expected, rtol=0, atol=atol)
    again = ScoreCalibrator.from_dict(json.loads(json.dumps(ours.to_dict())))
    assert np.array_equal(again.predict(grid), ours.predict(grid))


def _spec() -> dict[str, Any]:
    return model_spec(tiny_model("isotonic"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.update(format="pickle"), "is not a churn-model spec"),
        (lambda s: s.update(format_version=3), "format version 3"),
        (lambda s: s.update(features="recency_days"), "features must be a list"),
        (lambda s: s["features"].append(s["features"][0]), "distinct names"),
        (lambda s: s.update(categories={"country": "DE"}), "categories must map"),
        (lambda s: s["categories"].pop("country"), "no category list for country"),
        (lambda s: s.update(calibration={"method": "magic"}), "'magic' is not one of"),
        (lambda s: s.update(calibration={"method": "platt", "slope": "1"}), "slope must be"),
        (
            lambda s: s.update(calibration={"method": "isotonic", "x": [2.0, 1.0], "y": [0, 1]}),
            "must be increasing",
        ),
        (
            lambda s: s.update(calibration={"method": "isotonic", "x": [1.0], "y": []}),
            "equally long",
        ),
    ],
)
def test_spec_errors_say_what_is_wrong(change: Any, message: str) -> None:
    spec = _spec()
    change(spec)
    with pytest.raises(ModelFormatError, match=message):
        parse_spec(json.dumps(spec))


def test_not_json_and_not_lightgbm_are_refused(tmp_path: Path) -> None:
    files = write_model_files(tiny_model(), tmp_path)
    with pytest.raises(ModelFormatError, match="is not JSON"):
        parse_spec("\x80\x04K.")
    files.booster.write_text("garbage")
    with pytest.raises(ModelFormatError, match=r"booster\.txt is not a LightGBM model"):
        read_model_files(files.booster, files.spec)
    files.booster.write_bytes(b"\x80\x04\x95")
    with pytest.raises(ModelFormatError, match="not UTF-8"):
        read_model_files(files.booster, files.spec)


def test_booster_and_spec_must_agree_on_the_features(tmp_path: Path) -> None:
    files = write_model_files(tiny_model(), tmp_path)
    spec = json.loads(files.spec.read_text())
    spec["features"] = list(reversed(spec["features"]))
    files.spec.write_text(json.dumps(spec))
    with pytest.raises(ModelFormatError, match="disagree on the features"):
        read_model_files(files.booster, files.spec)
