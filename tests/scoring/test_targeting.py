"""Targeting: the budgeted pick is optimal (or says how far off), actions follow the rules,
control is stable."""

from __future__ import annotations

import hashlib
import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churn.config import ActionConfig, ActionRule, TargetingConfig
from churn.errors import UserError
from churn.scoring.budget_pick import optimal_selection
from churn.scoring.export import ExportFilters, build_export
from churn.scoring.targeting import NO_ACTION, assign_actions, control_group, select_targets


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
    chosen = optimal_selection(np.array(gains), np.array(costs), max_contacts, max_budget).chosen
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
    chosen = optimal_selection(gains, costs, max_contacts=None, max_budget=15.0).chosen
    assert chosen.tolist() == [False, True, True, True]
    # With a contact cap of one, the call is best.
    assert optimal_selection(gains, costs, max_contacts=1, max_budget=15.0).chosen.tolist() == [
        True,
        False,
        False,
        False,
    ]


def test_four_cost_levels_and_both_budgets() -> None:
    rng = np.random.default_rng(0)
    gains = rng.normal(3, 4, size=12)
    costs = rng.choice([0.5, 2.0, 5.0, 15.0], size=12)
    chosen = optimal_selection(gains, costs, max_contacts=5, max_budget=20.0).chosen
    best = _brute_force(gains.tolist(), costs.tolist(), 5, 20.0)
    assert np.isclose(gains[chosen].sum(), best)


_LEVELS = [0.0, 0.5, 2.0, 5.0, 15.0, 40.0, 80.0]


@st.composite
def _instances(draw: st.DrawFn) -> tuple[list[float], list[float], int | None, float | None]:
    """Up to 10 customers on 2 to 6 cost levels; gains drawn from a few values make ties."""
    levels = draw(st.lists(st.sampled_from(_LEVELS), min_size=2, max_size=6, unique=True))
    gain = st.one_of(st.floats(-5, 60, allow_nan=False), st.sampled_from([1.0, 4.0, 7.5, 20.0]))
    rows = draw(st.lists(st.tuples(gain, st.sampled_from(levels)), min_size=0, max_size=10))
    caps = draw(st.sampled_from(["contacts", "money", "both", "none"]))
    contacts = draw(st.integers(0, 10)) if caps in ("contacts", "both") else None
    money = draw(st.floats(0, 150, allow_nan=False)) if caps in ("money", "both") else None
    return [g for g, _ in rows], [c for _, c in rows], contacts, money


def _feasible(
    chosen: np.ndarray,
    gains: list[float],
    costs: list[float],
    contacts: int | None,
    money: float | None,
) -> bool:
    picked = np.flatnonzero(chosen)
    return (
        all(gains[i] > 0 for i in picked)
        and (contacts is None or len(picked) <= contacts)
        and (money is None or sum(costs[i] for i in picked) <= money + 1e-9)
    )


@settings(max_examples=400, deadline=None)
@given(_instances())
def test_pick_on_two_to_six_cost_levels_matches_brute_force(
    instance: tuple[list[float], list[float], int | None, float | None],
) -> None:
    gains, costs, contacts, money = instance
    pick = optimal_selection(np.array(gains), np.array(costs), contacts, money)
    assert _feasible(pick.chosen, gains, costs, contacts, money)
    best = _brute_force(gains, costs, contacts, money)
    assert pick.exact and not pick.stopped_early and pick.gap == 0.0
    assert np.isclose(pick.total_gain, best, atol=1e-7)
    assert np.isclose(sum(gains[i] for i in np.flatnonzero(pick.chosen)), best, atol=1e-7)


@settings(max_examples=200, deadline=None)
@given(_instances())
def test_pick_stopped_at_once_is_feasible_and_its_bound_holds(
    instance: tuple[list[float], list[float], int | None, float | None],
) -> None:
    # No time at all for the search: the good pick and the price bound must still be right.
    gains, costs, contacts, money = instance
    pick = optimal_selection(np.array(gains), np.array(costs), contacts, money, max_seconds=1e-12)
    assert _feasible(pick.chosen, gains, costs, contacts, money)
    best = _brute_force(gains, costs, contacts, money)
    assert pick.total_gain <= best + 1e-7 <= pick.upper_bound + 2e-7
    assert pick.exact or (pick.stopped_early and pick.gap == pick.upper_bound - pick.total_gain)


def _best_by_counts(
    gains: np.ndarray, costs: np.ndarray, contacts: int | None, money: float
) -> float:
    """The optimum by trying every count per cost level (the top gains of each level)."""
    prefixes = []
    for cost in np.unique(costs[gains > 0]):
        top = np.sort(gains[(gains > 0) & (costs == cost)])[::-1]
        cap = min(len(top), contacts if contacts is not None else len(top))
        if cost > 0:
            cap = min(cap, int(money // cost))
        prefixes.append((cost, np.concatenate([[0.0], np.cumsum(top[:cap])])))
    grids = np.meshgrid(*(np.arange(len(p)) for _, p in prefixes), indexing="ij")
    total = sum(p[n] for (_, p), n in zip(prefixes, grids, strict=True))
    spent = sum(c * n for (c, _), n in zip(prefixes, grids, strict=True))
    ok = spent <= money + 1e-9
    if contacts is not None:
        ok &= sum(grids) <= contacts
    return float(np.max(np.where(ok, total, 0.0)))


@pytest.mark.parametrize(
    ("levels", "contacts", "money"),
    [
        ((15.0, 5.0, 0.5), 60, 150.0),  # the three default actions, both caps
        ((15.0, 5.0, 0.5), None, 150.0),
        ((40.0, 15.0, 5.0, 0.5), 40, 220.0),  # a fourth action: the case that used to hang
        ((40.0, 15.0, 5.0, 2.0, 0.5), None, 180.0),
        ((80.0, 40.0, 15.0, 5.0, 2.0, 0.5), 30, 260.0),
    ],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pick_matches_every_count_per_level(
    levels: tuple[float, ...], contacts: int | None, money: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    size = 300 if len(levels) <= 4 else 90  # keeps the oracle's grid of counts small
    costs = rng.choice(levels, size=size)
    gains = np.round(costs * rng.normal(1.3, 0.4, size=size), 1)  # rounding makes ties
    pick = optimal_selection(gains, costs, contacts, money)
    assert _feasible(pick.chosen, gains.tolist(), costs.tolist(), contacts, money)
    assert pick.exact
    assert np.isclose(pick.total_gain, _best_by_counts(gains, costs, contacts, money))


def test_equal_gains_within_a_level_are_picked_in_row_order() -> None:
    gains = np.array([3.0, 5.0, 5.0, 5.0, 5.0, 9.0])
    costs = np.array([0.5, 5.0, 5.0, 5.0, 5.0, 40.0])
    pick = optimal_selection(gains, costs, max_contacts=3, max_budget=10.5)
    assert pick.chosen.tolist() == [True, True, True, False, False, False]


def _hard_instance(n: int = 60_000) -> tuple[np.ndarray, np.ndarray]:
    """Odd costs and nearly the same gain per unit of money: a hard knapsack."""
    rng = np.random.default_rng(5)
    costs = rng.choice([8.6, 3.71, 4.05, 6.12, 7.77], size=n)
    return costs * rng.normal(1.2, 0.05, size=n), costs


def test_time_limit_returns_a_feasible_pick_with_its_gap(caplog: pytest.LogCaptureFixture) -> None:
    gains, costs = _hard_instance()
    with caplog.at_level("WARNING", logger="churn.scoring.budget_pick"):
        pick = optimal_selection(gains, costs, 8_000, 40_000.0, max_seconds=1e-3)
    assert pick.stopped_early and not pick.exact
    chosen = pick.chosen
    assert chosen.sum() <= 8_000 and costs[chosen].sum() <= 40_000.0 + 1e-9
    assert np.isclose(pick.total_gain, gains[chosen].sum())
    assert 0 < pick.gap == pick.upper_bound - pick.total_gain < 1e-3 * pick.total_gain
    summary = pick.summary()
    assert summary["exact"] is False and summary["time_limit_hit"] is True
    assert summary["optimality_gap"] == round(pick.gap, 2)
    assert "optimality gap" in caplog.text and "targeting.max_seconds" in caplog.text
    # Given more time, the pick can only get better, and the bound only tighter.
    better = optimal_selection(gains, costs, 8_000, 40_000.0, max_seconds=0.5)
    assert better.total_gain >= pick.total_gain - 1e-9
    assert better.upper_bound <= pick.upper_bound + 1e-9


def test_export_summary_reports_the_pick() -> None:
    scores = _scores(seed=3).assign(
        as_of=pd.Timestamp("2026-10-01"),
        risk_rank=lambda s: s["churn_probability"].rank(ascending=False, method="first"),
    )
    targets, pick = select_targets(scores, CONFIG)
    consent = pd.Series("ok", index=targets.index)
    targets = targets.assign(
        reason_1="",
        reason_2="",
        reason_3="",
        p_alive=0.5,
        recency_days=10.0,
        n_orders=2,
        revenue=100.0,
        clv_discounted=250.0,
        next_purchase_date=pd.Timestamp("2026-11-01"),
    )
    _, summary = build_export(targets, consent, None, ExportFilters(), pick)
    assert summary["budget_pick"] == pick.summary()
    assert summary["budget_pick"]["exact"] is True
    assert summary["budget_pick"]["optimality_gap"] == 0.0
    assert summary["budget_pick"]["targeted_expected_gain"] == round(
        float(targets.loc[targets["targeted"], "expected_gain"].sum()), 2
    )


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
    targets, pick = select_targets(scores, CONFIG, contactable=contactable)
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
    ).chosen
    assert np.isclose(allowed.loc[again, "expected_gain"].sum(), chosen["expected_gain"].sum())
    assert pick.exact and np.isclose(pick.total_gain, chosen["expected_gain"].sum())


def test_unknown_segment_in_a_rule_names_the_key() -> None:
    config = CONFIG.model_copy(
        update={"rules": (ActionRule(action="Offer", segments=("At rsk",)),)}
    )
    with pytest.raises(UserError, match=r"targeting.rules\[0\].segments: 'At rsk'"):
        assign_actions(_scores(), config)


def test_the_control_draw_is_the_blake2b_of_seed_and_id_as_a_fraction_of_2_64() -> None:
    """The draw is computed on all the digests at once (issue 20); it must stay exactly the
    per-customer draw it always was, so the same customers are held out run after run."""
    ids = pd.Series([f"C{i:07d}" for i in range(2_000)] + ["Ünïcode", "", "x" * 300])
    want = np.array(
        [
            int.from_bytes(hashlib.blake2b(f"42:{c}".encode(), digest_size=8).digest()) / 2.0**64
            < 0.3
            for c in ids
        ]
    )
    assert control_group(ids, seed=42, fraction=0.3).tolist() == want.tolist()
    assert 500 < want.sum() < 700
