"""benchmarks/quality.py --workdir: a kept project folder skips ingest and features."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

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


def test_a_generated_regime_overrides_only_its_generate_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    quality = _quality(monkeypatch)
    sparse = next(d for d in quality.DATA_SETS if d.name == "sparse")
    written = yaml.safe_load(quality.project_params(tmp_path, sparse, 10).read_text())
    ours = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert written["generate"] == {**ours["generate"], **sparse.generate}
    assert written["generate"] != ours["generate"]
    assert written["snapshots"] == ours["snapshots"]

    typo = quality.DataSet("typo", None, cdnow=False, generate={"n_customer": 10})
    with pytest.raises(SystemExit, match=r"generate\.n_customer"):
        quality.project_params(tmp_path, typo, 10)


def test_an_unknown_data_set_name_is_refused_not_skipped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    quality = _quality(monkeypatch)
    monkeypatch.setattr(sys, "argv", ["quality.py", "--only", "cdnow-1998-13-01"])
    with pytest.raises(SystemExit):
        quality.main()
    assert "invalid choice: 'cdnow-1998-13-01'" in capsys.readouterr().err


def test_the_held_back_data_sets_are_new_names_cutoffs_and_seeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    quality = _quality(monkeypatch)
    main, check = quality.DATA_SETS, quality.CHECK_SETS
    assert not {d.name for d in main} & {d.name for d in check}
    assert not {d.as_of for d in main if d.cdnow} & {d.as_of for d in check if d.cdnow}
    seeds = {d.generate.get("seed") for d in main if not d.cdnow}
    assert all(d.generate.get("seed") not in seeds for d in check if not d.cdnow)
    assert quality.chosen_data_sets(None, check=True) == list(check)
    assert quality.chosen_data_sets(None, check=False) == list(main)
    picked = quality.chosen_data_sets(["sparse", "sparse-s2"], check=False)
    assert [d.name for d in picked] == ["sparse", "sparse-s2"]
