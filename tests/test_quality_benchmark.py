"""benchmarks/quality.py --workdir: a kept project folder skips ingest and features."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _quality(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("quality", ROOT / "benchmarks" / "quality.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "quality", module)  # its dataclasses look it up there
    spec.loader.exec_module(module)
    return module


def test_a_kept_folder_with_features_reruns_only_train_and_evaluate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    quality = _quality(monkeypatch)
    steps: list[str] = []

    def run_cli(folder: Path, step: str) -> None:
        """Stands in for the CLI (minutes per stage): records the step, writes its output."""
        steps.append(step)
        if step == "features":
            (folder / "data" / "features").mkdir(parents=True)
            (folder / "data" / "features" / "train.parquet").write_bytes(b"")
        if step == "evaluate":
            (folder / "metrics").mkdir(exist_ok=True)
            (folder / "metrics" / "eval.json").write_text(json.dumps({"roc_auc": 0.7}))
            (folder / "metrics" / "baselines.json").write_text(json.dumps({}))

    monkeypatch.setattr(quality, "run_cli", run_cli)
    monkeypatch.setattr(quality, "cdnow_csv", lambda target: target.write_text(""))
    data = quality.DATA_SETS[0]
    first = quality.evaluate_data_set(data, 10, tmp_path)
    assert steps == ["ingest", "features", "train", "evaluate"]
    assert first == {"roc_auc": 0.7, "baselines": {}}
    steps.clear()
    quality.evaluate_data_set(data, 10, tmp_path)
    assert steps == ["train", "evaluate"]
    assert (tmp_path / data.name / "params.yaml").exists()
