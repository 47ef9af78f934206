"""Reasons: grouped, only pushes toward churn, the customer's own numbers, never the calendar."""

from __future__ import annotations

import numpy as np
import pandas as pd
from trained_model import Trained

from churn.schema import REASON_COLUMNS
from churn.scoring.reasons import (
    _GROUPS,
    DATE_FEATURES,
    NO_WARNING_SIGN,
    NOT_ACTIONABLE,
    top_reasons,
    with_value_reason,
)
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
    "n_purchase_days": 8,
}


def _reasons(contrib: list[float], **row: object) -> list[str]:
    rows = pd.DataFrame([{**ROW, **row}])
    matrix = np.array([[*contrib, -1.0]])  # trailing bias column
    return top_reasons(rows, matrix, FEATURES).iloc[0].tolist()


def test_sentences_carry_the_customers_numbers_in_push_order() -> None:
    #          rec  overdue gap  xmas  inhor rev90 rev180 ret  ord  m
    reasons = _reasons([0.2, 0.3, 0.1, 0.0, 0.0, 0.3, 0.1, 0.05, -0.4, 0.0])
    assert reasons == [
        "no purchase for 142 days, usually every 30 days",  # recency group: 0.6 in total
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


def test_every_actionable_model_feature_has_a_worded_reason(trained: Trained) -> None:
    """A new feature must join a reason group or be declared not actionable: a feature no
    group takes is never a reason, so it would silently drop out of every "Why". Country
    is not actionable (#18: "country: Germany" was a main churn reason)."""
    unworded = [
        f
        for f in trained.model.features
        if f not in NOT_ACTIONABLE and not any(group.matches(f) for group in _GROUPS)
    ]
    assert unworded == []
    assert "country" in trained.model.features and "country" in NOT_ACTIONABLE


def test_country_and_calendar_never_a_reason_however_hard_they_push() -> None:
    features = [*FEATURES, "country"]
    rows = pd.DataFrame([{**ROW, "country": "Germany"}])
    push = np.array([[0.0, 0.0, 0.0, 3.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5.0, -1.0]])
    reasons = top_reasons(rows, push, features).iloc[0].tolist()
    assert reasons == [NO_WARNING_SIGN, "", ""]
    push[0, 0] = 0.2  # a small push from recency is named; country still is not
    reasons = top_reasons(rows, push, features).iloc[0].tolist()
    assert reasons == ["no purchase for 142 days, usually every 30 days", "", ""]


RECENCY_ONLY = [0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_a_gap_is_called_a_habit_only_after_enough_purchase_days() -> None:
    """#18: "usually every 1" for a customer with two orders. One order has no gap, two
    purchase days one gap (no habit), three or more a rhythm, in days."""
    one = _reasons(RECENCY_ONLY, n_orders=1, n_purchase_days=1, mean_gap_days=float("nan"))
    assert one[0] == "no purchase for 142 days, and only one order so far"
    two = _reasons(RECENCY_ONLY, n_orders=2, n_purchase_days=2, mean_gap_days=1.0)
    assert two[0] == "no purchase for 142 days, after only 2 purchase days"
    # Two orders on one day: one purchase day, no gap at all.
    same_day = _reasons(RECENCY_ONLY, n_orders=2, n_purchase_days=1, mean_gap_days=0.0)
    assert same_day[0] == "no purchase for 142 days, and only one order so far"
    three = _reasons(RECENCY_ONLY, n_orders=3, n_purchase_days=3, mean_gap_days=1.0)
    assert three[0] == "no purchase for 142 days, usually every 1 day"
    rare = _reasons(RECENCY_ONLY, recency_days=20.0, n_purchase_days=4, mean_gap_days=61.0)
    assert rare[0] == "buys rarely: about every 61 days (last order 20 days ago)"


def _picked(reason_1: str, band: str, value: float, *rest: str) -> list[str]:
    frame = pd.DataFrame(
        [
            {
                "reason_1": reason_1,
                "reason_2": rest[0] if rest else "",
                "reason_3": rest[1] if len(rest) > 1 else "",
                "risk_band": band,
                "expected_value_12m": value,
            }
        ]
    )
    return with_value_reason(frame, "€").iloc[0][list(REASON_COLUMNS)].tolist()


def test_customers_picked_for_value_say_so_with_the_value() -> None:
    """#18: a quarter of the list read "no single warning sign"; they were picked for value."""
    assert _picked(NO_WARNING_SIGN, "medium", 1449.6) == [
        "picked for value: expected €1,450 in the next 12 months; risk is typical for"
        " active customers",
        "",
        "",
    ]
    # High value, low risk, weak signs: the value first, the signs after it, at most three.
    assert _picked("orders down", "low", 450.0, "spend down", "3 returns") == [
        "picked for value: expected €450 in the next 12 months; risk is low",
        "orders down",
        "spend down",
    ]
    # A risky customer with real signs keeps them; a row never picked stays empty.
    assert _picked("orders down", "high", 900.0) == ["orders down", "", ""]
    assert _picked("", "low", 900.0) == ["", "", ""]


def test_explain_only_the_customers_asked_for(trained: Trained) -> None:
    snapshot = trained.scoring
    wanted = [snapshot["customer_id"].iloc[5], "not-a-customer", snapshot["customer_id"].iloc[2]]
    reasons = explain(snapshot, trained.model, wanted)
    assert sorted(reasons["customer_id"]) == sorted(wanted[::2])
