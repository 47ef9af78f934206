"""Who to contact, with which action, under the campaign budget.

Each customer gets one action from the rules in params (first matching rule
wins), and with it a cost and a save rate. The expected net gain of contacting
them is ``churn_probability x expected_value_12m x save_rate - cost``. The
selection maximises the total expected gain under a cap on contacts and/or
money, exactly: see ``optimal_selection`` for why a greedy pick is not enough.

A random control group, fixed per customer by a seeded hash of the id, is held
out of contact so the campaign's real save rate can be measured later; a
customer's assignment never depends on who else is in the table.
"""

from __future__ import annotations

import hashlib
import itertools
import math

import numpy as np
import pandas as pd

from churn.config import TargetingConfig
from churn.errors import UserError
from churn.features.segments import SEGMENTS

NO_ACTION = "No action"
TARGET_COLUMNS = [
    "expected_gain",
    "action",
    "contact_cost",
    "save_rate",
    "targeted",
    "selected",
    "control_group",
]
_EPS = 1e-9


def control_group(customer_ids: pd.Series, seed: int, fraction: float) -> np.ndarray:
    """True for the customers held out: hash(seed, id) as a number in [0, 1) below ``fraction``."""
    if fraction <= 0:
        return np.zeros(len(customer_ids), dtype=bool)
    prefix = f"{seed}:".encode()
    draws = np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(prefix + str(cid).encode(), digest_size=8).digest())
            for cid in customer_ids
        ),
        dtype="float64",
        count=len(customer_ids),
    )
    return draws / 2.0**64 < fraction


def assign_actions(scores: pd.DataFrame, config: TargetingConfig) -> pd.DataFrame:
    """action, contact_cost and save_rate per customer: the first rule that matches wins."""
    action = pd.Series(NO_ACTION, index=scores.index, dtype="object")
    open_rows = pd.Series(True, index=scores.index)
    value = scores["expected_value_12m"].astype("float64")
    for i, rule in enumerate(config.rules):
        unknown = sorted(set(rule.segments or ()) - set(SEGMENTS))
        if unknown:  # a typo would silently match nobody
            raise UserError(
                f"targeting.rules[{i}].segments: {unknown[0]!r} is not one of:"
                f" {', '.join(SEGMENTS)}"
            )
        match = open_rows.copy()
        if rule.segments is not None:
            match &= scores["segment"].isin(rule.segments)
        if rule.bands is not None:
            match &= scores["risk_band"].isin(rule.bands)
        if rule.min_value is not None:
            match &= value >= rule.min_value
        action[match] = rule.action
        open_rows &= ~match
    cost = {name: a.cost for name, a in config.actions.items()}
    save = {name: a.save_rate for name, a in config.actions.items()}
    return pd.DataFrame(
        {
            "action": action.astype(str),
            "contact_cost": action.map(cost).fillna(0.0).astype("float64"),
            "save_rate": action.map(save).fillna(0.0).astype("float64"),
        },
        index=scores.index,
    )


def _cap(count: int, cost: float, max_contacts: int | None, max_budget: float | None) -> int:
    cap = count if max_contacts is None else min(count, max_contacts)
    if max_budget is not None and cost > 0:
        cap = min(cap, math.floor(max_budget / cost + _EPS))
    return cap


def optimal_selection(
    gains: np.ndarray,
    costs: np.ndarray,
    max_contacts: int | None = None,
    max_budget: float | None = None,
) -> np.ndarray:
    """The subset with the largest total gain: at most ``max_contacts``, spending at most
    ``max_budget``; only positive gains are ever chosen (a loss never helps).

    Greedy by gain is wrong under a money cap (one 15.00 call may be worth less
    than three 5.00 offers), and a general knapsack solver is far too slow at
    this size. But costs come from a handful of actions: within one cost level
    the best picks are always the top gains, so the problem reduces to how
    many to take per level. Counts for all but two levels are enumerated, the
    next level is vectorised, and the largest level takes whatever the caps
    leave (prefix sums of positive gains only grow). The work is the product of
    the smaller levels' caps, tiny for the usual three or four actions.
    """
    gains = np.asarray(gains, dtype="float64")
    costs = np.asarray(costs, dtype="float64")
    chosen = np.zeros(len(gains), dtype=bool)
    eligible = np.isfinite(gains) & np.isfinite(costs) & (gains > 0)
    if not eligible.any() or max_contacts == 0:
        return chosen
    contacts = math.inf if max_contacts is None else float(max_contacts)
    budget = math.inf if max_budget is None else float(max_budget)
    if eligible.sum() <= contacts and costs[eligible].sum() <= budget + _EPS:
        return eligible  # everyone worth contacting fits
    if max_budget is None:  # only a head count: cost is irrelevant, the top gains win
        rows = np.flatnonzero(eligible)
        rows = rows[np.lexsort((rows, -gains[rows]))][: int(contacts)]
        chosen[rows] = True
        return chosen
    levels = []
    for cost in np.unique(costs[eligible]):
        rows = np.flatnonzero(eligible & (costs == cost))
        rows = rows[np.lexsort((rows, -gains[rows]))]  # best first, ties by position
        prefix = np.concatenate([[0.0], np.cumsum(gains[rows])])
        levels.append((float(cost), rows, prefix, _cap(len(rows), cost, max_contacts, max_budget)))
    levels.sort(key=lambda level: level[3])
    if len(levels) == 1:  # an empty level keeps the loop below free of special cases
        levels.insert(0, (0.0, np.zeros(0, dtype="int64"), np.zeros(1), 0))
    *looped, vector, fill = levels
    take_vector = np.arange(vector[3] + 1)
    best_total, best_counts = -1.0, [0] * len(levels)
    for counts in itertools.product(*(range(level[3] + 1) for level in looped)):
        spent = sum(n * level[0] for n, level in zip(counts, looped, strict=True))
        used = sum(counts)
        if spent > budget + _EPS or used > contacts:
            continue
        base = sum(level[2][n] for n, level in zip(counts, looped, strict=True))
        spend_v = spent + take_vector * vector[0]
        used_v = used + take_vector
        ok = (spend_v <= budget + _EPS) & (used_v <= contacts)
        room = np.minimum(contacts - used_v, fill[3])
        if fill[0] > 0:
            room = np.minimum(room, np.floor((budget - spend_v) / fill[0] + _EPS))
        take_fill = np.clip(np.where(ok, room, 0), 0, fill[3]).astype("int64")
        total = np.where(ok, base + vector[2][take_vector] + fill[2][take_fill], -np.inf)
        at = int(np.argmax(total))
        if total[at] > best_total + _EPS:
            best_total = float(total[at])
            best_counts = [*counts, int(take_vector[at]), int(take_fill[at])]
    for n, level in zip(best_counts, levels, strict=True):
        chosen[level[1][:n]] = True
    return chosen


def select_targets(
    scores: pd.DataFrame, config: TargetingConfig, contactable: pd.Series | None = None
) -> pd.DataFrame:
    """The targets table: scores plus action, cost, expected gain and who gets contacted.

    ``targeted`` marks the optimal pick under the budget among customers who may
    be contacted (``contactable``, e.g. marketing consent; default everyone);
    ``control_group`` marks the seeded random hold-out; ``selected`` = targeted
    and not control. The control group is drawn from the targeted customers
    themselves, so it is comparable to the contacted ones: the budget is spent
    on targeted customers of whom about ``control_fraction`` are then held out.
    """
    out = scores.copy()
    actions = assign_actions(out, config)
    for column in actions.columns:
        out[column] = actions[column]
    out["expected_gain"] = (
        out["churn_probability"] * out["expected_value_12m"] * out["save_rate"]
        - out["contact_cost"]
    )
    out.loc[out["action"] == NO_ACTION, "expected_gain"] = 0.0
    gains = out["expected_gain"].to_numpy(dtype="float64", na_value=np.nan)
    if contactable is not None:
        allowed = contactable.reindex(out.index).fillna(False).to_numpy(dtype=bool)
        gains = np.where(allowed, gains, np.nan)
    out["targeted"] = optimal_selection(
        gains, out["contact_cost"].to_numpy(), config.max_contacts, config.max_budget
    )
    out["control_group"] = control_group(out["customer_id"], config.seed, config.control_fraction)
    out["selected"] = out["targeted"] & ~out["control_group"]
    return out[[*scores.columns, *TARGET_COLUMNS]]
