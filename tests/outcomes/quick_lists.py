"""Quickly simulated published lists with a known true save rate per action.

Each listed customer has a chance ``q`` of churning untreated (no purchase within
the horizon). A contacted would-be churner is saved (buys after all) with the
action's true effect. The true save rate is defined as the measured one is, as an
expectation over the listed customers: sum(q x effect) / sum(q) per action.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

ACTIONS = {"Personal call": 15.0, "Loyalty offer": 5.0, "Win-back email": 0.5}


def draw_list(
    rng: np.random.Generator,
    effects: dict[str, float],
    n: int = 2000,
    control_fraction: float = 0.3,
    as_of: dt.date = dt.date(2026, 6, 1),
    horizon_days: int = 90,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """A targets table, its later transactions and the true save rate per action."""
    names = np.array(list(effects))
    action = names[rng.integers(0, len(names), n)]
    q = rng.beta(3, 2, n)
    effect = np.array([effects[a] for a in action])
    control = rng.random(n) < control_fraction
    retained_untreated = rng.random(n) >= q
    saved = ~control & ~retained_untreated & (rng.random(n) < effect)
    retained = retained_untreated | saved
    ids = np.char.add("c", np.arange(n).astype(str))
    targets = pd.DataFrame(
        {
            "customer_id": ids,
            "as_of": pd.Timestamp(as_of),
            "churn_probability": q,
            "expected_value_12m": 100.0,
            "risk_band": np.where(q > 0.66, "high", np.where(q > 0.33, "medium", "low")),
            "segment": "At risk",
            "action": action,
            "contact_cost": [ACTIONS.get(a, 1.0) for a in action],
            "targeted": True,
            "control_group": control,
        }
    )
    buy_day = rng.integers(1, horizon_days, n)
    tx = pd.DataFrame(
        {
            "customer_id": ids[retained],
            "ts": pd.Timestamp(as_of) + pd.to_timedelta(buy_day[retained], unit="D"),
            "amount": rng.lognormal(3.5, 0.5, int(retained.sum())),
        }
    )
    tx = pd.concat(  # the data runs to the horizon's end, so it is closed
        [
            tx,
            pd.DataFrame(
                {
                    "customer_id": ["other"],
                    "ts": [pd.Timestamp(as_of) + pd.Timedelta(days=horizon_days + 1)],
                    "amount": [1.0],
                }
            ),
        ]
    )
    truth = {a: float((q * effect)[action == a].sum() / q[action == a].sum()) for a in effects}
    # the retention difference's truth: saved would-be churners per listed customer
    truth |= {f"lift:{a}": float((q * effect)[action == a].mean()) for a in effects}
    return targets, tx, truth


def simulate_list(
    rng: np.random.Generator,
    folder: Path,
    effects: dict[str, float],
    n: int = 2000,
    control_fraction: float = 0.3,
    as_of: dt.date = dt.date(2026, 6, 1),
    horizon_days: int = 90,
    name: str = "targets.parquet",
) -> tuple[Path, Path, dict[str, float]]:
    """:func:`draw_list` written to Parquet in ``folder``."""
    targets, tx, truth = draw_list(rng, effects, n, control_fraction, as_of, horizon_days)
    folder.mkdir(parents=True, exist_ok=True)
    targets_path, tx_path = folder / name, folder / f"tx_{name}"
    targets.to_parquet(targets_path)
    tx.to_parquet(tx_path)
    return targets_path, tx_path, truth


def simulate_replications(
    rng: np.random.Generator,
    folder: Path,
    effects: dict[str, float],
    replications: int,
    n: int = 1500,
    control_fraction: float = 0.3,
) -> tuple[Path, Path, dict[str, float]]:
    """Many independent lists in one table: replication r's actions are named ``<a>#r``,
    so one read-out measures every replication and action at once."""
    lists, txs, truth = [], [], {}
    for r in range(replications):
        part, moves, true = draw_list(rng, effects, n, control_fraction)
        part["action"] = part["action"] + f"#{r}"
        part["customer_id"] = part["customer_id"] + f"-{r}"
        moves["customer_id"] = moves["customer_id"] + f"-{r}"
        lists.append(part)
        txs.append(moves)
        truth.update({f"{a}#{r}": v for a, v in true.items()})
    targets_path, tx_path = folder / "targets.parquet", folder / "tx.parquet"
    pd.concat(lists).to_parquet(targets_path)
    pd.concat(txs).to_parquet(tx_path)
    return targets_path, tx_path, truth


def write_campaign_project(seed: int, effects: dict[str, float], n: int) -> pd.DataFrame:
    """In the current folder: a published list (data/scores/targets.parquet) and the
    purchases after it as a raw export (data/raw/transactions.csv), for the real
    `churn outcomes`; returns the list."""
    targets, tx, _ = draw_list(np.random.default_rng(seed), effects, n=n)
    Path("data/scores").mkdir(parents=True)
    targets.to_parquet("data/scores/targets.parquet")
    raw = pd.DataFrame(
        {
            "Invoice": np.arange(len(tx)).astype(str),
            "InvoiceDate": tx["ts"].dt.strftime("%Y-%m-%d 10:00:00"),
            "CustomerID": tx["customer_id"],
            "Amount": tx["amount"].round(2),
        }
    )
    Path("data/raw").mkdir(parents=True)
    raw.to_csv("data/raw/transactions.csv", index=False)
    return targets
