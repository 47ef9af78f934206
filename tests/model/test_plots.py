"""The curve pictures: valid, small PNG files, the same bytes for the same curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from churn.model import evaluate as ev
from churn.model.plots import render_curves


def _curves() -> tuple[dict[str, object], dict[str, float]]:
    rng = np.random.default_rng(0)
    p = rng.random(2_000)
    y = (rng.random(2_000) < p).astype(int)
    curves = {
        "roc.csv": ev.roc_points(y, p),
        "pr.csv": ev.pr_points(y, p),
        "calibration.csv": ev.calibration_points(y, p, 10),
        "gains.csv": ev.gains_points(y, p),
        "importance.csv": ev.gains_points(y, p),  # not drawn: no chart for it
    }
    return curves, ev.classification_metrics(y, p)


def test_four_small_valid_pngs_with_stable_bytes(tmp_path: Path) -> None:
    curves, metrics = _curves()
    written = render_curves(curves, metrics, tmp_path / "a")  # type: ignore[arg-type]
    assert [p.name for p in written] == ["roc.png", "pr.png", "calibration.png", "gains.png"]
    for path in written:
        with Image.open(path) as image:
            image.verify()
            assert image.format == "PNG" and image.size == (400, 320)
        assert 5_000 < path.stat().st_size < 60_000
    again = render_curves(curves, metrics, tmp_path / "b")  # type: ignore[arg-type]
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in written]
