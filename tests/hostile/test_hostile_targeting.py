"""Issue 13, item 13: one action more in params.yaml must not hang `churn export`.

With three contact costs the old exact pick was fast; a fourth (or fifth) cost level
made it enumerate the product of the levels' caps, and `export` and `nightly` stalled.
Here a small real project (generated transactions, the feature code, a LightGBM model,
`churn score`) gets five actions and a money cap, and `churn export` must finish, write
the list and report the pick's optimality gap in the export summary.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest
import yaml

from churn.config import FeaturesConfig, SnapshotConfig, TrainConfig
from churn.features.tables import build_feature_tables
from churn.model import tracking
from churn.model.train import train_model
from nightly_shop import run_cli
from synthetic import canonical_transactions

# (cost, save rate), cheapest first; the dearer the action, the more valuable the customers
# it goes to. Costs fit the small generated shop (median value at risk about 18), so most
# customers on every level are worth contacting and the money cap binds.
ACTIONS = {
    "Win-back email": (0.5, 0.10),
    "Loyalty offer": (1.5, 0.20),
    "Personal call": (3.0, 0.30),
    "Home visit": (6.0, 0.40),
    "Premium gesture": (12.0, 0.50),
}
MONEY_CAP = 6_000.0


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Transactions, scoring snapshot, a saved model and `churn score`'s scores table."""
    root = tmp_path_factory.mktemp("five-actions")
    transactions = canonical_transactions(seed=13, n_customers=6_000)
    tables = build_feature_tables(
        ibis.memtable(transactions), SnapshotConfig(n_train_cutoffs=3), FeaturesConfig()
    )
    config = TrainConfig(n_estimators=30, early_stopping_rounds=10, num_threads=1)
    model = train_model(tables.labelled, config).model
    (root / "data/interim").mkdir(parents=True)
    (root / "data/features").mkdir(parents=True)
    transactions.to_parquet(root / "data/interim/transactions.parquet", index=False)
    tables.scoring.to_parquet(root / "data/features/score.parquet", index=False)
    example = tables.scoring[model.features].head(3)
    example = example.astype({c: "string" for c in example.select_dtypes("object")})
    checksums = tracking.save_model(model, example, root / "models/churn_model")
    (root / "models/train_run.json").write_text(
        json.dumps({"registered_model": "churn-test", "model_sha256": checksums})
    )
    (root / "params.yaml").write_text("snapshots:\n  n_train_cutoffs: 3\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        assert run_cli("score") == 0
    yield root


def _five_actions(root: Path, **targeting: object) -> None:
    """params.yaml with five actions by value tier (equal-sized tiers) and a money cap."""
    scores = pd.read_parquet(root / "data/scores/scores.parquet")
    tiers = np.quantile(scores["expected_value_12m"], [0.8, 0.6, 0.4, 0.2])
    names = list(ACTIONS)[::-1]  # dearest first: the first matching rule wins
    rules = [
        {"action": name, "min_value": round(float(edge), 2)}
        for name, edge in zip(names, tiers, strict=False)
    ]
    rules.append({"action": names[-1]})
    params = {
        "snapshots": {"n_train_cutoffs": 3},
        "targeting": {
            "max_contacts": None,
            "max_budget": MONEY_CAP,
            "actions": {name: {"cost": c, "save_rate": s} for name, (c, s) in ACTIONS.items()},
            "rules": rules,
            **targeting,
        },
        "export": {"top_n": 5_000, "formats": ["csv"]},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _export(root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, pd.DataFrame, dict]:
    monkeypatch.chdir(root)
    code = run_cli("export")  # the stage itself (an option would make it a one-off)
    targets = pd.read_parquet(root / "data/scores/targets.parquet")
    summary = json.loads((root / "data/exports/retention_targets.summary.json").read_text())
    return code, targets, summary


def test_five_actions_and_a_money_cap_export_the_list_with_its_gap(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _five_actions(project)
    code, targets, summary = _export(project, monkeypatch)
    assert code == 0
    worth = targets[targets["expected_gain"] > 0]
    per_action = worth["action"].value_counts()
    # The shape that hung: five cost levels, each with many customers worth contacting.
    assert len(targets) > 3_000 and set(per_action.index) == set(ACTIONS)
    assert per_action.min() > 100
    picked = targets[targets["targeted"]]
    assert picked["contact_cost"].sum() <= MONEY_CAP + 1e-9
    assert picked["action"].nunique() >= 3
    pick = summary["budget_pick"]
    assert pick["exact"] is True and pick["time_limit_hit"] is False
    assert pick["optimality_gap"] == 0.0 and pick["optimality_gap_pct"] == 0.0
    assert pick["targeted_expected_gain"] == round(float(picked["expected_gain"].sum()), 2)
    assert pick["upper_bound"] == pick["targeted_expected_gain"]
    listed = pd.read_csv(project / "data/exports/retention_targets.csv")
    assert len(listed) == summary["exported"] == int(targets["selected"].sum()) > 0


def test_a_pick_stopped_by_the_time_limit_is_published_with_its_gap(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # No time for the search: the good pick is published with its proven upper bound. With
    # five cost levels under a money cap it is usually some cents short of proven optimal;
    # whether it is at one given cap depends on the fixture model's scores, so the first of
    # a few caps where it is short is the one judged.
    for cap in (MONEY_CAP, 5_000.0, 7_000.0, 4_000.0, 8_000.0, 3_000.0, 9_000.0):
        _five_actions(project, max_seconds=1e-6, max_budget=cap)
        capsys.readouterr()
        code, targets, summary = _export(project, monkeypatch)
        if summary["budget_pick"]["optimality_gap_pct"] > 0:
            break
    assert code == 0
    assert summary["budget_pick"]["optimality_gap_pct"] > 0, "no cap's quick pick fell short"
    picked = targets[targets["targeted"]]
    assert picked["contact_cost"].sum() <= cap + 1e-9
    pick = summary["budget_pick"]
    assert pick["exact"] is False and pick["time_limit_hit"] is True
    assert pick["targeted_expected_gain"] == round(float(picked["expected_gain"].sum()), 2)
    assert pick["upper_bound"] >= pick["targeted_expected_gain"]
    assert 0 < pick["optimality_gap_pct"] < 0.1
    warning = [line for line in capsys.readouterr().err.splitlines() if "budget pick" in line]
    assert len(warning) == 1
    assert "stopped at the time limit (targeting.max_seconds)" in warning[0]
    assert f"optimality gap {pick['optimality_gap']:.2f}" in warning[0]
    listed = pd.read_csv(project / "data/exports/retention_targets.csv")
    assert len(listed) == summary["exported"] == int(targets["selected"].sum()) > 0
