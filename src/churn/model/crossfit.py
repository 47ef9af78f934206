"""Out-of-time predictions for the last few cutoffs, each from models that never saw them.

A calibrator or a blend fitted on scores of a model that was trained on the
same rows learns that model's in-sample confidence, not its real error: the
old wiring fitted Platt on the validation cutoff and then served a booster
refitted on it. Here each of the last k training/validation cutoffs (a
"fold") is predicted by a booster and a logistic part trained only on cutoffs
whose label windows closed before it (the same gap as between the training
cutoffs and the validation cutoff), so every prediction is out of time. The
validation fold reuses the early-stopped booster, which was trained on exactly
the training cutoffs.

With fewer than two such folds (a short history) there is nothing held out to
choose a calibration on, so the validation cutoff is split in two halves by
customer and the caller serves the booster trained without it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from churn.model.blend import BOOSTER_PART, LINEAR_PART, btyd_parts
from churn.model.churn_model import LABEL, ChurnModel
from churn.model.linear_part import fit_linear_part
from churn.model.recency import cutoff_weights

FitBooster = Callable[[pd.DataFrame], lgb.Booster]


@dataclass(frozen=True)
class FoldPredictions:
    """One held-out fold: its labels and each part's out-of-time P(churn)."""

    name: str
    y: np.ndarray
    parts: dict[str, np.ndarray]

    @classmethod
    def pooled(cls, folds: list[FoldPredictions]) -> FoldPredictions:
        names = folds[0].parts
        return cls(
            "+".join(f.name for f in folds),
            np.concatenate([f.y for f in folds]),
            {p: np.concatenate([f.parts[p] for f in folds]) for p in names},
        )


@dataclass(frozen=True)
class CrossFit:
    """Folds oldest first; ``out_of_time`` is False for the split-validation fallback."""

    folds: list[FoldPredictions]
    out_of_time: bool


def fold_cutoffs(train: pd.DataFrame, valid: pd.DataFrame, k: int) -> list[pd.Timestamp]:
    """The last ``k`` cutoffs that have earlier closed cutoffs to learn from, oldest first."""
    rows = pd.concat([train, valid])
    cutoffs = sorted(pd.unique(rows["cutoff"]))[-k:]
    usable = []
    for target in cutoffs:
        earlier, here = fold_rows(train, valid, pd.Timestamp(target))
        if earlier[LABEL].nunique() == 2 and here[LABEL].nunique() == 2:
            usable.append(pd.Timestamp(target))
    return usable


def fold_rows(
    train: pd.DataFrame, valid: pd.DataFrame, target: pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows to fit on, rows held out) for one fold: the held-out rows are the ``target``
    cutoff's; the fit rows are the cutoffs whose label windows closed before it (the same
    gap as between the training cutoffs and the validation cutoff)."""
    rows = pd.concat([train, valid])
    gap = valid["cutoff"].min() - train["cutoff"].max()
    return rows[rows["cutoff"] <= target - gap], rows[rows["cutoff"] == target]


def cross_fit(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    model: ChurnModel,
    fit_booster: FitBooster,
    linear_c: float,
    k: int,
    half_life: float | None = None,
) -> CrossFit:
    """Each part's out-of-time predictions on the last ``k`` usable cutoffs.

    ``model`` holds the booster trained on ``train`` (used for the validation
    fold); ``fit_booster`` trains one with the same settings on other rows;
    ``half_life`` weights the logistic part's rows as the served one's.
    """
    last = pd.Timestamp(valid["cutoff"].max())
    folds = []
    for target in fold_cutoffs(train, valid, k):
        fit_rows, here = fold_rows(train, valid, target)
        weight = cutoff_weights(fit_rows, half_life)
        booster = model.booster if target == last else fit_booster(fit_rows)
        fold_model = ChurnModel(booster, model.features, categories=model.categories)
        parts = {
            BOOSTER_PART: fold_model.booster_probability(here),
            LINEAR_PART: fit_linear_part(fit_rows, linear_c, weight).probability(here),
        }
        for column in btyd_parts(here.columns):
            parts[column] = here[column].fillna(0.5).to_numpy(dtype="float64")
        name = str(target.date())
        folds.append(FoldPredictions(name, here[LABEL].to_numpy(dtype=int), parts))
    if len(folds) >= 2:
        return CrossFit(folds, out_of_time=True)
    return CrossFit(_halves(folds[-1], valid), out_of_time=False)


def _halves(fold: FoldPredictions, valid: pd.DataFrame) -> list[FoldPredictions]:
    """The validation fold in two halves by a hash of the customer id (a stable split)."""
    ids = valid["customer_id"].astype(str)
    first = np.array([hashlib.sha256(i.encode()).digest()[0] < 128 for i in ids])
    halves = []
    for name, mask in (("valid-a", first), ("valid-b", ~first)):
        parts = {p: v[mask] for p, v in fold.parts.items()}
        halves.append(FoldPredictions(name, fold.y[mask], parts))
    return halves
