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


def test_the_report_kpis_are_computed_on_a_thread_and_their_error_reaches_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kpis_ahead computes what the report would compute itself, with the report's own
    windows (the model's label), on its own thread; a failure there is raised where the
    report asks for them, and leaving the block waits for the thread."""
    import datetime as dt
    import threading

    from churn.config import Params
    from churn.scoring import kpi_engine

    params = Params()
    history = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "c", "c", "c"],
            "order_id": ["1", "2", "3", "4", "5", "6"],
            "ts": pd.to_datetime(
                ["2026-01-05", "2026-03-01", "2026-02-10", "2026-04-01", "2026-06-01", "2026-07-01"]
            ),
            "amount": [10.0, 20.0, 5.0, 7.0, 8.0, 9.0],
        }
    )
    transactions = tmp_path / "transactions.parquet"
    history.to_parquet(transactions)
    as_of = dt.date(2026, 6, 15)
    threads: list[str] = []
    computed = kpi_engine.kpis_at

    def recording(*args: object, **kwargs: int) -> kpi_engine.KpisAt:
        threads.append(threading.current_thread().name)
        assert kwargs == kpi_engine.label_windows(params)
        return computed(*args, **kwargs)

    monkeypatch.setattr(steps, "kpis_at", recording)
    with steps.kpis_ahead(transactions, as_of, params) as kpis:
        got = kpis.result(timeout=60)
    assert threads and threads[0].startswith("report-kpis")
    want = computed(transactions, as_of, None, **kpi_engine.label_windows(params))
    assert got.as_of == want.as_of and got.kpis is not None and want.kpis is not None
    pd.testing.assert_frame_equal(got.kpis.monthly, want.kpis.monthly)

    finished: list[bool] = []

    def failing(*args: object, **kwargs: object) -> None:
        time.sleep(0.5)
        finished.append(True)
        raise OSError("disk full")

    monkeypatch.setattr(steps, "kpis_at", failing)
    with (
        pytest.raises(ValueError, match="a step failed"),
        steps.kpis_ahead(transactions, as_of, params),
    ):
        raise ValueError("a step failed")
    assert finished == [True]  # waited for before the block let go
    with (
        pytest.raises(OSError, match="disk full"),
        steps.kpis_ahead(transactions, as_of, params) as kpis,
    ):
        kpis.result()
