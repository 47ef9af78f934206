"""The report's "Did it work?": a campaign read-out said in plain words.

The read-out itself is measured by ``churn outcomes`` (churn.outcomes, a layer
above this one), which hands the report a :class:`CampaignReadout` built from
metrics/outcomes.json; this module only decides what to say about it, so the
wording rules live in one place and the report never imports the measurement.

The rules, per group (every action, and all actions pooled):

* a control group smaller than ``min_control`` (the same ``outcomes.min_control``
  below which a measured save rate is never used for targeting) is "too small to
  tell", whatever its interval says;
* an interval of the retention difference that lies above zero is a win, below
  zero a loss, and one that spans zero is "we cannot tell yet", never a win;
* a group whose horizon has not closed is measured "so far".

Retention differences are said per 100 customers: a lift of 0.12 is "12 more
customers in 100".
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Effect:
    """Contacted against control for one group (None: not measurable, e.g. no control)."""

    n_contacted: int
    n_control: int
    retention_contacted: float | None
    retention_control: float | None
    lift: float | None  # retention contacted - control
    lift_ci_low: float | None
    lift_ci_high: float | None
    save_rate: float | None
    save_rate_ci_low: float | None
    save_rate_ci_high: float | None
    incremental_revenue: float | None
    incremental_revenue_ci_low: float | None
    incremental_revenue_ci_high: float | None
    cost: float
    roi: float | None  # (incremental revenue - cost) / cost
    horizon_closed: bool
    observed_days: int


@dataclass(frozen=True)
class CampaignReadout:
    """What the report needs of one read-out of ``churn outcomes``."""

    data_end: dt.date  # the first day its transactions have not seen
    campaigns: tuple[dt.date, ...]  # each campaign's first list date
    pooled: Effect
    by_action: dict[str, Effect]
    min_control: int  # smaller control groups are "too small to tell"
    pooled_over: str = "closed campaigns"  # or "open campaigns, so far" while none has closed


@dataclass(frozen=True)
class Finding:
    """One group's line in the section: its verdict, the sentence, the money sentence."""

    name: str
    verdict: str  # win | loss | unclear | too-small
    sentence: str
    money: str
    so_far: str  # "" when the horizon has closed, else e.g. "so far: 45 of 90 days"
    cells: dict[str, str]  # the table row, formatted


@dataclass(frozen=True)
class Section:
    """Everything the template shows; plain strings, escaped by the template."""

    intro: str
    pooled: Finding
    actions: list[Finding]
    min_control: int


def per_100(share: float) -> str:
    """A share as customers in 100: 0.123 -> "12"; below 1 in 100 with one decimal."""
    value = abs(share) * 100
    return f"{value:.1f}" if 0 < value < 0.95 else f"{value:.0f}"


def _range(low: float, high: float) -> str:
    """The interval of a difference in customers per 100, worded by its signs."""
    if low >= 0:
        return f"{per_100(low)} to {per_100(high)}"
    if high <= 0:
        return f"{per_100(high)} to {per_100(low)} fewer"
    return f"{per_100(low)} fewer to {per_100(high)} more"


def verdict(effect: Effect, min_control: int) -> str:
    """win, loss, unclear (the interval spans zero or is missing) or too-small."""
    if effect.n_control < min_control:
        return "too-small"
    low, high = effect.lift_ci_low, effect.lift_ci_high
    if effect.lift is None or low is None or high is None:
        return "unclear"
    if low > 0:
        return "win"
    if high < 0:
        return "loss"
    return "unclear"


def retention_sentence(name: str, effect: Effect, min_control: int) -> str:
    """One plain sentence on how many more (or fewer) customers stayed than with no contact."""
    kind = verdict(effect, min_control)
    lift, low, high = effect.lift, effect.lift_ci_low, effect.lift_ci_high
    if kind == "too-small":
        return (
            f"{name}: too few customers were held out to tell ({effect.n_control:,} in the"
            f" control group; at least {min_control:,} are needed)."
        )
    if lift is None or low is None or high is None:
        return f"{name}: no customer was held out, so its effect cannot be measured."
    when = "" if effect.horizon_closed else " so far"
    interval = f"(95 % interval {_range(low, high)})"
    if kind == "win":
        return (
            f"{name} kept {per_100(lift)} more customers in 100 than no contact{when} {interval}."
        )
    if kind == "loss":
        return (
            f"{name} did harm: {per_100(lift)} fewer customers in 100 stayed than with no"
            f" contact{when} {interval}."
        )
    more = "more" if lift >= 0 else "fewer"
    return (
        f"{name}: we cannot tell yet. {per_100(lift)} {more} customers in 100 stayed than with"
        f" no contact{when}, but the 95 % interval runs from {_range(low, high)}."
    )


def _money(value: float, currency: str) -> str:
    """As the rest of the report writes money: -£1,234."""
    return f"{'-' if value < 0 else ''}{currency}{abs(value):,.0f}"


def money_sentence(effect: Effect, currency: str) -> str:
    """Incremental revenue with its interval, the contact costs and the return."""
    revenue = effect.incremental_revenue
    low, high = effect.incremental_revenue_ci_low, effect.incremental_revenue_ci_high
    if revenue is None or low is None or high is None:
        return ""
    text = (
        f"Revenue beyond no contact: {_money(revenue, currency)} (95 % interval"
        f" {_money(low, currency)} to {_money(high, currency)}) for"
        f" {_money(effect.cost, currency)} of contact costs"
    )
    if effect.roi is not None and revenue > 0:
        text += (
            f": every {currency}1 spent brought back {currency}{1 + effect.roi:,.2f}"
            f" (return {effect.roi:+.2f})"
        )
    elif effect.roi is not None:
        text += f": no extra revenue to set against them (return {effect.roi:+.2f})"
    if low <= 0 <= high:
        text += "; we cannot tell yet whether it paid"
    return text + "."


def _finding(name: str, effect: Effect, min_control: int, horizon: int, currency: str) -> Finding:
    so_far = "" if effect.horizon_closed else f"so far: {effect.observed_days} of {horizon} days"
    return Finding(
        name=name,
        verdict=verdict(effect, min_control),
        sentence=retention_sentence(name, effect, min_control),
        money=money_sentence(effect, currency),
        so_far=so_far,
        cells=cells(effect, min_control, currency),
    )


VERDICTS = {
    "win": "Worked",
    "loss": "Did harm",
    "unclear": "Cannot tell yet",
    "too-small": "Too few held out",
}


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def signed_per_100(share: float) -> str:
    """A difference in customers per 100 with its sign, worded as :func:`per_100`."""
    text = per_100(share)
    return text if text == "0" else f"{'+' if share > 0 else '-'}{text}"


def _percent(share: float) -> str:
    text = f"{100 * share:.0f}"
    return "0" if text == "-0" else text  # no "-0" for a tiny negative


def _with_interval(
    value: float | None, low: float | None, high: float | None, fmt: Callable[[float], str]
) -> str:
    if value is None or low is None or high is None:
        return "n/a"
    return f"{fmt(value)} ({fmt(low)} to {fmt(high)})"


def cells(effect: Effect, min_control: int, currency: str) -> dict[str, str]:
    """The action table's cells: counts, retention, differences per 100, money, return."""
    revenue = effect.incremental_revenue
    return {
        "verdict": VERDICTS[verdict(effect, min_control)],
        "contacted": f"{effect.n_contacted:,}",
        "control": f"{effect.n_control:,}",
        "stayed_contacted": _share(effect.retention_contacted),
        "stayed_control": _share(effect.retention_control),
        "per_100": _with_interval(
            effect.lift, effect.lift_ci_low, effect.lift_ci_high, signed_per_100
        ),
        "save_rate": _with_interval(
            effect.save_rate, effect.save_rate_ci_low, effect.save_rate_ci_high, _percent
        ),
        "revenue": "n/a" if revenue is None else _money(revenue, currency),
        "cost": _money(effect.cost, currency),
        "roi": "n/a" if effect.roi is None else f"{effect.roi:+.2f}",
    }


def section(
    readout: CampaignReadout | None, as_of: dt.date, horizon_days: int, currency: str
) -> Section | None:
    """The section for a report at ``as_of``, or None when there is nothing to show.

    A read-out that saw purchases on or after ``as_of`` is left out: the report at
    ``as_of`` shows what was known then (as_of is "today", DESIGN.md), so a replayed
    or earlier report never shows a campaign's outcome from its own future.
    """
    if readout is None:
        return None
    if readout.data_end > as_of:
        log.info(
            'report: leaving out "Did it work?": the read-out saw purchases up to %s,'
            " after this report's as-of date %s",
            readout.data_end - dt.timedelta(days=1),
            as_of,
        )
        return None
    campaigns = ", ".join(d.isoformat() for d in readout.campaigns)
    intro = (
        f"Customers on the lists of the campaign(s) of {campaigns} against their control"
        " group (held out at random, never contacted); a customer stayed if they bought"
        f" within {horizon_days} days of being listed. Purchases seen up to"
        f" {readout.data_end - dt.timedelta(days=1)}; the numbers below pool the"
        f" {readout.pooled_over}."
    )
    judged = (readout.min_control, horizon_days, currency)
    return Section(
        intro=intro,
        pooled=_finding("All actions together", readout.pooled, *judged),
        actions=[
            _finding(name, effect, *judged) for name, effect in sorted(readout.by_action.items())
        ],
        min_control=readout.min_control,
    )
