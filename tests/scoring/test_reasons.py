"""Reasons: grouped, only pushes toward churn, the customer's own numbers, never the calendar."""

from __future__ import annotations

import numpy as np
import pandas as pd
from trained_model import Trained

from churn.schema import REASON_COLUMNS
from churn.scoring.reasons import _GROUPS, DATE_FEATURES, NO_WARNING_SIGN, top_reasons
from churn.scoring.score import explain

FEATURES = [
    "recency_days",
    "overdue_ratio",
    "mean_gap_days",
    "days_to_christmas",
    "christmas_in_horizon",
    "revenue_90d",
    "revenue_180d",
    "n_returns",
    "n_orders",
    "m_score",
]
ROW = {
    "recency_days": 142.0,
    "overdue_ratio": 4.7,
    "mean_gap_days": 30.2,
    "days_to_christmas": 80,
    "christmas_in_horizon": 1,
    "revenue_90d": 40.0,
    "revenue_180d": 140.0,
    "n_returns": 2,
    "n_orders": 9,
    "m_score": 3,
}


def _reasons(contrib: list[float]) -> list[str]:
    rows = pd.DataFrame([ROW])
    matrix = np.array([[*contrib, -1.0]])  # trailing bias column
    return top_reasons(rows, matrix, FEATURES).iloc[0].tolist()


def test_sentences_carry_the_customers_numbers_in_push_order() -> None:
    #          rec  overdue gap  xmas  inhor rev90 rev180 ret  ord  m
    reasons = _reasons([0.2, 0.3, 0.1, 0.0, 0.0, 0.3, 0.1, 0.05, -0.4, 0.0])
    assert reasons == [
        "no purchase for 142 days, usually every 30",  # recency group: 0.6 in total
        "spend down 60 % on the previous quarter (40.00 vs 100.00)",  # spend: 0.4
        "2 returns on 9 orders",
    ]


def test_only_pushes_toward_churn_and_never_the_calendar() -> None:
    # The calendar pushes hardest, the rest pull toward staying: no warning sign.
    reasons = _reasons([-0.2, -0.1, 0.0, 2.0, 1.5, -0.3, 0.0, -0.1, 0.0, 0.0])
    assert reasons == [NO_WARNING_SIGN, "", ""]
    # A single small push is named once; the empty slots stay empty.
    reasons = _reasons([0.0, 0.0, 0.0, 2.0, 1.5, 0.0, 0.0, 0.2, 0.0, 0.0])
    assert reasons == ["2 returns on 9 orders", "", ""]


def test_a_group_is_judged_by_its_net_push() -> None:
    # recency +0.5 and overdue -0.45: net +0.05, below the returns group's +0.1.
    reasons = _reasons([0.5, -0.45, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.0, 0.0])
    assert reasons[0] == "2 returns on 9 orders"
    assert reasons[1].startswith("no purchase for 142 days")


def test_real_model_reasons_are_words_and_skip_date_features(trained: Trained) -> None:
    snapshot = trained.scoring
    ids = snapshot["customer_id"].head(300).tolist()
    reasons = explain(snapshot, trained.model, ids)
    assert reasons["customer_id"].tolist() == ids
    assert list(reasons.columns) == ["customer_id", *REASON_COLUMNS]
    text = " ".join(reasons[list(REASON_COLUMNS)].to_numpy().ravel())
    assert (reasons["reason_1"] != "").all()
    assert (reasons["reason_1"] != NO_WARNING_SIGN).mean() > 0.5
    for name in DATE_FEATURES:
        assert name not in text and name.replace("_", " ") not in text
    assert "christmas" not in text.lower()
    assert "_" not in text  # plain words, no column names
    # Each row names a reason group at most once.
    for row in reasons[list(REASON_COLUMNS)].itertuples(index=False):
        named = [r for r in row if r]
        assert len(set(named)) == len(named)


def test_every_model_feature_has_worded_reason_but_country(trained: Trained) -> None:
    """A new feature must join a reason group, or the list shows its raw column name and
    value ("pnbd p alive: 0.99..."). Country alone still reads as "country: ..." (#18)."""
    unworded = [
        f
        for f in trained.model.features
        if f not in DATE_FEATURES and not any(group.matches(f) for group in _GROUPS)
    ]
    assert unworded == ["country"]


def test_explain_only_the_customers_asked_for(trained: Trained) -> None:
    snapshot = trained.scoring
    wanted = [snapshot["customer_id"].iloc[5], "not-a-customer", snapshot["customer_id"].iloc[2]]
    reasons = explain(snapshot, trained.model, wanted)
    assert sorted(reasons["customer_id"]) == sorted(wanted[::2])
