"""`churn outcomes` end to end on small real files: its own ingest of the raw export, the
contact log, every output file and the MLflow run (a real local store)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient
from quick_lists import write_campaign_project

from churn.cli import main

EFFECTS = {"Personal call": 0.3, "Loyalty offer": 0.2}


def _project(tmp_path: Path, with_contacts: bool) -> None:
    targets = write_campaign_project(3, EFFECTS, n=600)
    params: dict = {"tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}}
    if with_contacts:
        treated = targets[~targets["control_group"]]
        log = pd.DataFrame(
            {
                "customer": treated["customer_id"],
                "contacted_at": "2026-06-02",
                "reached": np.where(np.arange(len(treated)) % 4 == 0, "no", "yes"),
            }
        )
        log.to_csv("contacts.csv", index=False)
        params["ingest"] = {
            "contacts": {"source": "contacts.csv", "columns": {"date": "contacted_at"}}
        }
    Path("params.yaml").write_text(yaml.safe_dump(params))


def test_outcomes_writes_every_output_and_logs_to_mlflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _project(tmp_path, with_contacts=True)
    main(["outcomes"])
    metrics = json.loads(Path("metrics/outcomes.json").read_text())
    assert metrics["n_contacted"] + metrics["n_control"] == 600
    assert set(metrics["by_action"]) == set(EFFECTS)
    assert metrics["by_campaign"]["2026-06-01"]["horizon_closed"] is True
    reached = metrics["contacted_only"]
    n = metrics["n_contacted"]
    assert reached["n_contacted"] == n - (n + 3) // 4  # every fourth was not reached
    assert reached["n_control"] == metrics["n_control"] and "not random" in reached["arms"]
    assert metrics["contacts_log"]["rows_out"] == metrics["n_contacted"]
    uplift = metrics["uplift"]  # one campaign: nothing to judge an uplift model on
    assert uplift["fitted"] is False and uplift["winner"] == "risk"
    assert uplift["reason"].startswith("not enough outcomes: fewer than two closed campaigns")
    report = json.loads(Path("data/outcomes/ingest_report.json").read_text())
    assert report["rows_in"] == report["rows_out"] + report["rows_quarantined"]
    rates = json.loads(Path("data/outcomes/save_rates.json").read_text())
    assert set(rates["actions"]) == set(EFFECTS) and rates["min_control"] == 100
    plot = pd.read_csv("plots/outcomes_by_action.csv")
    assert list(plot["action"]) == sorted(EFFECTS)
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("churn-outcomes").experiment_id])[0]
    assert (
        run.data.metrics["by_action.Loyalty offer.n_control"]
        == (metrics["by_action"]["Loyalty offer"]["n_control"])
    )


def test_outcomes_without_a_list_says_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text("{}\n")
    with pytest.raises(SystemExit) as exit_:
        main(["outcomes"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert [line for line in err.splitlines() if "error" in line] == [
        "churn: error: no published list found: run `churn export` (paths.targets_table) or"
        " `churn nightly` first"
    ]
