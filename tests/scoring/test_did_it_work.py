"""The report's "Did it work?": the wording of each case, escaping, and when it is left out.

Read-outs are built by hand here (the numbers of a win, a loss, an interval that spans
zero, a small control group, an open horizon), so each sentence is checked against the
case it must name; tests/outcomes/test_report_section.py runs the real `churn outcomes`
and `churn report` end to end.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pandas as pd
import pytest
from test_report import _element_text, _tiny_scores, _tiny_targets

from churn.config import ReportConfig
from churn.scoring.did_it_work import (
    CampaignReadout,
    Effect,
    money_sentence,
    per_100,
    retention_sentence,
    section,
    verdict,
)
from churn.scoring.report import render_report

AS_OF = dt.date(2027, 1, 5)
HOSTILE_ACTION = '<script>alert("call")</script> & <b>call</b>'


def effect(lift: float, low: float, high: float, **changes: object) -> Effect:
    base = Effect(
        n_contacted=900,
        n_control=300,
        retention_contacted=0.5 + lift,
        retention_control=0.5,
        lift=lift,
        lift_ci_low=low,
        lift_ci_high=high,
        save_rate=0.2,
        save_rate_ci_low=0.1,
        save_rate_ci_high=0.3,
        incremental_revenue=9_000.0,
        incremental_revenue_ci_low=3_000.0,
        incremental_revenue_ci_high=15_000.0,
        cost=4_500.0,
        roi=1.0,
        horizon_closed=True,
        observed_days=90,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


WIN = effect(0.12, 0.04, 0.20)
LOSS = effect(-0.08, -0.14, -0.02)
SPANS_ZERO = effect(0.03, -0.05, 0.11)
SMALL_CONTROL = effect(0.30, 0.10, 0.50, n_control=22)  # a big "win" on 22 people


def readout(by_action: dict[str, Effect], **changes: object) -> CampaignReadout:
    base = CampaignReadout(
        data_end=dt.date(2026, 12, 30),
        campaigns=(dt.date(2026, 10, 1),),
        pooled=WIN,
        by_action=by_action,
        min_control=100,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_a_significant_win_says_how_many_more_stayed_with_its_interval() -> None:
    assert verdict(WIN, 100) == "win"
    assert retention_sentence("Personal call", WIN, 100) == (
        "Personal call kept 12 more customers in 100 than no contact (95 % interval 4 to 20)."
    )


def test_a_significant_loss_says_it_did_harm() -> None:
    assert verdict(LOSS, 100) == "loss"
    assert retention_sentence("Personal call", LOSS, 100) == (
        "Personal call did harm: 8 fewer customers in 100 stayed than with no contact"
        " (95 % interval 2 to 14 fewer)."
    )


def test_an_interval_spanning_zero_is_we_cannot_tell_yet_not_a_win() -> None:
    assert verdict(SPANS_ZERO, 100) == "unclear"
    sentence = retention_sentence("Loyalty offer", SPANS_ZERO, 100)
    assert sentence == (
        "Loyalty offer: we cannot tell yet. 3 more customers in 100 stayed than with no"
        " contact, but the 95 % interval runs from 5 fewer to 11 more."
    )
    assert "kept" not in sentence


def test_a_control_group_below_min_control_is_too_small_to_tell_whatever_its_interval() -> None:
    assert verdict(SMALL_CONTROL, 100) == "too-small"
    assert verdict(SMALL_CONTROL, 20) == "win"  # the param, not a constant, decides
    assert retention_sentence("Personal call", SMALL_CONTROL, 100) == (
        "Personal call: too few customers were held out to tell (22 in the control group;"
        " at least 100 are needed)."
    )


def test_no_control_at_all_cannot_be_measured() -> None:
    none = dataclasses.replace(WIN, n_control=0, lift=None, lift_ci_low=None, lift_ci_high=None)
    assert retention_sentence("Email", none, 0) == (
        "Email: no customer was held out, so its effect cannot be measured."
    )


def test_an_open_horizon_is_measured_so_far() -> None:
    open_win = dataclasses.replace(WIN, horizon_closed=False, observed_days=45)
    assert retention_sentence("Personal call", open_win, 100) == (
        "Personal call kept 12 more customers in 100 than no contact so far"
        " (95 % interval 4 to 20)."
    )
    shown = section(readout({"Personal call": open_win}), AS_OF, 90, "£")
    assert shown is not None
    assert shown.actions[0].so_far == "so far: 45 of 90 days"
    assert shown.pooled.so_far == ""  # the pooled read-out here has closed


def test_money_says_incremental_revenue_costs_and_return() -> None:
    assert money_sentence(WIN, "£") == (
        "Revenue beyond no contact: £9,000 (95 % interval £3,000 to £15,000) for £4,500 of"
        " contact costs: every £1 spent brought back £2.00 (return +1.00)."
    )
    unsure = effect(0.0, -0.1, 0.1, incremental_revenue_ci_low=-2_000.0, roi=-0.2,
                    incremental_revenue=3_600.0)  # fmt: skip
    assert money_sentence(unsure, "£").endswith(
        "every £1 spent brought back £0.80 (return -0.20); we cannot tell yet whether it paid."
    )
    lost = effect(0.0, -0.1, 0.1, incremental_revenue=-900.0, roi=-1.2)
    assert "-£900" in money_sentence(lost, "£")
    assert "no extra revenue to set against them" in money_sentence(lost, "£")


def test_small_shares_keep_a_decimal() -> None:
    assert [per_100(x) for x in (0.12, 0.004, -0.006, 0.0, 0.0096)] == ["12", "0.4", "0.6", "0",
                                                                       "1"]  # fmt: skip


def _report(readout_: CampaignReadout | None, as_of: dt.date = AS_OF) -> str:
    scores = _tiny_scores().assign(as_of=pd.Timestamp(as_of))
    return render_report(
        scores, _tiny_targets(scores), None, None, None, ReportConfig(), readout=readout_
    )


def test_the_report_shows_each_action_and_escapes_its_name() -> None:
    html = _report(readout({HOSTILE_ACTION: WIN, "Loyalty offer": SPANS_ZERO}))
    assert "<script" not in html and "<b>call" not in html
    escaped = "&lt;script&gt;alert(&#34;call&#34;)&lt;/script&gt; &amp; &lt;b&gt;call&lt;/b&gt;"
    assert html.count(escaped) == 2  # the table row and its sentence
    text = re.sub(r"\s+", " ", _element_text(html, "did-it-work"))
    assert f"{HOSTILE_ACTION} kept 12 more customers in 100 than no contact" in text
    assert "Loyalty offer: we cannot tell yet." in text
    table = _element_text(html, "did-it-work-actions")
    assert "Worked" in table and "Cannot tell yet" in table and "+12 (+4 to +20)" in table
    # it sits between the headline and the KPIs
    assert html.index('id="headline"') < html.index('id="did-it-work"') < html.index('id="kpis"')


def test_without_a_read_out_the_report_is_unchanged_and_has_no_section() -> None:
    plain = _report(None)
    assert "Did it work?" not in plain and ".finding" not in plain


@pytest.mark.parametrize("as_of", [dt.date(2026, 10, 1), dt.date(2026, 12, 29)])
def test_a_read_out_that_saw_purchases_after_the_as_of_date_is_left_out(as_of: dt.date) -> None:
    """A report at as_of shows what was known then: the same bytes as with no read-out."""
    assert _report(readout({"Personal call": WIN}), as_of) == _report(None, as_of)


def test_a_read_out_up_to_the_as_of_date_is_shown() -> None:
    html = _report(readout({"Personal call": WIN}), dt.date(2026, 12, 30))
    assert (
        "Did it work?" in html
        and "Purchases seen up to 2026-12-29; the numbers below pool the closed campaigns." in html
    )
