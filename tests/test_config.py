"""params.yaml errors must name the key to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from churn.config import Params, load_params
from churn.errors import UserError

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_project_params_load_and_match_defaults_where_unset() -> None:
    params = load_params(PROJECT_ROOT / "params.yaml")
    assert params.snapshots.horizon_days == 90
    assert params.tracking.registered_model == "churn-classifier"
    assert Params().paths == params.paths
    assert Params().nightly == params.nightly  # params.yaml documents the defaults
    assert Params().backtest == params.backtest


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("train:\n  num_leaves: one\n", "train.num_leaves"),
        ("snapshots:\n  horizon_days: -5\n", "snapshots.horizon_days"),
        ("ingest:\n  cancellations: keep\n", "ingest.cancellations"),
        ("train:\n  num_leavs: 31\n", "train.num_leavs"),
        ("export:\n  top_n: 0\n", "export.top_n"),
    ],
)
def test_invalid_value_names_the_dotted_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=rf"^invalid .*params.yaml: {key}: "):
        load_params(path)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="params file not found"):
        load_params(tmp_path / "absent.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_params(bad)
    bad.write_text("- a list\n")
    with pytest.raises(UserError, match="mapping"):
        load_params(bad)


def test_the_widest_allowed_calendar_stays_in_pandas_date_range() -> None:
    """The upper bounds are what keeps every derived cutoff a valid pandas timestamp
    (a 10^8-day horizon crashed `features` with an OverflowError)."""
    import datetime as dt

    import pandas as pd

    from churn.config import EARLIEST_DATE, LATEST_DATE, MAX_CUTOFFS, MAX_DAYS, SnapshotConfig

    widest = SnapshotConfig.model_fields
    every = widest["cutoff_every_days"].metadata[-1].le
    for as_of in (EARLIEST_DATE, LATEST_DATE):
        config = SnapshotConfig(
            as_of=as_of,
            horizon_days=MAX_DAYS,
            active_window_days=MAX_DAYS,
            cutoff_every_days=every,
            n_train_cutoffs=MAX_CUTOFFS,
            min_history_days=MAX_DAYS,
        )
        earliest = (
            as_of
            - dt.timedelta(days=3 * config.horizon_days)
            - dt.timedelta(days=(config.n_train_cutoffs - 1) * config.cutoff_every_days)
            - dt.timedelta(days=max(config.active_window_days, MAX_DAYS))
        )
        assert pd.Timestamp(earliest) >= pd.Timestamp.min
        assert pd.Timestamp(as_of + dt.timedelta(days=config.horizon_days)) <= pd.Timestamp.max
