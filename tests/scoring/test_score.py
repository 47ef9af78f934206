"""The score table: contract columns, bands, value at risk, model identity, replayed dates."""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pandas as pd
import pytest
from trained_model import Trained

from churn.config import ScoringConfig
from churn.features.tables import build_scoring_snapshot
from churn.model.churn_model import ChurnModel
from churn.model.identity import ModelIdentity
from churn.schema import REASON_COLUMNS, SCORE_COLUMNS
from churn.scoring.score import (
    risk_bands,
    riskiest_first,
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


def _table_sorted_by_pandas(
    snapshot: pd.DataFrame, model: ChurnModel, identity: ModelIdentity
) -> pd.DataFrame:
    """The score table as score_customers built it before issue 20: every column first,
    then one pandas stable sort of the whole table on (probability desc, id asc)."""
    scores = snapshot[["cutoff", "customer_id", "recency_days", "n_orders", "revenue"]]
    scores = scores.assign(segment=snapshot["segment"].astype(str))
    scores = scores.rename(columns={"cutoff": "as_of"})
    scores["as_of"] = pd.to_datetime(scores["as_of"])
    scores["churn_probability"] = model.churn_probability(snapshot)
    scores["risk_band"] = risk_bands(scores["churn_probability"], ScoringConfig())
    scores["p_alive"] = snapshot["btyd_p_alive"].astype("float64")
    scores["expected_value_12m"] = snapshot["expected_value_12m"].astype("float64")
    scores["value_at_risk"] = scores["churn_probability"] * scores["expected_value_12m"]
    scores["clv_discounted"] = snapshot["clv_discounted"].astype("float64")
    scores["next_purchase_date"] = pd.to_datetime(snapshot["next_purchase_date"])
    scores = scores.sort_values(
        ["churn_probability", "customer_id"], ascending=[False, True], kind="stable"
    )
    scores["risk_rank"] = np.arange(1, len(scores) + 1, dtype="int64")
    for column in REASON_COLUMNS:
        scores[column] = ""
    scores["model_name"] = identity.name
    scores["model_version"] = identity.version
    scores["model_uri"] = identity.uri
    return scores[list(SCORE_COLUMNS)].reset_index(drop=True)


def test_the_table_is_the_one_a_whole_table_sort_gives(trained: Trained) -> None:
    """Issue 20 orders the rows once, before the columns are built (a lexsort of the
    probability and the ids' codes): the same table, bit for bit, as sorting the finished
    table with pandas, here on a snapshot shuffled and with duplicated probabilities (whole
    blocks of customers copied under new, unsorted ids) so the id breaks real ties."""
    snapshot = trained.scoring.sample(frac=1.0, random_state=3)
    copies = snapshot.head(300).assign(customer_id=lambda f: "Z" + f["customer_id"].str[::-1])
    snapshot = pd.concat([snapshot, copies, copies.assign(customer_id="A" + copies["customer_id"])])
    identity = ModelIdentity("models:/churn-classifier@champion", "churn-classifier", "3")
    got = score_customers(snapshot, trained.model, identity, ScoringConfig())
    want = _table_sorted_by_pandas(snapshot, trained.model, identity)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    ties = got["churn_probability"].duplicated(keep=False)
    assert ties.sum() >= 600  # the copies tie with their originals, in id order


def test_riskiest_first_is_a_stable_sort_on_probability_then_id() -> None:
    p = np.array([0.2, 0.9, 0.2, 0.2, np.nan, 0.9])
    ids = pd.Series(["b", "z", "a", "b", "c", "y"], dtype="str")
    assert riskiest_first(p, ids).tolist() == [5, 1, 2, 0, 3, 4]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_riskiest_first_on_ids_in_order_is_the_order_of_their_sort_codes(seed: int) -> None:
    """Ids already in order (the snapshot's) skip their sort; the same order comes out,
    ties in probability and repeated ids included."""
    rng = np.random.default_rng(seed)
    ids = pd.Series(np.sort(rng.choice([f"c{i:03d}" for i in range(60)], 400)), dtype="str")
    p = rng.choice([0.1, 0.5, 0.9, np.nan], 400)
    codes, _ = pd.factorize(ids, sort=True, use_na_sentinel=False)
    assert ids.is_monotonic_increasing
    assert riskiest_first(p, ids).tolist() == np.lexsort((codes, -p)).tolist()
