"""params.yaml errors must name the key to fix; code defaults equal params.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

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


def _differences(default: object, configured: object, key: str = "") -> list[str]:
    """Dotted keys whose value differs, section by section (whole values below that)."""
    if isinstance(default, dict) and isinstance(configured, dict):
        return [
            line
            for name in sorted(set(default) | set(configured), key=str)
            for line in _differences(
                default.get(name, "<absent>"), configured.get(name, "<absent>"), f"{key}{name}."
            )
        ]
    if default != configured:
        return [f"{key.rstrip('.')}: code {default!r}, params.yaml {configured!r}"]
    return []


def _unlisted(model: type[BaseModel], raw: dict[str, Any], key: str = "") -> list[str]:
    """Fields of ``model`` (and of its sections, recursively) that params.yaml leaves out."""
    missing = []
    for name, field in model.model_fields.items():
        if name not in raw:
            missing.append(f"{key}{name}")
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            missing += _unlisted(field.annotation, raw[name], f"{key}{name}.")
    return missing


def test_code_defaults_are_params_yaml_key_for_key() -> None:
    """One source of defaults: params.yaml is what the pipeline runs with, so a default
    config built in code or a test (``TrainConfig()``) must be the very same settings,
    and every knob must be in params.yaml for DVC to track it."""
    raw = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text(encoding="utf-8"))
    configured = load_params(PROJECT_ROOT / "params.yaml").model_dump(mode="json")
    assert _differences(Params().model_dump(mode="json"), configured) == []
    assert _unlisted(Params, raw) == []


def test_a_changed_default_is_caught(tmp_path: Path) -> None:
    """The comparison above fails on any one key, however deep (train.refit_full was false
    in code and true in params.yaml)."""
    text = (PROJECT_ROOT / "params.yaml").read_text(encoding="utf-8")
    changed = tmp_path / "params.yaml"
    changed.write_text(text.replace("refit_full: true", "refit_full: false"), encoding="utf-8")
    configured = load_params(changed).model_dump(mode="json")
    assert _differences(Params().model_dump(mode="json"), configured) == [
        "train.refit_full: code True, params.yaml False"
    ]
    raw = yaml.safe_load(text)
    del raw["ingest"]["csv"]["skip_rows"]
    assert _unlisted(Params, raw) == ["ingest.csv.skip_rows"]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("train:\n  num_leaves: one\n", "train.num_leaves"),
        ("snapshots:\n  horizon_days: -5\n", "snapshots.horizon_days"),
        ("ingest:\n  cancellations: keep\n", "ingest.cancellations"),
        ("train:\n  num_leavs: 31\n", "train.num_leavs"),
        ("export:\n  top_n: 0\n", "export.top_n"),
        ("report:\n  memory_limit: lots\n", "report.memory_limit"),
        ("report:\n  memory_limit: 0MB\n", "report.memory_limit"),
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
