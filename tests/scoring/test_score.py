"""The score table: contract columns, bands, value at risk, model identity, replayed dates."""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pandas as pd
from trained_model import Trained

from churn.config import ScoringConfig
from churn.features.tables import build_scoring_snapshot
from churn.model.identity import ModelIdentity
from churn.schema import REASON_COLUMNS, SCORE_COLUMNS
from churn.scoring.score import (
    risk_bands,
    score_customers,
    scored_by,
    with_reasons,
)


def test_bands_follow_the_thresholds() -> None:
    p = np.array([0.0, 0.3299, 0.33, 0.5, 0.66, 0.6601, 1.0])
    assert risk_bands(p, ScoringConfig()).tolist() == [
        "low",
        "low",
        "medium",
        "medium",
        "medium",
        "high",
        "high",
    ]
    q = np.array([0.05, 0.1, 0.15, 0.2, 0.25])
    assert risk_bands(q, ScoringConfig(medium_from=0.1, high_above=0.2)).tolist() == [
        "low",
        "medium",
        "medium",
        "medium",
        "high",
    ]


def test_score_table_has_the_contract_columns_and_values(trained: Trained) -> None:
    snapshot = trained.scoring
    identity = ModelIdentity("models:/churn-classifier@champion", "churn-classifier", "3")
    scores = score_customers(snapshot, trained.model, identity, ScoringConfig())
    assert list(scores.columns) == list(SCORE_COLUMNS)
    assert len(scores) == len(snapshot) and scores["customer_id"].is_unique
    assert scores["churn_probability"].is_monotonic_decreasing
    assert scores["risk_rank"].tolist() == list(range(1, len(scores) + 1))
    assert np.allclose(
        scores["value_at_risk"], scores["churn_probability"] * scores["expected_value_12m"]
    )
    assert set(scores["risk_band"]) <= {"low", "medium", "high"}
    assert (scores.loc[scores["churn_probability"] > 0.66, "risk_band"] == "high").all()
    by_id = snapshot.set_index("customer_id")
    assert np.allclose(
        scores["p_alive"], by_id.loc[scores["customer_id"], "btyd_p_alive"].to_numpy()
    )
    assert (scores["segment"] == by_id.loc[scores["customer_id"], "segment"].to_numpy()).all()
    assert (scores[list(REASON_COLUMNS)] == "").all().all()
    assert set(scores["model_version"]) == {"3"} and set(scores["model_name"]) == {
        "churn-classifier"
    }
    assert pd.api.types.is_datetime64_any_dtype(scores["as_of"])
    assert scored_by(scores) == identity
    assert scored_by(scores).pinned_uri == "models:/churn-classifier/3"
    filled = with_reasons(
        scores,
        pd.DataFrame(
            {
                "customer_id": [scores["customer_id"].iloc[1]],
                "reason_1": ["x"],
                "reason_2": ["y"],
                "reason_3": [""],
            }
        ),
    )
    assert filled["reason_1"].tolist()[:3] == ["", "x", ""]
    assert list(filled.columns) == list(SCORE_COLUMNS)


def test_scoring_snapshot_for_any_date_uses_the_feature_code(trained: Trained) -> None:
    transactions = trained.transactions
    as_of = pd.Timestamp(trained.scoring["cutoff"].iloc[0]).date()
    again = build_scoring_snapshot(
        ibis.memtable(transactions), as_of, trained.snapshots, trained.features
    )
    key = ["customer_id"]
    pd.testing.assert_frame_equal(
        again.sort_values(key).reset_index(drop=True),
        trained.scoring.sort_values(key).reset_index(drop=True),
        check_like=True,
    )
    earlier = as_of - dt.timedelta(days=60)
    past = build_scoring_snapshot(
        ibis.memtable(transactions), earlier, trained.snapshots, trained.features
    )
    cut = transactions[transactions["ts"] < pd.Timestamp(earlier)]
    replay = build_scoring_snapshot(
        ibis.memtable(cut), earlier, trained.snapshots, trained.features
    )
    assert set(pd.to_datetime(past["cutoff"]).dt.date) == {earlier}
    pd.testing.assert_frame_equal(
        past.sort_values(key).reset_index(drop=True),
        replay.sort_values(key).reset_index(drop=True),
        check_like=True,
    )
    scores = score_customers(past, trained.model, "m", ScoringConfig())
    assert len(scores) == len(past) > 0
