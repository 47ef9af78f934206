"""Quick outcome rows with hidden customer types, as churn simulate-campaign defines them.

Each listed customer has two features the churn model would see (``recency_days``,
``orders_per_year``) and a hidden type drawn from them:

* **lost cause**: long gone (mostly the high recency ones): rarely buys untreated;
* **buy anyway**: recent and frequent: buys untreated;
* **persuadable**: the rest: would not buy in time untreated.

A contacted would-be churner is saved (buys after all) with the effect of their
type. ``heterogeneous`` effects follow the simulation (persuadable 0.45, lost cause
0.02); otherwise every would-be churner is saved with the same chance, so uplift is
proportional to churn risk and ranking by risk is already the best ranking.
``churn_probability`` is the true chance of not buying untreated given the features,
i.e. a perfect churn model.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

BUY_UNTREATED = {"lost_cause": 0.03, "buy_anyway": 0.9, "persuadable": 0.1}
HETEROGENEOUS = {"lost_cause": 0.02, "buy_anyway": 0.0, "persuadable": 0.45}
HOMOGENEOUS = {"lost_cause": 0.3, "buy_anyway": 0.3, "persuadable": 0.3}


def _type_shares(recency: np.ndarray, frequency: np.ndarray) -> np.ndarray:
    """Per row, the chance of each type (lost cause, buy anyway, persuadable)."""
    lost = 1 / (1 + np.exp(-(recency - 0.65) * 14))
    anyway = (1 - lost) / (1 + np.exp(-(frequency - 0.55) * 12))
    return np.column_stack([lost, anyway, 1 - lost - anyway])


def campaign_rows(
    rng: np.random.Generator,
    campaign: dt.date,
    n: int,
    heterogeneous: bool,
    control_fraction: float = 0.3,
) -> pd.DataFrame:
    """One campaign's outcome rows (the columns churn.outcomes.uplift_rows gives)."""
    recency, frequency = rng.random(n), rng.random(n)
    shares = _type_shares(recency, frequency)
    kinds = np.array(list(BUY_UNTREATED))
    kind = kinds[(rng.random(n)[:, None] > shares.cumsum(axis=1)).sum(axis=1).clip(0, 2)]
    buy = np.array([BUY_UNTREATED[k] for k in kinds])
    effects = HETEROGENEOUS if heterogeneous else HOMOGENEOUS
    effect = pd.Series(kind).map(effects).to_numpy()
    treated = rng.random(n) >= control_fraction
    bought = rng.random(n) < pd.Series(kind).map(BUY_UNTREATED).to_numpy()
    saved = treated & ~bought & (rng.random(n) < effect)
    return pd.DataFrame(
        {
            "campaign": pd.Timestamp(campaign),
            "as_of": pd.Timestamp(campaign),
            "customer_id": [f"{campaign:%Y%m%d}-{i}" for i in range(n)],
            "treated": treated,
            "retained": bought | saved,
            "contact_cost": 5.0,
            "churn_probability": 1 - shares @ buy,
            "expected_value_12m": rng.lognormal(5.0, 0.3, n),
            "recency_days": recency * 365,
            "orders_per_year": frequency * 12,
        }
    )


def outcome_rows(seed: int, heterogeneous: bool, n: int = 3000, campaigns: int = 3) -> pd.DataFrame:
    """``campaigns`` monthly campaigns of ``n`` listed customers each."""
    rng = np.random.default_rng(seed)
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=30 * i) for i in range(campaigns)]
    return pd.concat([campaign_rows(rng, d, n, heterogeneous) for d in days], ignore_index=True)
