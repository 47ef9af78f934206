"""Uplift on real files: lists as nightly partitions, real transactions, the real feature
code at each list's date, the saved model, and the ranking the next list uses."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churn.config import FeaturesConfig, OutcomesConfig, SnapshotConfig, TargetingConfig
from churn.errors import UserError
from churn.outcomes.ranking import ranking_in_effect
from churn.outcomes.uplift_model import model_folder
from churn.outcomes.uplift_step import run_uplift
from churn.scoring.targeting import select_targets
from synthetic import canonical_transactions

LIST_DATES = (dt.date(2026, 3, 2), dt.date(2026, 6, 1))  # both horizons close by 2026-10-01
SMALL = OutcomesConfig(uplift_min_contacted=50, uplift_min_control=20, uplift_bootstrap=20)


def _publish(tx: pd.DataFrame, root: Path, rng: np.random.Generator) -> list[Path]:
    files = []
    for day in LIST_DATES:
        before = tx[
            (tx["ts"] < pd.Timestamp(day))
            & (tx["ts"] >= pd.Timestamp(day) - pd.Timedelta(days=365))
        ]
        ids = np.sort(before["customer_id"].unique())
        n = ids.size
        table = pd.DataFrame(
            {
                "customer_id": ids,
                "as_of": pd.Timestamp(day),
                "churn_probability": rng.random(n),
                "expected_value_12m": 100.0,
                "risk_band": "high",
                "segment": "At risk",
                "action": "Loyalty offer",
                "contact_cost": 5.0,
                "targeted": True,
                "control_group": rng.random(n) < 0.3,
            }
        )
        path = root / f"as_of={day}" / "targets.parquet"
        path.parent.mkdir(parents=True)
        table.to_parquet(path)
        files.append(path)
    return files


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("uplift")
    tx = canonical_transactions(7, 1200)
    tx.to_parquet(root / "transactions.parquet")
    return root, _publish(tx, root / "nightly", np.random.default_rng(7))


def test_outcomes_fits_on_the_earlier_list_judges_on_the_later_and_saves_the_model(
    shop: tuple[Path, list[Path]],
) -> None:
    root, files = shop
    block = run_uplift(
        files, root / "transactions.parquet", root, SMALL, SnapshotConfig(), FeaturesConfig()
    )
    assert block["fitted"] is True and block["winner"] in ("uplift", "risk")
    assert block["fit_campaigns"] == ["2026-03-02"] and block["judged_campaign"] == "2026-06-01"
    assert min(block["fit"].values()) >= 20 and min(block["judged"].values()) >= 20
    meta = json.loads((model_folder(root) / "uplift_model.json").read_text())
    assert "recency_days" in meta["features"]
    assert not {"churn_probability", "retained", "treated", "contact_cost"} & set(meta["features"])
    # With the default thresholds there is not enough: nothing fitted, the old model removed.
    block = run_uplift(
        files,
        root / "transactions.parquet",
        root,
        OutcomesConfig(),
        SnapshotConfig(),
        FeaturesConfig(),
    )
    assert block["fitted"] is False and block["reason"].startswith("not enough outcomes")
    assert not model_folder(root).exists()


def _scores(snapshot: pd.DataFrame) -> pd.DataFrame:
    n = len(snapshot)
    return pd.DataFrame(
        {
            "customer_id": snapshot["customer_id"].astype(str),
            "churn_probability": np.linspace(0.9, 0.1, n),
            "expected_value_12m": 200.0,
            "segment": "At risk",
            "risk_band": "high",
        }
    )


def test_rank_by_auto_uses_uplift_only_when_the_read_out_says_it_won(
    shop: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    root, files = shop
    run_uplift(
        files, root / "transactions.parquet", tmp_path, SMALL, SnapshotConfig(), FeaturesConfig()
    )
    from churn.features import backend
    from churn.features.tables import build_scoring_snapshot

    table = backend.read_transactions(backend.connect("duckdb"), root / "transactions.parquet")
    snapshot = build_scoring_snapshot(
        table, dt.date(2026, 9, 1), SnapshotConfig(), FeaturesConfig()
    )
    scores = _scores(snapshot)
    metrics = tmp_path / "outcomes.json"
    auto = TargetingConfig(rank_by="auto", control_fraction=0.0)
    for winner, used in (("risk", "risk"), ("uplift", "uplift")):
        metrics.write_text(json.dumps({"uplift": {"winner": winner}}))
        ranked, record = ranking_in_effect(auto, scores, tmp_path, metrics, lambda: snapshot)
        assert record["rank_by"] == used and ("predicted_uplift" in ranked) == (used == "uplift")
    targets, _ = select_targets(ranked, auto)
    expected = ranked["predicted_uplift"] * 200.0 - targets["contact_cost"]
    acting = targets["action"] != "No action"
    assert np.allclose(targets.loc[acting, "expected_gain"], expected[acting])
    risk, record = ranking_in_effect(TargetingConfig(), scores, tmp_path, metrics, lambda: snapshot)
    assert risk is scores and record == {"rank_by": "risk", "requested": "risk"}


def test_rank_by_uplift_without_a_model_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(
        UserError, match=r"targeting\.rank_by is 'uplift' but there is no uplift model"
    ):
        ranking_in_effect(
            TargetingConfig(rank_by="uplift"),
            pd.DataFrame(),
            tmp_path,
            tmp_path / "m.json",
            pd.DataFrame,
        )


def test_rank_by_auto_without_a_verdict_keeps_risk_and_says_why(tmp_path: Path) -> None:
    auto = TargetingConfig(rank_by="auto")
    metrics = tmp_path / "outcomes.json"
    scores = pd.DataFrame({"customer_id": ["a"]})
    _, record = ranking_in_effect(auto, scores, tmp_path, metrics, pd.DataFrame)
    assert record["rank_by"] == "risk" and record["why"].startswith("no read-out yet")
    metrics.write_text(json.dumps({"n_control": 3}))  # a read-out from before uplift
    _, record = ranking_in_effect(auto, scores, tmp_path, metrics, pd.DataFrame)
    assert record["why"] == f"{metrics} has no uplift verdict (rerun `churn outcomes`)"
    metrics.write_text(json.dumps({"uplift": {"winner": "uplift"}}))  # but no model saved
    _, record = ranking_in_effect(auto, scores, tmp_path, metrics, pd.DataFrame)
    assert record["why"] == f"no uplift model in {tmp_path / 'uplift_model'}"
