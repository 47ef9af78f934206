"""Who to contact, with which action, under the campaign budget.

Each customer gets one action from the rules in params (first matching rule
wins), and with it a cost and a save rate. The expected net gain of contacting
them is ``churn_probability x expected_value_12m x save_rate - cost``, or, when the
scores carry ``predicted_uplift`` (``targeting.rank_by``, churn.outcomes.ranking),
``predicted_uplift x expected_value_12m - cost``. The
selection maximises the total expected gain under a cap on contacts and/or
money (``churn.scoring.budget_pick``: exact wherever it can be proven within
``targeting.max_seconds``, else the best pick found and its optimality gap).

A random control group, fixed per customer by a seeded hash of the id, is held
out of contact so the campaign's real save rate can be measured later; a
customer's assignment never depends on who else is in the table.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd

from churn.config import TargetingConfig
from churn.errors import UserError
from churn.features.segments import SEGMENTS
from churn.schema import TARGETING_COLUMNS
from churn.scoring.budget_pick import Selection, optimal_selection

NO_ACTION = "No action"


def control_group(customer_ids: pd.Series, seed: int, fraction: float) -> np.ndarray:
    """True for the customers held out: hash(seed, id) as a number in [0, 1) below ``fraction``."""
    if fraction <= 0:
        return np.zeros(len(customer_ids), dtype=bool)
    prefix = f"{seed}:".encode()
    blake2b = hashlib.blake2b
    # The digests side by side, read as big-endian integers by numpy in one go: the same
    # numbers as int.from_bytes on each, at half the cost over 2 M customers (issue 20).
    # (The ids as one object array first: iterating an Arrow-backed column costs more than
    # the hashing.)
    ids = np.asarray(customer_ids.to_numpy(dtype=object), dtype=object)
    digests = b"".join([blake2b(prefix + str(cid).encode(), digest_size=8).digest() for cid in ids])
    draws = np.frombuffer(digests, dtype=">u8").astype("float64")
    return draws / 2.0**64 < fraction


def assign_actions(scores: pd.DataFrame, config: TargetingConfig) -> pd.DataFrame:
    """action, contact_cost and save_rate per customer: the first rule that matches wins.

    Each row's rule is an integer, and the action, cost and save rate are looked up by
    it in one go: a text column mapped through dicts cost a second at 2 M rows (issue 20).
    """
    rule_of = np.full(len(scores), len(config.rules))  # past the last rule: no action
    open_rows = np.ones(len(scores), dtype=bool)
    value = scores["expected_value_12m"].to_numpy(dtype="float64", na_value=np.nan)
    for i, rule in enumerate(config.rules):
        unknown = sorted(set(rule.segments or ()) - set(SEGMENTS))
        if unknown:  # a typo would silently match nobody
            raise UserError(
                f"targeting.rules[{i}].segments: {unknown[0]!r} is not one of:"
                f" {', '.join(SEGMENTS)}"
            )
        match = open_rows.copy()
        if rule.segments is not None:
            match &= scores["segment"].isin(rule.segments).to_numpy(dtype=bool)
        if rule.bands is not None:
            match &= scores["risk_band"].isin(rule.bands).to_numpy(dtype=bool)
        if rule.min_value is not None:
            match &= value >= rule.min_value
        rule_of[match] = i
        open_rows &= ~match
    names = [rule.action for rule in config.rules] + [NO_ACTION]
    cost = [_rate(config.actions[n].cost if n in config.actions else None) for n in names]
    save = [_rate(config.actions[n].save_rate if n in config.actions else None) for n in names]
    action = pd.Series(np.asarray(names, dtype=object)[rule_of], index=scores.index, dtype=object)
    return pd.DataFrame(
        {
            "action": action.astype(str),
            "contact_cost": np.asarray(cost, dtype="float64")[rule_of],
            "save_rate": np.asarray(save, dtype="float64")[rule_of],
        },
        index=scores.index,
    )


def _rate(value: float | None) -> float:
    """An action's cost or save rate; 0 for no action (or none given)."""
    return 0.0 if value is None or math.isnan(value) else float(value)


def with_gains(scores: pd.DataFrame, config: TargetingConfig) -> pd.DataFrame:
    """``scores`` plus action, contact_cost, save_rate and expected_gain (0 without an
    action). Row by row, so Spark's executors compute the same bits on their batches
    (churn.scoring.spark_candidates) as the driver does on the whole table."""
    out = scores.copy()
    actions = assign_actions(out, config)
    for column in actions.columns:
        out[column] = actions[column]
    saved_share = out["churn_probability"] * out["save_rate"]
    if "predicted_uplift" in out.columns:  # issue 16: rank by uplift (churn.outcomes.ranking)
        saved_share = out["predicted_uplift"].fillna(0.0)
    out["expected_gain"] = saved_share * out["expected_value_12m"] - out["contact_cost"]
    out.loc[out["action"] == NO_ACTION, "expected_gain"] = 0.0
    return out


def worth_contacting(targets: pd.DataFrame) -> pd.Series:
    """Positive expected gain with an action: the only rows a budget pick can choose."""
    return (targets["expected_gain"] > 0) & (targets["action"] != NO_ACTION)


def budgeted_pick(
    candidates: pd.DataFrame, allowed: np.ndarray | None, config: TargetingConfig
) -> Selection:
    """The best set of ``candidates`` (``expected_gain``, ``contact_cost``) within the
    contact and money budgets; a customer not ``allowed`` (no consent) has no gain. One
    function, so that the DuckDB pick and Spark's driver-side pick cannot drift apart."""
    gains = candidates["expected_gain"].to_numpy(dtype="float64", na_value=np.nan)
    if allowed is not None:
        gains = np.where(allowed, gains, np.nan)
    return optimal_selection(
        gains,
        candidates["contact_cost"].to_numpy(),
        config.max_contacts,
        config.max_budget,
        config.max_seconds,
    )


def select_targets(
    scores: pd.DataFrame, config: TargetingConfig, contactable: pd.Series | None = None
) -> tuple[pd.DataFrame, Selection]:
    """The targets table (scores plus action, cost, expected gain and who gets contacted)
    and the budget pick behind it (its total, upper bound and optimality gap).

    ``targeted`` marks the optimal pick under the budget among customers who may
    be contacted (``contactable``, e.g. marketing consent; default everyone);
    ``control_group`` marks the seeded random hold-out; ``selected`` = targeted
    and not control. The control group is drawn from the targeted customers
    themselves, so it is comparable to the contacted ones: the budget is spent
    on targeted customers of whom about ``control_fraction`` are then held out.
    """
    out = with_gains(scores, config)
    allowed = None
    if contactable is not None:
        allowed = contactable.reindex(out.index).fillna(False).to_numpy(dtype=bool)
    pick = budgeted_pick(out, allowed, config)
    out["targeted"] = pick.chosen
    out["control_group"] = control_group(out["customer_id"], config.seed, config.control_fraction)
    out["selected"] = out["targeted"] & ~out["control_group"]
    return out[[*scores.columns, *TARGETING_COLUMNS]], pick
