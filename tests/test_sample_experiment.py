"""The committed sample experiment: the model beats every baseline on the test cutoff.

The numbers come from `metrics/eval.json` and `metrics/baselines.json`, which
`make run` writes; their md5 is checked against dvc.lock first, so the test reads
the pipeline's own output and not a hand-edited file. After a change to features
or training, `make run` refreshes them, and this test says whether the model still
wins.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]

EVAL = "metrics/eval.json"
BASELINES = "metrics/baselines.json"


def _locked_md5(path: str) -> str:
    lock = yaml.safe_load((PROJECT_ROOT / "dvc.lock").read_text())
    for stage in lock["stages"].values():
        for out in stage.get("outs", []):
            if out["path"] == path:
                return str(out["md5"])
    raise AssertionError(f"{path} is not an output in dvc.lock")


def _metrics(path: str = EVAL) -> dict[str, object]:
    raw = (PROJECT_ROOT / path).read_bytes()
    assert hashlib.md5(raw).hexdigest() == _locked_md5(path), "run `make run` to refresh"
    result: dict[str, object] = json.loads(raw)
    return result


def test_model_beats_every_baseline_on_auc_and_brier() -> None:
    metrics = _metrics()
    baselines = _metrics(BASELINES)
    assert set(baselines) >= {
        "recency",
        "rfm_score",
        "bgnbd",
        "pnbd",
        "logistic",
    }
    for name, baseline in baselines.items():
        assert isinstance(baseline, dict)
        assert metrics["roc_auc"] > baseline["roc_auc"], name  # type: ignore[operator]
        assert metrics["brier"] < baseline["brier"], name  # type: ignore[operator]
        assert baseline["roc_auc_margin"] > 0, name


def test_model_is_calibrated() -> None:
    assert _metrics()["ece"] < 0.02  # type: ignore[operator]
