"""Progress: a bar on a terminal, a bounded number of plain log lines anywhere else.

The terminal case runs the real `churn features` under a pseudo-terminal (the
``pty`` module), the plain case the same command with stderr on a pipe, as cron
or `dvc repro` would run it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from churn.progress import PLAIN_EVERY_PERCENT, progress, tracked
from synthetic import canonical_transactions

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # anything but tab and newline
PROGRESS_LINE = re.compile(
    r"churn\.progress INFO (?P<label>[^:]+): (?P<done>[\d,]+)/(?P<total>[\d,]+) (?P<unit>[^(]+) \("
)
MAX_LINES = 100 // PLAIN_EVERY_PERCENT + 1  # one per step crossed, one if it stops short


def _progress_lines(text: str) -> list[re.Match[str]]:
    return [m for m in map(PROGRESS_LINE.search, text.splitlines()) if m is not None]


def _log_plainly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Log to the (captured) stderr as the CLI does; TERM=dumb keeps it plain even under -s."""
    monkeypatch.setenv("TERM", "dumb")
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
        force=True,
    )


def test_plain_mode_logs_at_most_one_line_per_tenth_and_no_control_characters(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _log_plainly(monkeypatch)
    with progress("train", 2_000, "boosting rounds") as shown:
        for _ in range(2_000):
            shown.advance()
    for _ in tracked(range(3), "backtest", "as-of dates", 3):
        pass
    err = capsys.readouterr().err
    assert not CONTROL.search(err), repr(err)
    lines = _progress_lines(err)
    boosting = [m for m in lines if m["label"] == "train"]
    assert [m["done"] for m in boosting] == [f"{200 * k:,}" for k in range(1, 11)]
    assert [m["done"] for m in lines if m["label"] == "backtest"] == ["1", "2", "3"]
    assert len(err.splitlines()) == len(lines)  # nothing else


def test_a_loop_that_stops_early_says_where_and_nested_loops_stay_quiet(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _log_plainly(monkeypatch)
    with progress("train", 1_000, "boosting rounds") as shown:
        for _ in range(412):  # early stopping
            shown.advance()
    for _ in tracked(range(2), "backtest", "as-of dates", 2):
        for _ in tracked(range(13), "features", "cutoffs", 13):
            pass
    with progress("features", 1, "cutoffs") as shown:  # one step: the stage's line says it
        shown.advance()
    err = capsys.readouterr().err
    lines = _progress_lines(err)
    boosting = [m for m in lines if m["label"] == "train"]
    assert [m["done"] for m in boosting] == ["100", "200", "300", "400", "412"]
    assert "train: 412/1,000 boosting rounds (41 %), " in err and err.count(", done") == 1
    assert [m["label"] for m in lines if m["label"] != "train"] == ["backtest"] * 2


def test_a_terminal_gets_a_bar_even_when_it_reports_no_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bare pseudo-terminal says 0 columns; tqdm would draw an empty bar in 0 columns."""
    monkeypatch.setenv("TERM", "xterm")
    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as terminal:
        monkeypatch.setattr(sys, "stderr", terminal)
        for _ in tracked(range(30), "features", "cutoffs", 30):
            pass
        terminal.flush()
        drawn = _read_all(leader)
    os.close(leader)
    assert "\r" in drawn and "features: 100%|" in drawn and "| 30/30 [" in drawn, repr(drawn)


def _read_all(leader: int) -> str:
    """Everything waiting on the pty: one read may return only the first redraw."""
    chunks = []
    while select.select([leader], [], [], 0.2)[0]:
        chunks.append(os.read(leader, 65536))
    return b"".join(chunks).decode()


@pytest.fixture(scope="module")
def features_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny shop's canonical transactions and params: `churn features` in a few seconds."""
    root = tmp_path_factory.mktemp("progress")
    (root / "data/interim").mkdir(parents=True)
    transactions = canonical_transactions(seed=5, n_customers=300)
    transactions.to_parquet(root / "data/interim/transactions.parquet", index=False)
    (root / "params.yaml").write_text("snapshots:\n  n_train_cutoffs: 3\n")
    return root


def _on_pty(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``args`` with stdout and stderr on a 100-column pseudo-terminal; exit code and
    everything it wrote. The terminal side stays open here until the child is gone, so
    no hang-up can drop its last output."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    env = {**os.environ, "TERM": "xterm"}
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=follower, stderr=follower)
    chunks = []
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            if select.select([leader], [], [], 0.2)[0]:
                chunks.append(os.read(leader, 65536))
            elif proc.poll() is not None:
                break
        return proc.wait(timeout=5), b"".join(chunks).decode("utf-8", "replace")
    finally:
        proc.kill()
        os.close(follower)
        os.close(leader)


def test_churn_features_draws_a_bar_on_a_terminal(features_project: Path) -> None:
    code, output = _on_pty([sys.executable, "-m", "churn", "features"], features_project)
    assert code == 0, output
    # tqdm redraws in place: a carriage return, then the label, percentage, bar and count
    assert re.search(r"\rfeatures:\s+\d+%\|.*\| \d/6 \[", output), repr(output)
    assert "features: 100%|" in output and "| 6/6 [" in output
    assert not _progress_lines(output)  # no plain progress lines on a terminal
    assert "features: done in" in output  # log lines still print (above the bar)


def test_churn_features_logs_plain_lines_when_stderr_is_a_pipe(features_project: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "churn", "features"],
        cwd=features_project,
        capture_output=True,
        text=True,
        env={**os.environ, "TERM": "xterm"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert not CONTROL.search(proc.stderr), repr(proc.stderr)
    lines = _progress_lines(proc.stderr)
    assert [m["label"] for m in lines] == ["features"] * len(lines)
    assert 1 <= len(lines) <= MAX_LINES and lines[-1]["done"] == lines[-1]["total"] == "6"
