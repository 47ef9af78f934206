"""The Qini coefficient (scikit-uplift, churn.outcomes.qini) against a slow textbook version."""

from __future__ import annotations

import numpy as np
import pytest

from churn.outcomes.qini import qini


def _curve(y: np.ndarray, score: np.ndarray, t: np.ndarray) -> tuple[list[float], list[float]]:
    """Qini curve point by point: after the top k customers, treated responders minus
    control responders scaled to the treated count (Radcliffe 2007); ties enter together."""
    xs, qs = [0.0], [0.0]
    for cut in sorted(set(score.tolist()), reverse=True):
        top = score >= cut
        n_t, n_c = int((top & (t == 1)).sum()), int((top & (t == 0)).sum())
        y_t, y_c = int((top & (t == 1) & (y == 1)).sum()), int((top & (t == 0) & (y == 1)).sum())
        xs.append(float(top.sum()))
        qs.append(y_t - (y_c * n_t / n_c if n_c else 0.0))
    return xs, qs


def _area(xs: list[float], ys: list[float]) -> float:
    return sum((xs[i] - xs[i - 1]) * (ys[i] + ys[i - 1]) / 2 for i in range(1, len(xs)))


def oracle_qini(y: np.ndarray, score: np.ndarray, t: np.ndarray) -> float:
    """(area of the ranking - area of random) / (area of the perfect ranking - area of random);
    the perfect ranking puts treated responders first and control responders last."""
    xs, qs = _curve(y, score, t)
    random = xs[-1] * qs[-1] / 2
    perfect = _curve(y, (y * t - y * (1 - t)).astype(float), t)
    return (_area(xs, qs) - random) / (_area(*perfect) - random)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_qini_matches_the_slow_oracle(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    t = (rng.random(n) < 0.4).astype(int)
    score = rng.normal(size=n).round(1)  # ties on purpose
    y = (rng.random(n) < 0.3 + 0.2 * t * (score > 0)).astype(int)
    assert qini(y, score, t) == pytest.approx(oracle_qini(y, score, t), rel=1e-9)


def test_qini_is_one_for_the_perfect_ranking_and_flips_sign_when_reversed() -> None:
    rng = np.random.default_rng(5)
    t = (rng.random(300) < 0.5).astype(int)
    y = (rng.random(300) < 0.4).astype(int)
    perfect = (y * t - y * (1 - t)).astype(float)
    assert qini(y, perfect, t) == pytest.approx(1.0)
    assert qini(y, -perfect, t) < 0
