"""churn.model.blend: non-negative stacking weights, fitted on the latest out-of-time fold."""

from __future__ import annotations

import numpy as np

from churn.model.blend import BLEND_NAME, BOOSTER_PART, fit_blend, logit
from churn.model.candidates import select
from churn.model.crossfit import CrossFit, FoldPredictions
from churn.model.logistic import fit_logistic


def _parts(seed: int, n: int = 4_000) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The booster near the truth; two BTYD columns that are near copies of each other."""
    rng = np.random.default_rng(seed)
    truth = rng.beta(2, 2, n)
    y = (rng.random(n) < truth).astype(int)
    btyd = np.clip(truth + rng.normal(0, 0.2, n), 0.01, 0.99)
    parts = {
        BOOSTER_PART: np.clip(truth + rng.normal(0, 0.1, n), 0.01, 0.99),
        "bgnbd_p_no_purchase": btyd,
        "pnbd_p_no_purchase": np.clip(btyd + rng.normal(0, 0.03, n), 0.01, 0.99),
    }
    return parts, y


def test_stacking_weights_are_never_negative() -> None:
    parts, y = _parts(0)
    names = sorted(parts)
    free = fit_logistic(np.column_stack([logit(parts[p]) for p in names]), y, c=1.0)
    assert min(free.coef) < 0  # unconstrained, one near-copy is traded against the other
    blend = fit_blend(parts, y)
    assert all(w > 0 for w in blend.weights.values())
    assert BOOSTER_PART in blend.weights


def test_the_served_blend_is_weighted_on_the_latest_fold() -> None:
    """The latest fold's parts were trained on the most cutoffs, like the served ones."""
    folds = [FoldPredictions(f"c{i}", *reversed(_parts(i))) for i in range(3)]
    selection = select(CrossFit(folds, out_of_time=True), "none")
    served = selection.judged[BLEND_NAME].candidate.blend
    latest = fit_blend(folds[-1].parts, folds[-1].y)
    assert served.weights == latest.weights and served.intercept == latest.intercept
    pooled = FoldPredictions.pooled(folds)
    assert served.weights != fit_blend(pooled.parts, pooled.y).weights
