"""Choose what to serve: every candidate and calibration judged on held-out cutoffs.

Candidates are each part alone (the booster, the logistic part, every BTYD
probability column), a stacked blend of all of them and the plain average of the
booster and the logistic part. For each candidate and
each calibration (none, Platt, isotonic) the blend weights and the calibrator
are fitted on the earlier out-of-time folds (churn.model.crossfit) and judged
on the next one, rolling forward; nothing is ever judged on rows it was fitted
on. A candidate is served uncalibrated unless a calibrator has a clearly lower
held-out Brier (``choose_calibration``; or the one ``train.calibration``
names); the served candidate is the average unless another candidate clearly
beats it (``choose``). A calibrator reshapes the spread of a candidate's scores and
keeps their level (``ScoreCalibrator.hold_level``): the level of a few recent cutoffs
is their season's. The winners are then refitted on all folds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from churn.model.blend import (
    AVERAGE_NAME,
    AVERAGE_PARTS,
    BLEND_NAME,
    BOOSTER_PART,
    LINEAR_PART,
    Blend,
    average_blend,
    fit_blend,
)
from churn.model.calibrate import METHODS, CalibrationMethod, ScoreCalibrator
from churn.model.crossfit import CrossFit, FoldPredictions
from churn.model.ensemble import Candidate
from churn.portable_math import log

AUTO = "auto"
_EPS = 1e-6
# A single candidate replaces the blend only when it beats it on pooled held-out log loss by
# more than this many standard errors of the paired per-row difference (two-sided 95 %).
NOISE_Z = 1.96
# The calibration a candidate keeps unless another one is clearly better (choose_calibration).
PREFERRED_CALIBRATION = "none"


@dataclass(frozen=True)
class Judged:
    """One candidate with its chosen calibration and held-out numbers."""

    candidate: Candidate
    method: str
    heldout_brier: float
    # Log loss of the rolling held-out predictions pooled over the judged folds: the choice.
    heldout_log_loss: float


@dataclass(frozen=True)
class Selection:
    """Every candidate fitted on all folds, the served one, and why."""

    judged: dict[str, Judged]
    served: str
    out_of_time: bool
    # Why: the rule's own sentence (see ``choose``).
    reason: str = ""

    @property
    def candidates(self) -> dict[str, Candidate]:
        return {name: j.candidate for name, j in self.judged.items()}

    def metrics(self) -> dict[str, float]:
        """Numbers for metrics/train.json and MLflow (flat keys)."""
        served = self.judged[self.served]
        out = {
            "calibration_heldout_brier": served.heldout_brier,
            "served_valid_log_loss": served.candidate.valid["log_loss"],
            "served_heldout_log_loss": served.heldout_log_loss,
        }
        for name, judged in self.judged.items():
            for key, value in judged.candidate.valid.items():
                out[f"candidates.{name}.valid_{key}"] = value
            out[f"candidates.{name}.heldout_brier"] = judged.heldout_brier
            out[f"candidates.{name}.heldout_log_loss"] = judged.heldout_log_loss
        return out

    def labels(self) -> dict[str, str]:
        """The choice in words (train.json and MLflow tags)."""
        return {"served": self.served, "calibration": self.judged[self.served].method}

    def summary(self) -> str:
        """One sentence for the train log: what won, and by how much."""
        loss = {n: j.heldout_log_loss for n, j in self.judged.items()}
        ranked = sorted(loss, key=loss.__getitem__)
        served = self.judged[self.served]
        others = ", ".join(f"{n} {loss[n]:.4f}" for n in ranked if n != self.served)
        return (
            f"serving {self.served}: {self.reason}; held-out log loss"
            f" {served.heldout_log_loss:.4f} (others: {others});"
            f" calibration {served.method} (held-out Brier {served.heldout_brier:.4f})"
        )


def candidate_blends(parts: list[str]) -> list[str]:
    """Candidate names for the available parts: each part alone, the blend, then the
    average (when both of its parts are there)."""
    average = [AVERAGE_NAME] if all(p in parts for p in AVERAGE_PARTS) else []
    return [*parts, BLEND_NAME, *average]


def part_order(parts: list[str]) -> list[str]:
    """Booster first, then the logistic part, then BTYD columns: the tie-break order."""
    head = [p for p in (BOOSTER_PART, LINEAR_PART) if p in parts]
    return head + sorted(p for p in parts if p not in head)


HeldOut = list[tuple[np.ndarray, np.ndarray]]


def select(crossfit: CrossFit, calibration: str) -> Selection:
    """Judge every candidate on the folds and fit each on all of them (module docstring)."""
    folds = crossfit.folds
    names = candidate_blends(part_order(list(folds[0].parts)))
    methods = list(METHODS) if calibration == AUTO else [calibration]
    judged, heldout = {}, {}
    for name in names:
        judged[name], heldout[name] = _judge(name, folds, methods)
    served, reason = choose(heldout, names)
    return Selection(judged, served, crossfit.out_of_time, reason)


def choose(heldout: dict[str, HeldOut], names: list[str]) -> tuple[str, str]:
    """(served name, why) from each candidate's held-out (y, p), one pair per judged fold.

    The default is the average of the booster and the logistic part (the blend where
    there is no average): it is served unless another candidate beats it on every
    judged fold by more than NOISE_Z paired standard errors of that fold, with at
    least two judged folds. The SE within one cutoff says nothing of how much the
    ranking swings from one cutoff to the next, which is what serving a model bets
    on; and a candidate with fitted weights (the stacked blend) or a single part
    must show it is better, where the average has nothing fitted to go wrong.
    """
    losses = {n: [row_log_loss(y, p) for y, p in heldout[n]] for n in names}
    pooled = {n: _mean(np.concatenate(losses[n])) for n in names}
    best = min(names, key=lambda n: (pooled[n], names.index(n)))
    default = next((n for n in (AVERAGE_NAME, BLEND_NAME) if n in losses), None)
    if default is None:
        return best, "lowest held-out log loss (no blend)"
    if best == default:
        return best, "lowest held-out log loss"
    what = _DESCRIBED[default]
    leads = [_lead(b - c) for b, c in zip(losses[default], losses[best], strict=True)]
    said = ", ".join(f"{m:+.5f} (SE {se:.5f})" for m, se in leads)
    if len(leads) < 2:
        return default, (
            f"one held-out cutoff cannot show that {best}'s lead over the {default} ({said})"
            f" carries over to the next cutoff, so {what}"
        )
    if all(m > NOISE_Z * se for m, se in leads):
        return (
            best,
            f"{best} beats the {default} by more than {NOISE_Z} SE on every held-out cutoff"
            f" ({said})",
        )
    return default, (
        f"{best}'s lead over the {default} is not clear on every held-out cutoff ({said}),"
        f" so {what}"
    )


_DESCRIBED = {
    AVERAGE_NAME: "the average of the booster and the logistic part",
    BLEND_NAME: "the blend of all parts",
}


def _lead(gain: np.ndarray) -> tuple[float, float]:
    """Mean per-row gain and its standard error."""
    mean = _mean(gain)
    if len(gain) < 2:
        return mean, math.inf
    return mean, math.sqrt(_mean((gain - mean) ** 2) / (len(gain) - 1))


def row_log_loss(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Each row's log loss (probabilities clipped as in ``_metrics``; the C library's log, so
    the choice is the same on every machine)."""
    q = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return np.asarray(-(y * log(q) + (1 - y) * log(1 - q)), dtype=float)


def _mean(values: np.ndarray) -> float:
    """An exactly rounded mean (``math.fsum``: no summation order that varies by CPU)."""
    return math.fsum(values) / len(values)


def _judge(name: str, folds: list[FoldPredictions], methods: list[str]) -> tuple[Judged, HeldOut]:
    """The candidate fitted on all folds, and its held-out (y, p) per judged fold."""
    rolling = {m: _rolling(name, folds, m) for m in methods}
    method = choose_calibration({m: _pool(rolling[m]) for m in methods})
    heldout = rolling[method]
    blend, calibrator = _fit(name, folds, method)
    candidate = Candidate(blend, calibrator, _metrics(*heldout[-1]))
    pooled = _pool(heldout)
    loss = _mean(row_log_loss(*pooled))
    return Judged(candidate, method, _brier(pooled), loss), heldout


def choose_calibration(pooled: dict[str, tuple[np.ndarray, np.ndarray]]) -> str:
    """The calibration for a candidate from each method's pooled held-out (y, p).

    None unless Platt's or isotonic's held-out Brier beats it by more than NOISE_Z
    paired standard errors (then the best of those that do). The learned parts are
    fitted on log loss over a year of cutoffs whose seasons their features describe,
    so their level already follows the season; a calibrator is fitted on the last few
    cutoffs alone, one season, and carries that season's level into the next. On a
    log whose base rate swings with the season (the quality benchmark's ``loyal``:
    0.50-0.70 between cutoffs) a Platt fit on spring cutoffs raised the served mean
    prediction from 0.650 to 0.715 at an autumn test cutoff with base rate 0.621,
    Brier 0.2129 to 0.2208, behind BG/NBD's 0.2171; the issue saw the same on a real
    retail log (0.1935 to 0.2018). The calibrators now hold the level (``_fit``), and
    the rule still asks for a clear lead: a reshaped spread must pay for itself on
    rows it was not fitted on. Where a part is off everywhere (a BTYD column, the
    stacked blend's logits) the calibrator wins clearly and is kept. Without "none"
    among the methods, the lowest held-out Brier.
    """
    brier = {m: (p - y) ** 2 for m, (y, p) in pooled.items()}
    order = list(pooled)
    if PREFERRED_CALIBRATION not in brier:
        return min(order, key=lambda m: (_mean(brier[m]), order.index(m)))
    default = brier[PREFERRED_CALIBRATION]
    clear = [m for m in order if _is_clear(_lead(default - brier[m]))]
    if not clear:
        return PREFERRED_CALIBRATION
    return min(clear, key=lambda m: (_mean(brier[m]), order.index(m)))


def _is_clear(lead: tuple[float, float]) -> bool:
    mean, se = lead
    return mean > NOISE_Z * se


def _rolling(name: str, folds: list[FoldPredictions], method: str) -> HeldOut:
    """Held-out (y, p) of folds 2..k, each by a fit on the folds before it."""
    out = []
    for j in range(1, len(folds)):
        blend, calibrator = _fit(name, folds[:j], method)
        out.append((folds[j].y, _predict(blend, calibrator, folds[j])))
    return out


def _pool(heldout: HeldOut) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([y for y, _ in heldout]), np.concatenate([p for _, p in heldout])


def _fit(name: str, folds: list[FoldPredictions], method: str) -> tuple[Blend, ScoreCalibrator]:
    """The candidate's blend, fitted on the latest of ``folds``, and its calibrator, fitted on
    them all pooled and shifted back to the blend's own mean there (``hold_level``).

    The blend's weights describe how good each part is, and a learned part (booster,
    logistic) gets better with every training cutoff it sees, while a BTYD column is
    fitted at its own cutoff alone: the earliest fold's learned parts, trained on one or
    two cutoffs, are weaker than the served ones, and pooling them shifts weight to the
    BTYD columns. The latest fold's parts were trained on the most cutoffs, nearest to
    the served parts.
    """
    pooled = FoldPredictions.pooled(folds)
    latest = folds[-1]
    blend = _blend(name, latest)
    calibrator = ScoreCalibrator(_method(method))
    if method != "none":
        try:
            score = blend.combine(pooled.parts)
            calibrator.fit(score, pooled.y).hold_level(score)
        except ValueError:  # one class only in tiny folds: leave the scores as they are
            calibrator = ScoreCalibrator("none")
    return blend, calibrator


def _blend(name: str, latest: FoldPredictions) -> Blend:
    if name == BLEND_NAME:
        return fit_blend(latest.parts, latest.y)
    if name == AVERAGE_NAME:
        return average_blend()
    return Blend.single(name)


def _predict(blend: Blend, calibrator: ScoreCalibrator, fold: FoldPredictions) -> np.ndarray:
    return np.clip(calibrator.predict(blend.combine(fold.parts)), 0.0, 1.0)


def _method(name: str) -> CalibrationMethod:
    if name not in METHODS:
        raise ValueError(f"unknown calibration {name!r}")
    return name  # type: ignore[return-value]


def _brier(yp: tuple[np.ndarray, np.ndarray]) -> float:
    return float(brier_score_loss(yp[0], yp[1]))


def _metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    q = np.clip(p, _EPS, 1 - _EPS)
    out = {
        "log_loss": float(log_loss(y, q, labels=[0, 1])),
        "brier": float(brier_score_loss(y, q)),
        "n": float(len(y)),
    }
    if len(np.unique(y)) == 2:  # AUC needs both classes (a tiny half-fold may lack one)
        out["roc_auc"] = float(roc_auc_score(y, q))
    return out
