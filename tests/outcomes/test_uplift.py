"""The uplift judgement (churn.outcomes.uplift) on quick customers with hidden types."""

from __future__ import annotations

import pytest
from uplift_customers import outcome_rows

from churn.config import OutcomesConfig
from churn.outcomes.uplift import judge_uplift


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_uplift_beats_risk_ranking_when_effects_differ_by_customer_type(seed: int) -> None:
    block, model = judge_uplift(outcome_rows(seed, heterogeneous=True), OutcomesConfig())
    assert model is not None and block["fitted"] is True
    assert block["winner"] == "uplift" and block["qini_uplift"] > block["qini_risk"]
    assert block["qini_difference_low"] > 0
    assert block["fit_campaigns"] == ["2026-01-01", "2026-01-31"]
    assert block["judged_campaign"] == "2026-03-02"
    assert block["fit"]["n_contacted"] + block["fit"]["n_control"] == 6000
    assert block["judged"]["n_contacted"] + block["judged"]["n_control"] == 3000


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_risk_ranking_keeps_the_list_when_uplift_is_risk_in_disguise(seed: int) -> None:
    block, model = judge_uplift(outcome_rows(seed, heterogeneous=False), OutcomesConfig())
    assert block["fitted"] is True and model is not None
    assert block["winner"] == "risk"


def test_not_enough_outcomes_fits_nothing_and_says_why() -> None:
    one_campaign = outcome_rows(0, heterogeneous=True, campaigns=1)
    block, model = judge_uplift(one_campaign, OutcomesConfig())
    assert model is None and block["fitted"] is False and block["winner"] == "risk"
    assert block["reason"].startswith("not enough outcomes: fewer than two closed campaigns")
    small = outcome_rows(0, heterogeneous=True, n=400)  # 280 contacted, 120 control each
    block, model = judge_uplift(small, OutcomesConfig())
    assert model is None and "not enough outcomes: the fitting campaigns" in block["reason"]
    assert "outcomes.uplift_min_control = 300" in block["reason"]
    assert block["judged"]["n_contacted"] + block["judged"]["n_control"] == 400
