"""`churn report` after a real `churn outcomes`: the next list's report says whether the
last campaign worked; without a read-out it has no such section; a broken read-out file
fails in one line. Real files, the real CLI, a real local MLflow store."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from quick_lists import write_campaign_project

from churn.cli import main

EFFECTS = {"Personal call": 0.6, "Loyalty offer": 0.0}  # a clear win and no effect
NEXT_LIST = pd.Timestamp("2026-09-01")  # after the purchases the read-out sees


def _campaign(tmp_path: Path) -> pd.DataFrame:
    """A list of 2026-06-01 (30 % control) and the purchases after it, as a raw export."""
    targets = write_campaign_project(5, EFFECTS, n=800)
    params = {"tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}}
    Path("params.yaml").write_text(yaml.safe_dump(params))
    return targets


def _next_list(targets: pd.DataFrame) -> None:
    """The next run's scores and list (what `churn score` and `churn export` would write)."""
    table = targets.assign(
        as_of=NEXT_LIST,
        risk_rank=np.arange(1, len(targets) + 1),
        value_at_risk=targets["churn_probability"] * targets["expected_value_12m"],
        expected_gain=10.0,
        selected=~targets["control_group"],
    )
    table.to_parquet("data/scores/scores.parquet")
    table.to_parquet("data/scores/targets.parquet")


def _section_text(html: str) -> str:
    start = html.index('<section id="did-it-work">')
    body = html[start : html.index("</section>", start)]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


def test_the_next_report_says_whether_the_campaign_worked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    targets = _campaign(tmp_path)
    main(["outcomes"])
    metrics = json.loads(Path("metrics/outcomes.json").read_text())
    call, offer = metrics["by_action"]["Personal call"], metrics["by_action"]["Loyalty offer"]
    _next_list(targets)
    main(["report"])
    text = _section_text(Path("reports/retention_report.html").read_text(encoding="utf-8"))
    seen_to = pd.Timestamp(metrics["data_end"]) - pd.Timedelta(days=1)
    assert f"Purchases seen up to {seen_to.date()}; the numbers below pool the closed" in text
    # the call worked (and its interval says so); its sentence carries the read-out's numbers
    assert call["lift_ci_low"] > 0 and call["n_control"] >= 100
    low, high = round(100 * call["lift_ci_low"]), round(100 * call["lift_ci_high"])
    assert (
        f"Personal call kept {round(100 * call['lift'])} more customers in 100 than no contact"
        f" (95 % interval {low} to {high})."
    ) in text
    # the offer did nothing: its control group is too small for outcomes.min_control 100,
    # or its interval spans zero; never a win
    assert "Loyalty offer kept" not in text
    expected = (
        "Loyalty offer: too few customers were held out to tell"
        if offer["n_control"] < 100
        else "Loyalty offer: we cannot tell yet."
    )
    assert expected in text
    assert "a control group under 100 customers is too small to tell" in text


def test_without_a_read_out_the_report_has_no_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _next_list(_campaign(tmp_path))
    main(["report"])
    html = Path("reports/retention_report.html").read_text(encoding="utf-8")
    assert "Top targets" in html and "Did it work?" not in html


def test_a_broken_read_out_fails_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    _next_list(_campaign(tmp_path))
    Path("metrics").mkdir()
    Path("metrics/outcomes.json").write_text('{"n_contacted": 3}')
    with pytest.raises(SystemExit) as exit_:
        main(["report"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert [line for line in err.splitlines() if "error" in line] == [
        "churn: error: metrics/outcomes.json is not a read-out of this version of"
        " `churn outcomes` (KeyError('data_end')); rerun `churn outcomes`, or remove the file"
    ]
    assert not Path("reports/retention_report.html").exists()
