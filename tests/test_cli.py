"""User errors exit non-zero with one clear line and no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHURN = [sys.executable, "-m", "churn"]


def _churn(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CHURN, *args], cwd=cwd, capture_output=True, text=True, check=False)


def test_missing_input_is_one_line_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("paths:\n  raw_transactions: nowhere.csv\n")
    proc = _churn(["ingest"], tmp_path)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert errors == [
        "churn: error: ingest source not found: nowhere.csv (set paths.raw_transactions)"
    ]
    assert "Traceback" not in proc.stderr


def test_bad_param_names_key(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("train:\n  learning_rate: fast\n")
    proc = _churn(["train"], tmp_path)
    assert proc.returncode == 2
    assert "train.learning_rate" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("paths:\n  transactions: none.parquet\n")
    proc = _churn(["--debug", "features"], tmp_path)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr


def test_missing_upstream_output_says_which_stage_to_run(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("{}\n")
    proc = _churn(["score"], tmp_path)
    assert proc.returncode == 2
    assert "run `churn features` first" in proc.stderr


def test_help_lists_every_stage(tmp_path: Path) -> None:
    proc = _churn(["--help"], tmp_path)
    assert proc.returncode == 0
    for stage in (
        "generate",
        "ingest",
        "features",
        "train",
        "evaluate",
        "score",
        "export",
        "explain",
        "report",
    ):
        assert stage in proc.stdout
