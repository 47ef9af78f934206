"""Targeting: the budgeted pick is exactly optimal, actions follow the rules, control is stable."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churn.config import ActionConfig, ActionRule, TargetingConfig
from churn.errors import UserError
from churn.scoring.targeting import (
    NO_ACTION,
    assign_actions,
    control_group,
    optimal_selection,
    select_targets,
)


def _brute_force(
    gains: list[float], costs: list[float], max_contacts: int | None, max_budget: float | None
) -> float:
    best = 0.0
    for size in range(len(gains) + 1):
        for subset in itertools.combinations(range(len(gains)), size):
            if max_contacts is not None and size > max_contacts:
                continue
            if max_budget is not None and sum(costs[i] for i in subset) > max_budget + 1e-9:
                continue
            best = max(best, sum(gains[i] for i in subset))
    return best


_rows = st.lists(
    st.tuples(st.floats(-5, 30, allow_nan=False), st.sampled_from([0.0, 0.5, 2.0, 5.0, 15.0])),
    min_size=0,
    max_size=9,
)


@settings(max_examples=300, deadline=None)
@given(
    _rows,
    st.one_of(st.none(), st.integers(0, 9)),
    st.one_of(st.none(), st.floats(0, 40, allow_nan=False)),
)
def test_selection_matches_brute_force(
    rows: list[tuple[float, float]], max_contacts: int | None, max_budget: float | None
) -> None:
    gains = [g for g, _ in rows]
    costs = [c for _, c in rows]
    chosen = optimal_selection(np.array(gains), np.array(costs), max_contacts, max_budget)
    picked = np.flatnonzero(chosen)
    assert all(gains[i] > 0 for i in picked)
    if max_contacts is not None:
        assert len(picked) <= max_contacts
    if max_budget is not None:
        assert sum(costs[i] for i in picked) <= max_budget + 1e-9
    total = sum(gains[i] for i in picked)
    assert np.isclose(total, _brute_force(gains, costs, max_contacts, max_budget), atol=1e-7)


def test_money_budget_beats_greedy_by_gain() -> None:
    # Greedy by gain takes the 20.00 call and the budget is gone; three offers make 24.00.
    gains = np.array([20.0, 8.0, 8.0, 8.0])
    costs = np.array([15.0, 5.0, 5.0, 5.0])
    chosen = optimal_selection(gains, costs, max_contacts=None, max_budget=15.0)
    assert chosen.tolist() == [False, True, True, True]
    # With a contact cap of one, the call is best.
    assert optimal_selection(gains, costs, max_contacts=1, max_budget=15.0).tolist() == [
        True,
        False,
        False,
        False,
    ]


def test_four_cost_levels_and_both_budgets() -> None:
    rng = np.random.default_rng(0)
    gains = rng.normal(3, 4, size=12)
    costs = rng.choice([0.5, 2.0, 5.0, 15.0], size=12)
    chosen = optimal_selection(gains, costs, max_contacts=5, max_budget=20.0)
    best = _brute_force(gains.tolist(), costs.tolist(), 5, 20.0)
    assert np.isclose(gains[chosen].sum(), best)


def test_control_group_is_about_ten_percent_and_stable() -> None:
    ids = pd.Series([f"C{i:05d}" for i in range(10_000)])
    control = control_group(ids, seed=7, fraction=0.10)
    assert 0.09 < control.mean() < 0.11
    more = pd.concat(
        [pd.Series([f"N{i}" for i in range(3_000)]), ids.sample(frac=1, random_state=1)]
    )
    again = pd.Series(control_group(more, seed=7, fraction=0.10), index=more.to_numpy())
    assert (again.loc[ids.to_numpy()].to_numpy() == control).all()
    other_seed = control_group(ids, seed=8, fraction=0.10)
    assert (other_seed != control).any()
    assert not control_group(ids, seed=7, fraction=0.0).any()


def _scores(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 1, n)
    value = rng.gamma(1.0, 100.0, n)
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "churn_probability": p,
            "risk_band": np.where(p > 0.66, "high", np.where(p < 0.33, "low", "medium")),
            "expected_value_12m": value,
            "value_at_risk": p * value,
            "segment": rng.choice(["Champions", "At risk", "Lost"], n),
        }
    )


CONFIG = TargetingConfig(
    max_contacts=40,
    max_budget=150.0,
    control_fraction=0.2,
    seed=1,
    actions={
        "Call": ActionConfig(cost=15.0, save_rate=0.3),
        "Offer": ActionConfig(cost=5.0, save_rate=0.15),
        "Email": ActionConfig(cost=0.5, save_rate=0.05),
    },
    rules=(
        ActionRule(action="Call", bands=("high",), min_value=200.0),
        ActionRule(action="Offer", segments=("At risk", "Champions")),
        ActionRule(action="Email", segments=("At risk",)),
    ),
)


def test_first_matching_rule_wins_and_unmatched_get_no_action() -> None:
    scores = _scores()
    actions = assign_actions(scores, CONFIG)
    call = (scores["risk_band"] == "high") & (scores["expected_value_12m"] >= 200)
    assert (actions.loc[call, "action"] == "Call").all()
    offer = ~call & scores["segment"].isin(["At risk", "Champions"])
    assert (actions.loc[offer, "action"] == "Offer").all()  # Email never reached for At risk
    rest = ~call & ~offer
    assert (actions.loc[rest, "action"] == NO_ACTION).all()
    assert (actions.loc[rest, "contact_cost"] == 0).all()
    assert set(actions.loc[call, "contact_cost"]) == {15.0}


def test_targets_table_respects_budget_control_and_consent() -> None:
    scores = _scores()
    contactable = pd.Series(True, index=scores.index)
    contactable.iloc[:50] = False
    targets = select_targets(scores, CONFIG, contactable=contactable)
    expected = (
        targets["churn_probability"] * targets["expected_value_12m"] * targets["save_rate"]
        - targets["contact_cost"]
    )
    has_action = targets["action"] != NO_ACTION
    assert np.allclose(targets.loc[has_action, "expected_gain"], expected[has_action])
    chosen = targets[targets["targeted"]]
    assert len(chosen) <= 40 and chosen["contact_cost"].sum() <= 150.0 + 1e-9
    assert (chosen["expected_gain"] > 0).all()
    assert not chosen.index.isin(range(50)).any()
    assert (targets["selected"] == targets["targeted"] & ~targets["control_group"]).all()
    assert not (targets["selected"] & targets["control_group"]).any()
    assert list(targets.columns[: len(scores.columns)]) == list(scores.columns)
    # The pick is the optimum among the contactable customers.
    allowed = targets[contactable & (targets["expected_gain"] > 0)]
    again = optimal_selection(
        allowed["expected_gain"].to_numpy(), allowed["contact_cost"].to_numpy(), 40, 150.0
    )
    assert np.isclose(allowed.loc[again, "expected_gain"].sum(), chosen["expected_gain"].sum())


def test_unknown_segment_in_a_rule_names_the_key() -> None:
    config = CONFIG.model_copy(
        update={"rules": (ActionRule(action="Offer", segments=("At rsk",)),)}
    )
    with pytest.raises(UserError, match=r"targeting.rules\[0\].segments: 'At rsk'"):
        assign_actions(_scores(), config)
