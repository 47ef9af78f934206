"""Measure and adjust: with wrong assumed save rates, measured ones earn more.

The first list is picked with the assumed rates (a call saves 30 %, an offer 15 %)
while the truth is the other way round (8 % and 35 %). Its campaign is simulated
with those true effects, measured by the real read-out (DuckDB on Parquet), shrunk,
and the next list is picked by the real budget pick with ``targeting.save_rates:
measured``. Its realised gain (churn risk x value x TRUE save rate - cost over the
contacted customers) beats the next list picked with the assumed rates.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from churn.config import TargetingConfig
from churn.features.segments import SEGMENTS
from churn.outcomes.campaigns import read_out
from churn.outcomes.in_effect import rates_in_effect
from churn.outcomes.save_rates import measured_save_rates
from churn.scoring.targeting import select_targets

TRUE_RATES = {"Personal call": 0.08, "Loyalty offer": 0.35, "Win-back email": 0.05}
AS_OF = pd.Timestamp("2026-06-01")


def _scores(rng: np.random.Generator, n: int) -> pd.DataFrame:
    p = rng.uniform(0.2, 0.9, n)
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "as_of": AS_OF,
            "churn_probability": p,
            "expected_value_12m": rng.lognormal(4.6, 0.6, n),
            "segment": rng.choice(np.array(SEGMENTS), n),
            "risk_band": np.where(p > 0.66, "high", np.where(p > 0.33, "medium", "low")),
        }
    )


def _campaign(rng: np.random.Generator, targets: pd.DataFrame, folder: Path) -> tuple[Path, Path]:
    """What the list's contacts did: churn without contact with the scored probability."""
    listed = targets[targets["targeted"]]
    q = listed["churn_probability"].to_numpy()
    effect = listed["action"].map(TRUE_RATES).to_numpy()
    saved = ~listed["control_group"].to_numpy() & (rng.random(len(q)) < effect)
    retained = (rng.random(len(q)) >= q) | saved
    tx = pd.DataFrame(
        {
            "customer_id": [*listed["customer_id"][retained], "other"],
            "ts": [AS_OF + pd.Timedelta(days=10)] * int(retained.sum())
            + [AS_OF + pd.Timedelta(days=91)],
            "amount": 50.0,
        }
    )
    targets.to_parquet(folder / "targets.parquet")
    tx.to_parquet(folder / "tx.parquet")
    return folder / "targets.parquet", folder / "tx.parquet"


def _realised_gain(targets: pd.DataFrame) -> float:
    picked = targets[targets["selected"]]
    true = picked["action"].map(TRUE_RATES)
    value = picked["churn_probability"] * picked["expected_value_12m"] * true
    return float((value - picked["contact_cost"]).sum())


def test_measured_rates_earn_more_than_wrong_assumed_ones(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    first = TargetingConfig(max_contacts=None, control_fraction=0.3)
    targets, _ = select_targets(_scores(rng, 20_000), first)
    lists, tx = _campaign(rng, targets, tmp_path)
    by_action = read_out([lists], tx, horizon_days=90, campaign_days=30).intent_to_treat.by_action
    rates = measured_save_rates(by_action, first, prior_strength=50.0, campaigns=["2026-06-01"])
    (tmp_path / "save_rates.json").write_text(json.dumps(rates))
    measured_call = rates["actions"]["Personal call"]["save_rate"]
    measured_offer = rates["actions"]["Loyalty offer"]["save_rate"]
    assert measured_call < 0.2 < measured_offer  # the truth's order, not the assumption's

    nxt = _scores(rng, 6000)
    assumed = TargetingConfig(max_contacts=None, max_budget=3_000.0)
    measured, record = rates_in_effect(
        assumed.model_copy(update={"save_rates": "measured"}), tmp_path / "save_rates.json", 100
    )
    assert record["actions"]["Loyalty offer"]["from"] == "measured"
    gain_assumed = _realised_gain(select_targets(nxt, assumed)[0])
    gain_measured = _realised_gain(select_targets(nxt, measured)[0])
    assert gain_measured > 1.2 * gain_assumed, (gain_measured, gain_assumed)
