"""A churn model on disk: the booster as LightGBM text, everything else as JSON.

A pickled model runs code when it is loaded, so a crafted model folder could
run anything on the machine that scores with it. These two files are data:
LightGBM parses its own text format (``Booster(model_str=...)``), ``json``
parses the feature list, the category lists and the calibrator's numbers,
and nothing in either can execute. Both churn's own loader
(churn.model.loader) and the MLflow pyfunc wrapper (churn.model.pyfunc) parse
a model with ``model_from_bytes``, so they cannot disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb

from churn.model.calibrate import ScoreCalibrator
from churn.model.churn_model import CATEGORICAL_FEATURES, ChurnModel
from churn.model.ensemble import Ensemble

BOOSTER_FILE = "booster.txt"
SPEC_FILE = "churn_model.json"
# Where MLflow puts them in a model folder (``artifacts={"booster": ..., "spec": ...}``).
BOOSTER_PATH = f"artifacts/{BOOSTER_FILE}"
SPEC_PATH = f"artifacts/{SPEC_FILE}"
FORMAT = "churn-model"
# Version 2 adds the trained candidates (churn.model.ensemble); version 1 still loads.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)


class ModelFormatError(ValueError):
    """A model file that is not a churn model of a format this version reads."""


@dataclass(frozen=True)
class ModelFiles:
    booster: Path
    spec: Path


def model_spec(model: ChurnModel) -> dict[str, Any]:
    """Everything but the trees, as JSON-ready values (floats round-trip exactly)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "features": list(model.features),
        "categories": {name: list(values) for name, values in model.categories.items()},
        "calibration": None if model.calibrator is None else model.calibrator.to_dict(),
        "ensemble": None if model.ensemble is None else model.ensemble.to_dict(),
    }


def write_model_files(model: ChurnModel, folder: Path) -> ModelFiles:
    """Write ``booster.txt`` and ``churn_model.json`` into ``folder`` (which must exist)."""
    files = ModelFiles(folder / BOOSTER_FILE, folder / SPEC_FILE)
    files.booster.write_text(model.booster.model_to_string(), encoding="utf-8")
    files.spec.write_text(
        json.dumps(model_spec(model), indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    return files


def read_model_files(booster: Path, spec: Path) -> ChurnModel:
    """The model stored by ``write_model_files``; a ModelFormatError says what is wrong."""
    return model_from_bytes(_read_bytes(booster), _read_bytes(spec))


def model_from_bytes(booster: bytes, spec: bytes) -> ChurnModel:
    """The model from the two files' contents (the loader passes the bytes it verified)."""
    features, categories, calibrator, ensemble = parse_spec(_text(spec, SPEC_FILE))
    try:
        trees = lgb.Booster(model_str=_text(booster, BOOSTER_FILE))
    except lgb.basic.LightGBMError as exc:
        raise ModelFormatError(f"{BOOSTER_FILE} is not a LightGBM model: {exc}") from None
    if trees.feature_name() != features:
        raise ModelFormatError(
            f"{BOOSTER_FILE} and {SPEC_FILE} disagree on the features"
            f" ({trees.num_feature()} in the booster, {len(features)} in the spec)"
        )
    return ChurnModel(trees, features, calibrator, categories, ensemble)


def parse_spec(
    text: str,
) -> tuple[list[str], dict[str, tuple[str, ...]], ScoreCalibrator | None, Ensemble | None]:
    """(features, categories, calibrator, ensemble) from the spec's JSON, field by field."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{SPEC_FILE} is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ModelFormatError(f"{SPEC_FILE} is not a {FORMAT} spec")
    if data.get("format_version") not in READABLE_VERSIONS:
        raise ModelFormatError(
            f"{SPEC_FILE} has format version {data.get('format_version')!r};"
            f" this churn reads versions {READABLE_VERSIONS}"
        )
    features = data.get("features")
    if (
        not isinstance(features, list)
        or not features
        or not all(isinstance(f, str) and f for f in features)
        or len(set(features)) != len(features)
    ):
        raise ModelFormatError(f"{SPEC_FILE}: features must be a list of distinct names")
    raw_categories = data.get("categories")
    if not isinstance(raw_categories, dict) or not all(
        isinstance(values, list) and all(isinstance(v, str) for v in values)
        for values in raw_categories.values()
    ):
        raise ModelFormatError(f"{SPEC_FILE}: categories must map names to lists of strings")
    categories = {str(name): tuple(values) for name, values in raw_categories.items()}
    unlisted = [f for f in features if f in CATEGORICAL_FEATURES and f not in categories]
    if unlisted:
        raise ModelFormatError(f"{SPEC_FILE}: no category list for {', '.join(unlisted)}")
    calibration = data.get("calibration")
    try:
        calibrator = None if calibration is None else ScoreCalibrator.from_dict(calibration)
        raw_ensemble = data.get("ensemble")
        ensemble = None if raw_ensemble is None else Ensemble.from_dict(raw_ensemble)
    except ValueError as exc:
        raise ModelFormatError(f"{SPEC_FILE}: {exc}") from None
    return features, categories, calibrator, ensemble


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelFormatError(f"cannot read {path.name}: {exc.strerror or exc}") from None


def _text(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelFormatError(f"{name} is not UTF-8 text") from None
