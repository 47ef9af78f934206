"""The nightly's steps on their own: the score table written beside the steps after it."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from churn.nightly import steps
from churn.nightly.manifest import SCORES_FILE, TARGETS_FILE
from churn.scoring.retention import RetentionList


def _scores() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "churn_probability": [0.9, 0.5, 0.1],
            "risk_rank": [1, 2, 3],
        }
    )


def test_the_score_table_is_written_while_the_next_steps_run(tmp_path: Path) -> None:
    """Written on its own thread as soon as the block opens: the steps inside (PSI, the
    list) do not wait for it, and write_outputs finds it done."""
    scores = _scores()
    with steps.scores_written(scores, tmp_path) as written:
        written.result(timeout=60)  # done before the block's own work has finished
        assert written.done()
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / SCORES_FILE), scores)


def test_a_failed_score_write_is_raised_and_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer's error reaches the job (write_outputs raises it), and leaving the
    block waits for the writer even when a step inside failed first."""
    finished: list[str] = []

    def slow_full_disk(frame: pd.DataFrame, target: Path) -> None:
        time.sleep(0.5)
        finished.append(target.name)
        raise OSError("disk full")

    monkeypatch.setattr(steps, "write_parquet", slow_full_disk)
    with (
        pytest.raises(ValueError, match="a step failed"),
        steps.scores_written(_scores(), tmp_path),
    ):
        raise ValueError("a step failed")
    assert finished == [SCORES_FILE]  # the writer was waited for before the block let go
    chosen = RetentionList(pd.DataFrame(), pd.DataFrame(), {})
    with (
        pytest.raises(OSError, match="disk full"),
        steps.scores_written(_scores(), tmp_path) as written,
    ):
        steps.write_outputs(written, chosen, tmp_path)
    assert not (tmp_path / TARGETS_FILE).exists()  # the list waits for the score table
