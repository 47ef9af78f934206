"""Shrinkage of measured save rates and the rates a list then uses (real files, real config)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from churn.config import TargetingConfig
from churn.errors import UserError
from churn.outcomes.in_effect import rates_in_effect
from churn.outcomes.readout import Measurement
from churn.outcomes.save_rates import measured_save_rates, shrink


def _measured(
    n_contacted: int, churned_contacted: int, n_control: int, churned_control: int
) -> Measurement:
    rate_c = churned_control / n_control
    rate_t = churned_contacted / n_contacted
    return Measurement(
        n_contacted=n_contacted, n_control=n_control,
        retention_contacted=1 - rate_t, retention_control=1 - rate_c,
        lift=rate_c - rate_t, lift_ci_low=None, lift_ci_high=None,
        save_rate=1 - rate_t / rate_c, save_rate_ci_low=None, save_rate_ci_high=None,
        churned_contacted=churned_contacted, churned_control=churned_control,
        revenue_per_contacted=None, revenue_per_control=None, revenue_difference=None,
        revenue_difference_ci_low=None, revenue_difference_ci_high=None,
        incremental_revenue=None, incremental_revenue_ci_low=None,
        incremental_revenue_ci_high=None, cost=0.0, roi=None, horizon_closed=True,
        observed_days=90,
    )  # fmt: skip


def test_strong_evidence_overrides_the_prior_and_weak_evidence_does_not() -> None:
    # measured 0.40 (churn 0.6 -> 0.36) against an assumed 0.10
    strong = shrink(0.10, _measured(20_000, 7_200, 20_000, 12_000), prior_strength=50)
    weak = shrink(0.10, _measured(60, 22, 20, 12), prior_strength=50)
    assert strong["save_rate"] == pytest.approx(0.40, abs=0.01)
    assert strong["ci_low"] < 0.40 < strong["ci_high"]
    assert 0.10 < weak["save_rate"] < 0.25  # pulled toward the measurement, not onto it
    assert weak["ci_high"] - weak["ci_low"] > strong["ci_high"] - strong["ci_low"]


def test_no_prior_gives_the_measured_rate_and_a_harmful_contact_pulls_down() -> None:
    alone = shrink(0.30, _measured(5_000, 2_000, 5_000, 2_500), prior_strength=0)
    assert alone["save_rate"] == pytest.approx(0.20, abs=0.002)
    harm = shrink(0.30, _measured(5_000, 2_750, 5_000, 2_500), prior_strength=50)
    assert harm["save_rate"] < 0.05  # measured -10 %: the Beta's floor, well below 0.30


def _save_rates_file(tmp_path: Path, n_control: dict[str, int]) -> Path:
    targeting = TargetingConfig()
    by_action = {a: _measured(3 * n, int(1.2 * n), n, int(0.6 * n)) for a, n in n_control.items()}
    payload = measured_save_rates(by_action, targeting, 50.0, ["2026-10-01"])
    path = tmp_path / "save_rates.json"
    path.write_text(json.dumps(payload))
    return path


def test_measured_rates_are_used_only_with_a_big_enough_control_group(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _save_rates_file(tmp_path, {"Personal call": 400, "Loyalty offer": 40})
    targeting = TargetingConfig(save_rates="measured")
    with caplog.at_level(logging.WARNING):
        used, record = rates_in_effect(targeting, path, min_control=100)
    measured_call = json.loads(path.read_text())["actions"]["Personal call"]["save_rate"]
    assert used.actions["Personal call"].save_rate == measured_call != 0.30
    assert used.actions["Personal call"].cost == 15.0
    assert used.actions["Loyalty offer"].save_rate == 0.15  # control 40 < 100
    assert used.actions["Win-back email"].save_rate == 0.05  # never measured
    assert record["mode"] == "measured" and record["source"] == str(path)
    assert record["actions"]["Personal call"]["from"] == "measured"
    assert record["actions"]["Loyalty offer"] == {
        "save_rate": 0.15,
        "from": "assumed",
        "why": "control group 40 < outcomes.min_control 100",
    }
    assert "Loyalty offer keeps its assumed rate 0.15" in caplog.text


def test_assumed_rates_ignore_any_file(tmp_path: Path) -> None:
    path = _save_rates_file(tmp_path, {"Personal call": 400})
    targeting = TargetingConfig()
    used, record = rates_in_effect(targeting, path, min_control=100)
    assert used == targeting
    assert record["mode"] == "assumed"
    assert {a["from"] for a in record["actions"].values()} == {"assumed"}


def test_measured_without_a_file_fails_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="run `churn outcomes` after a campaign") as caught:
        rates_in_effect(TargetingConfig(save_rates="measured"), tmp_path / "none.json", 100)
    assert "\n" not in str(caught.value)
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(UserError, match="not a save-rates file"):
        rates_in_effect(TargetingConfig(save_rates="measured"), tmp_path / "bad.json", 100)
