"""Issue 13, case 11 (CLI and environment): one line and a non-zero exit, never a traceback.

Usage errors, a read-only output folder, a full disk, a folder where a file belongs,
params beyond their bounds and training on empty features, through the real CLI:
``python -m churn`` subprocesses where the process matters (exit code, everything on
stderr, mounts), ``churn.cli.main`` in process elsewhere. A read-only folder and a
full disk need a mount of their own (chmod stops nobody when tests run as root): a
tmpfs in a private mount namespace (``unshare -rm``), or mounted directly as root.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from nightly_shop import run_cli

CHURN = [sys.executable, "-m", "churn"]


def _churn(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CHURN, *args], cwd=cwd, capture_output=True, text=True, check=False)


def _error_line(stderr: str) -> str:
    """The one ``churn: error:`` line (asserted one), with no traceback anywhere."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("churn: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


# --- usage errors ---------------------------------------------------------------------

USAGE = [
    (["bogus"], "churn: error: no such command 'bogus' (see `churn --help`)"),
    (["nightly"], "churn: error: missing option '--as-of' (see `churn nightly --help`)"),
    (
        ["backtest", "--steps", "abc"],
        "churn: error: invalid value for '--steps': Input should be a valid integer, unable"
        " to parse string as an integer (see `churn backtest --help`)",
    ),
    (["score", "--no-such-flag"], "churn: error: no such option: --no-such-flag"),
]


@pytest.mark.parametrize(("args", "message"), USAGE, ids=["bogus", "nightly", "steps", "flag"])
def test_usage_errors_are_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    capsys.readouterr()
    assert run_cli(*args) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [_error_line(err)]  # nothing else on stderr
    assert _error_line(err).startswith(message)

    assert run_cli("--debug", *args) == 2  # --debug keeps the exit code ...
    err = capsys.readouterr().err
    assert "Traceback" in err  # ... and adds the traceback
    assert err.splitlines()[-1].startswith(message)


def test_usage_error_in_a_real_process(tmp_path: Path) -> None:
    proc = _churn("bogus", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == "churn: error: no such command 'bogus' (see `churn --help`)\n"


def test_bare_churn_prints_help_and_exits_2(tmp_path: Path) -> None:
    proc = _churn(cwd=tmp_path)
    assert proc.returncode == 2
    assert "Usage: churn" in proc.stdout and "nightly" in proc.stdout  # the help, on stdout
    assert proc.stderr.splitlines() == [
        "churn: error: no command given (pick one above; `churn --help` lists them)"
    ]
    assert _churn("--help", cwd=tmp_path).returncode == 0  # asking for help is not an error


# --- params beyond their bounds, bad dates ----------------------------------------------


@pytest.mark.parametrize(
    ("params", "args", "message"),
    [
        (
            {"snapshots": {"horizon_days": 100_000_000}},
            ["features"],
            "snapshots.horizon_days: Input should be less than or equal to 3660",
        ),
        (
            {"snapshots": {"n_train_cutoffs": 10_000}},
            ["features"],
            "snapshots.n_train_cutoffs: Input should be less than or equal to 120",
        ),
        (
            {"snapshots": {"as_of": "9999-01-01"}},
            ["features"],
            "snapshots.as_of: Input should be less than or equal to 2200-12-31",
        ),
        (
            {"features": {"windows_days": [30, 10_000_000]}},
            ["features"],
            "features: Value error, windows_days must be a non-empty list of day counts"
            " between 1 and 3660",
        ),
        (
            {"evaluate": {"n_bootstrap": 10**9}},
            ["evaluate"],
            "evaluate.n_bootstrap: Input should be less than or equal to 100000",
        ),
        ({}, ["score", "--as-of", "9999-12-31"], "--as-of 9999-12-31 is outside 1900-01-01"),
        ({}, ["nightly", "--as-of", "0001-01-01"], "--as-of 0001-01-01 is outside 1900-01-01"),
    ],
)
def test_params_beyond_bounds_name_the_key(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    params: dict[str, object],
    args: list[str],
    message: str,
) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    capsys.readouterr()
    assert run_cli("--params", str(path), *args) == 2
    assert message in _error_line(capsys.readouterr().err)


# --- training on empty features --------------------------------------------------------


@pytest.mark.parametrize(
    "table",
    [
        pd.DataFrame(),  # what `churn features` writes when no cutoff has anyone
        pd.DataFrame(
            {
                "customer_id": pd.Series([], dtype="string"),
                "cutoff": [],
                "split": [],
                "churned": pd.Series([], dtype="int8"),
            }
        ),
    ],
    ids=["no-columns", "no-rows"],
)
def test_train_on_empty_features_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], table: pd.DataFrame
) -> None:
    features = tmp_path / "train.parquet"
    table.to_parquet(features, index=False)
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "paths": {"train_features": str(features), "model_dir": str(tmp_path / "m")},
                "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
            }
        )
    )
    capsys.readouterr()
    assert run_cli("--params", str(params), "train") == 2
    assert _error_line(capsys.readouterr().err) == (
        "churn: error: the labelled snapshots are empty: no customer has a purchase before"
        " any training cutoff (check the ingested transactions and snapshots.as_of, then"
        " rerun `churn features`)"
    )
    assert not (tmp_path / "m").exists()


# --- a folder where a file belongs (input and output) ------------------------------------


def _small_raw(folder: Path) -> Path:
    """A small valid raw export: 40 orders of 8 customers, one guest order."""
    rows = [
        (f"C{i % 8}", f"I{i}", f"2026-0{1 + i % 6}-1{i % 9} 10:00:00", f"{10 + i}.50", "DE")
        for i in range(40)
    ]
    rows.append(("", "I99", "2026-03-03 10:00:00", "5.00", "DE"))
    path = folder / "raw.csv"
    frame = pd.DataFrame(
        rows, columns=["CustomerID", "Invoice", "InvoiceDate", "Amount", "Country"]
    )
    frame.to_csv(path, index=False)
    return path


def _ingest_params(folder: Path, out: Path) -> Path:
    """params.yaml reading the small raw export and writing every ingest output to ``out``."""
    raw = _small_raw(folder)
    params = folder / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "paths": {
                    "raw_transactions": str(raw),
                    "transactions": str(out / "transactions.parquet"),
                    "quarantine": str(out / "quarantine.parquet"),
                    "ingest_report": str(out / "ingest_report.json"),
                    "customers": str(out / "customers.parquet"),
                }
            }
        )
    )
    return params


def test_ingest_writes_the_small_export(tmp_path: Path) -> None:
    """The control for the cases below: the same input and params, a writable folder."""
    out = tmp_path / "out"
    params = _ingest_params(tmp_path, out)
    assert run_cli("--params", str(params), "ingest") == 0
    report = json.loads((out / "ingest_report.json").read_text())
    assert report["rows_in"] == 41
    assert report["rows_in"] == report["rows_out"] + report["rows_quarantined"]


def test_output_path_that_is_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    params = _ingest_params(tmp_path, out)
    (out / "transactions.parquet").mkdir(parents=True)
    capsys.readouterr()
    assert run_cli("--params", str(params), "ingest") == 2
    assert _error_line(capsys.readouterr().err) == (
        f"churn: error: {out / 'transactions.parquet'} is a folder where a file is expected"
        " (check the path)"
    )
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]  # no temp file left


def test_output_folder_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    params = _ingest_params(tmp_path, out)
    out.write_text("not a folder\n")
    capsys.readouterr()
    assert run_cli("--params", str(params), "ingest") == 2
    assert _error_line(capsys.readouterr().err) == (
        f"churn: error: {out} already exists and is not a folder (move it away or change the path)"
    )


@pytest.mark.parametrize(
    ("key", "args", "stage"),
    [
        ("train_features", ["train"], "features"),
        ("transactions", ["features"], "ingest"),
        ("scores", ["export"], "score"),
    ],
)
def test_input_path_that_is_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, args: list[str], stage: str
) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"paths": {key: str(folder)}}))
    capsys.readouterr()
    assert run_cli("--params", str(params), *args) == 2
    assert _error_line(capsys.readouterr().err) == (
        f"churn: error: {folder} is a folder where the file `churn {stage}` writes is expected"
        " (check the paths in params.yaml)"
    )


def test_params_path_that_is_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert run_cli("--params", str(tmp_path), "ingest") == 2
    assert _error_line(capsys.readouterr().err) == (
        f"churn: error: --params {tmp_path} is a folder; pass the params.yaml file inside it"
    )


# --- read-only folder and full disk (a tmpfs of our own) --------------------------------


@functools.cache
def _mount_prefix() -> list[str] | None:
    """How to run a shell script that may mount a tmpfs: in a private user and mount
    namespace (``unshare -rm``, no host mount table touched), else as root in a private
    mount namespace; None when neither works here."""
    probe = Path(os.environ.get("TMPDIR", "/tmp"))
    for prefix in (["unshare", "-rm"], ["unshare", "-m"]):
        if shutil.which(prefix[0]) is None:
            return None
        test = subprocess.run(
            [*prefix, "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {probe}"],
            capture_output=True,
            check=False,
        )
        if test.returncode == 0:
            return prefix
    return None


def _on_tmpfs(
    out: Path, setup: str, args: list[str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """``churn ARGS`` with ``out`` a fresh 256 KB tmpfs prepared by the shell ``setup``;
    ``cwd/listing.txt`` gets what ``out`` holds afterwards (the tmpfs dies with the script)."""
    prefix = _mount_prefix()
    if prefix is None:
        pytest.skip("cannot mount a tmpfs here (no unshare, no mount namespace)")
    out.mkdir(parents=True, exist_ok=True)
    command = " ".join(f"'{a}'" for a in [*CHURN, *args])
    script = (
        f"mount -t tmpfs -o size=256k tmpfs '{out}' && {setup} && {command}; rc=$?;"
        f" ls -A '{out}' > '{cwd / 'listing.txt'}'; exit $rc"
    )
    return subprocess.run(
        [*prefix, "sh", "-c", script], cwd=cwd, capture_output=True, text=True, check=False
    )


def test_read_only_output_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    params = _ingest_params(tmp_path, out)
    proc = _on_tmpfs(
        out, f"mount -o remount,ro '{out}'", ["--params", str(params), "ingest"], tmp_path
    )
    assert proc.returncode == 2, proc.stderr
    # Whichever of the stage's outputs is created first is the one named.
    line = _error_line(proc.stderr)
    named = line.removeprefix("churn: error: ").split(" is on a read-only file system")[0]
    assert Path(named).parent == out, line
    assert line.endswith(" is on a read-only file system (point that path to a writable folder)")
    assert (tmp_path / "listing.txt").read_text() == ""


def test_full_disk(tmp_path: Path) -> None:
    out = tmp_path / "out"
    params = _ingest_params(tmp_path, out)
    fill = f"(head -c 1000000 /dev/zero > '{out}/fill' 2>/dev/null; true)"
    proc = _on_tmpfs(out, fill, ["--params", str(params), "ingest"], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert _error_line(proc.stderr) == (
        "churn: error: disk full: no space left on the device (writing"
        f" {out / 'transactions.parquet'}); free space there, or point the output elsewhere"
        " in params.yaml"
    )
    assert (tmp_path / "listing.txt").read_text().split() == ["fill"]  # no temp file left


# --- 14: permissions ----------------------------------------------------------------------


@pytest.mark.parametrize(("umask", "file_mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_outputs_get_the_umask_permissions(tmp_path: Path, umask: int, file_mode: int) -> None:
    """Colleagues on a shared drive can open what `churn ingest` writes (not tempfile's 0600)."""
    out = tmp_path / "out"
    params = _ingest_params(tmp_path, out)
    # A subprocess, so the umask is the process's own from the start, as under cron.
    proc = subprocess.run(
        [*CHURN, "--params", str(params), "ingest"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=lambda: os.umask(umask),
    )
    assert proc.returncode == 0, proc.stderr
    written = sorted(out.iterdir())
    assert [p.name for p in written] == [
        "customers.parquet",
        "ingest_report.json",
        "quarantine.parquet",
        "transactions.parquet",
    ]
    assert {p.name: p.stat().st_mode & 0o777 for p in written} == {
        p.name: file_mode for p in written
    }
