"""bin/churn, what every DVC stage runs: it finds the interpreter without PATH.

Each case copies the script into a scratch checkout whose src/ holds a stand-in
`churn` package that prints which interpreter and which checkout ran it, so the
test sees the script's choices and nothing else (the real pipeline runs it in
tests/test_pipeline_e2e.py).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STAND_IN = "import sys\nprint(sys.executable, __file__, *sys.argv[1:])\n"
BARE_PATH = {"PATH": "/nonexistent"}  # not even /bin: the script uses shell builtins only


def _checkout(root: Path) -> Path:
    """A checkout with bin/churn and a stand-in churn package in src/."""
    (root / "bin").mkdir(parents=True)
    shutil.copy2(PROJECT_ROOT / "bin/churn", root / "bin/churn")
    package = root / "src/churn"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(STAND_IN)
    return root


def _environment(root: Path) -> Path:
    """``root``/.venv/bin/python, a link to this interpreter (as `make setup` leaves one)."""
    python = root / ".venv/bin/python"
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    return python


def _run(script: Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", "-c", f"{script} train --flag"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_runs_the_checkouts_src_with_its_venv_whatever_path_holds(tmp_path: Path) -> None:
    root = _checkout(tmp_path / "repo")
    python = _environment(root)
    proc = _run(Path("bin/churn"), BARE_PATH, cwd=root)  # as DVC runs it, from the root
    assert proc.returncode == 0, proc.stderr
    executable, main, *argv = proc.stdout.split()
    assert executable == str(python)
    assert main == str(root / "src/churn/__main__.py")
    assert argv == ["train", "--flag"]


def test_a_queued_experiment_copy_uses_the_venv_of_dvc_root(tmp_path: Path) -> None:
    """`dvc exp run --queue` runs in a copy of the checkout without .venv; DVC_ROOT
    names the repository it came from."""
    parent = tmp_path / "repo"
    python = _environment(parent)
    copy = _checkout(tmp_path / "repo/.dvc/tmp/exps/run1")
    proc = _run(Path("bin/churn"), {**BARE_PATH, "DVC_ROOT": str(parent)}, cwd=copy)
    assert proc.returncode == 0, proc.stderr
    executable, main, *_ = proc.stdout.split()
    assert executable == str(python)
    assert main == str(copy / "src/churn/__main__.py")  # the copy's code, not the parent's


def test_churn_python_wins(tmp_path: Path) -> None:
    root = _checkout(tmp_path / "repo")
    _environment(root)
    proc = _run(root / "bin/churn", {**BARE_PATH, "CHURN_PYTHON": sys.executable}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == sys.executable


@pytest.mark.parametrize("how", ["no venv", "CHURN_PYTHON not there"])
def test_without_an_interpreter_one_line_says_what_to_do(tmp_path: Path, how: str) -> None:
    root = _checkout(tmp_path / "repo")
    env = dict(BARE_PATH)
    expected = root / ".venv/bin/python"
    if how == "CHURN_PYTHON not there":
        expected = tmp_path / "gone/python"
        env["CHURN_PYTHON"] = str(expected)
    proc = _run(Path("bin/churn"), env, cwd=root)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == (
        f"churn: error: no Python environment at {expected} (run `make setup` in {root},"
        " or set CHURN_PYTHON to a Python that has churn's dependencies)\n"
    )
