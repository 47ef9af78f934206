"""Plain-word reasons behind a churn score, from the model's per-feature contributions.

A marketer cannot act on "overdue_ratio +0.41". Related features are grouped
into one reason (recency, overdue ratio and purchase gaps all say "hasn't
bought for a while"), a group's contributions are summed, and only groups that
push the score toward churn are named, with the customer's own numbers filled
in. Only what the customer did can be a reason: calendar features (days to
Christmas) describe the date and the country describes who they are, and nobody
can act on either (#18), so they are never named. A gap ("usually every 30
days") is only called a habit after enough purchase days to show one.

A customer the budget picked for their value rather than a warning sign is told
so, with the value (:func:`with_value_reason`): "no single warning sign" alone
made a quarter of the list look unexplained.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from churn.schema import REASON_COLUMNS

N_REASONS = len(REASON_COLUMNS)
# Features about the calendar, identical for every customer at a cutoff: never a reason.
DATE_FEATURES = frozenset({"days_to_christmas", "christmas_in_horizon"})
# Features nobody can act on: the calendar, and where the customer lives. Never a reason,
# however hard they push; every other model feature belongs to a reason group below.
NOT_ACTIONABLE = DATE_FEATURES | {"country", "first_country"}
# Purchase days needed before a gap between them is called a habit ("usually every N
# days"): one gap (two purchase days) is a coincidence, not a rhythm.
MIN_HABIT_DAYS = 3
# Pushes below this (log-odds) are noise, not a reason worth printing.
MIN_PUSH = 0.01
# When nothing in the history pushes toward churn the risk is the baseline; an empty
# "Why" would look like a bug to the marketer reading the list.
NO_WARNING_SIGN = "no single warning sign: the risk is the usual one for active customers"
# What a picked customer's first reason becomes when value, not a warning sign, put them
# on the list (with_value_reason).
PICKED_FOR_VALUE = "picked for value: expected {value} in the next 12 months; risk is {risk}"

Row = Mapping[str, Any]


def _num(row: Row, name: str) -> float:
    value = row.get(name)
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return number


def _count(value: float) -> str:
    return str(round(value)) if math.isfinite(value) else "?"


def _money(value: float) -> str:
    return f"{value:,.2f}" if math.isfinite(value) else "?"


def _percent(value: float) -> str:
    return f"{100 * value:.0f} %" if math.isfinite(value) else "? %"


def _orders(n: float) -> str:
    return f"{_count(n)} order" + ("" if n == 1 else "s")


def _days(n: float) -> str:
    return f"{_count(n)} day" + ("" if round(n) == 1 else "s")


def _purchase_days(row: Row) -> float:
    """Distinct purchase days (what a buying rhythm is made of), else orders."""
    days = _num(row, "n_purchase_days")
    return days if math.isfinite(days) else _num(row, "n_orders")


def _recency(row: Row) -> str:
    days, gap = _num(row, "recency_days"), _num(row, "mean_gap_days")
    visits = _purchase_days(row)
    if not math.isfinite(gap) or visits <= 1:
        return f"no purchase for {_days(days)}, and only one order so far"
    if not visits >= MIN_HABIT_DAYS:  # one gap is no habit: say how little there is
        return f"no purchase for {_days(days)}, after only {_count(visits)} purchase days"
    if days < gap:
        return f"buys rarely: about every {_days(gap)} (last order {_days(days)} ago)"
    return f"no purchase for {_days(days)}, usually every {_days(gap)}"


def _order_trend(row: Row) -> str:
    recent, before = _num(row, "n_orders_90d"), _num(row, "n_orders_prev_90d")
    if not (math.isfinite(recent) and math.isfinite(before)):
        return "fewer orders lately than before"
    if recent == 0 and before == 0:
        return "no orders in the last 6 months"
    if recent < before:
        return f"orders down: {_count(recent)} in the last 90 days vs {_count(before)} before"
    return f"only {_orders(recent)} in the last 90 days"


def _frequency(row: Row) -> str:
    orders, tenure = _num(row, "n_orders"), _num(row, "tenure_days")
    if orders == 1:
        return f"only one order in {_count(tenure)} days as a customer"
    lead = "only " if orders <= 3 else ""
    return f"{lead}{_orders(orders)} in {_count(tenure)} days as a customer"


def _spend(row: Row) -> str | None:
    last = _num(row, "revenue_90d")
    before = _num(row, "revenue_180d") - last
    if math.isfinite(last) and math.isfinite(before) and before > 0 and last < before:
        drop = 1 - max(last, 0.0) / before
        return (
            f"spend down {_percent(drop)} on the previous quarter"
            f" ({_money(last)} vs {_money(before)})"
        )
    if last == 0 and before == 0:
        return "no spend in the last 6 months"
    if not _num(row, "m_score") <= 2:
        return None  # a good spender: "low spend" would be false
    revenue, average = _num(row, "revenue"), _num(row, "avg_order_value")
    return f"low spend: {_money(revenue)} in total, {_money(average)} per order"


def _alive(row: Row) -> str:
    # No second percentage beside the churn risk (#18: "66 %" next to "75 %" confused):
    # the list carries one risk number, this says in words what the pattern shows.
    if _num(row, "btyd_p_alive") < 0.5:
        return "silent for much longer than their buying pattern suggests"
    return "quieter than their buying pattern suggests"


def _returns(row: Row) -> str | None:
    returns = _num(row, "n_returns")
    if not returns > 0:
        return None  # "no returns" is no reason a marketer can act on
    return f"{_count(returns)} returns on {_orders(_num(row, 'n_orders'))}"


def _seasonal(row: Row) -> str:
    share = _num(row, "holiday_order_share")
    if share == 0:
        return "has never ordered in the November-December season"
    if share >= 0.5:
        return f"buys mostly for the holidays: {_percent(share)} of orders in November-December"
    return f"only {_percent(share)} of orders in the November-December season"


def _segment(row: Row) -> str:
    return f'in the "{row.get("segment", "?")}" customer segment'


@dataclass(frozen=True)
class _Group:
    name: str
    matches: Callable[[str], bool]
    render: Callable[[Row], str | None]  # None: nothing worth saying for this row


def _named(*names: str) -> Callable[[str], bool]:
    return lambda feature: feature in names


def _window(kind: str, short: bool) -> Callable[[str], bool]:
    pattern = re.compile(rf"{kind}_(\d+)d")

    def matches(feature: str) -> bool:
        found = pattern.fullmatch(feature)
        return bool(found) and (int(found.group(1)) <= 90) == short  # type: ignore[union-attr]

    return matches


def _any(*tests: Callable[[str], bool]) -> Callable[[str], bool]:
    return lambda feature: any(test(feature) for test in tests)


# First matching group wins; order matters only where a feature could match two.
_GROUPS = (
    _Group(
        "recency",
        _named("recency_days", "overdue_ratio", "mean_gap_days", "gap_sd_days", "r_score"),
        _recency,
    ),
    _Group(
        "order_trend",
        _any(_named("trend_90d", "n_orders_prev_90d"), _window("n_orders", True)),
        _order_trend,
    ),
    _Group(
        "frequency",
        _any(
            _named(
                "n_orders",
                "n_purchase_days",
                "f_score",
                "tenure_days",
                "btyd_expected_purchases",
                "fm_score",
                "rfm_score",
            ),
            _window("n_orders", False),
        ),
        _frequency,
    ),
    _Group(
        "spend",
        _any(
            _named(
                "revenue",
                "avg_order_value",
                "max_order_value",
                "m_score",
                "btyd_expected_spend",
                "expected_value_12m",
            ),
            _window("revenue", True),
            _window("revenue", False),
        ),
        _spend,
    ),
    _Group(
        "alive",
        _named("btyd_p_alive", "btyd_p_no_purchase", "pnbd_p_alive", "pnbd_p_no_purchase"),
        _alive,
    ),
    _Group("returns", _named("n_returns", "return_rate"), _returns),
    _Group(
        "seasonal",
        _named("holiday_order_share", "n_holiday_orders", "n_orders_last_year_horizon"),
        _seasonal,
    ),
    _Group("segment", _named("segment"), _segment),
)


def reason_groups(features: Sequence[str]) -> list[tuple[_Group, list[int]]]:
    """Each reason group with the model-feature positions it sums.

    Features nobody can act on (``NOT_ACTIONABLE``) and features no group words are
    dropped: a raw "country: Germany" or "pnbd p alive: 0.99" is no reason a marketer can
    use (tests/scoring/test_reasons.py fails on a model feature no group takes).
    """
    members: dict[str, list[int]] = {}
    groups: dict[str, _Group] = {}
    for position, feature in enumerate(features):
        if feature in NOT_ACTIONABLE:
            continue
        group = next((g for g in _GROUPS if g.matches(feature)), None)
        if group is None:
            continue
        groups.setdefault(group.name, group)
        members.setdefault(group.name, []).append(position)
    return [(groups[name], positions) for name, positions in members.items()]


def top_reasons(
    rows: pd.DataFrame, contributions: np.ndarray, features: Sequence[str]
) -> pd.DataFrame:
    """reason_1..3 for each row: the groups pushing hardest toward churn, in plain words.

    ``contributions`` has one column per feature (plus an optional trailing bias
    column) in ``features`` order, rows aligned with ``rows``. Fewer than three
    groups pushing toward churn leave the remaining reasons empty; none at all
    gives ``NO_WARNING_SIGN`` as the first.
    """
    groups = reason_groups(features)
    out = pd.DataFrame("", index=rows.index, columns=list(REASON_COLUMNS))
    if rows.empty or not groups:
        return out
    # Summed group by group, not as a product with a 0/1 matrix: BLAS adds in an order
    # that depends on the host's kernel, and a last-bit difference could swap two reasons.
    values = np.asarray(contributions, dtype="float64")
    pushes = np.column_stack([values[:, positions].sum(axis=1) for _, positions in groups])
    order = np.argsort(-pushes, axis=1, kind="stable")
    records = rows.to_dict("records")
    texts = []
    for i, record in enumerate(records):
        named: list[str] = []
        for j in order[i]:
            if pushes[i, j] < MIN_PUSH or len(named) == N_REASONS:
                break
            text = groups[j][0].render(record)
            if text:
                named.append(text)
        named = named or [NO_WARNING_SIGN]
        texts.append(named + [""] * (N_REASONS - len(named)))
    return pd.DataFrame(texts, index=rows.index, columns=list(REASON_COLUMNS))


def with_value_reason(frame: pd.DataFrame, currency: str) -> pd.DataFrame:
    """``frame`` (reason_1..3, expected_value_12m, risk_band) with customers picked for
    their value saying so first, with the value.

    The budget ranks by expected gain, so a valuable customer with an ordinary risk is
    picked too; "no single warning sign" alone reads as a bug. Such a customer's first
    reason becomes "picked for value: expected £450 in the next 12 months; risk is typical
    for active customers"; a low-risk customer with weak signs gets it in front of them
    ("risk is low"), the weakest dropped. Rows without reasons (not picked) stay empty.
    """
    out = frame.copy()
    if out.empty:
        return out
    first = out["reason_1"].fillna("").astype(str)
    no_sign = first == NO_WARNING_SIGN
    low = (out["risk_band"].astype(str) == "low") & (first != "") & ~no_sign
    values = out["expected_value_12m"].to_numpy(dtype="float64", na_value=np.nan)
    reasons = out[list(REASON_COLUMNS)].to_numpy(dtype=object)
    # Worded on plain arrays and written back in one assignment: a pandas .loc per row
    # took a second for a 460-row list (issue 20).
    reworded: dict[int, list[str]] = {}
    for mask, risk in ((no_sign, "typical for active customers"), (low, "low")):
        for row in np.flatnonzero(mask.to_numpy()):
            value = _money_whole(values[row], currency)
            said = PICKED_FOR_VALUE.format(value=value, risk=risk)
            kept = [str(r) for r in reasons[row] if r and r != NO_WARNING_SIGN]
            texts = [said, *kept][:N_REASONS]
            reworded[int(row)] = texts + [""] * (N_REASONS - len(texts))
    if reworded:
        rows = sorted(reworded)
        worded = np.array([reworded[r] for r in rows], dtype=object)
        out.loc[out.index[rows], list(REASON_COLUMNS)] = worded
    return out


def _money_whole(value: float, currency: str) -> str:
    return f"{currency}{value:,.0f}" if math.isfinite(value) else "?"
