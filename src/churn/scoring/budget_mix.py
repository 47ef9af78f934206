"""What the budget bought, by risk band: the report's answer to "why these customers?".

The list is ordered by expected gain (churn risk x value x save rate - cost), not by
risk, so its top can be all medium-risk customers with a personal call (#18). Counting
the picked customers, their cost and their expected gain per band shows the mix the
budget chose and what each part of it is expected to return.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

BANDS = ("high", "medium", "low")


def picked_by_band(targets: pd.DataFrame, scored: pd.Series | None = None) -> list[dict[str, Any]]:
    """One row per risk band (high first), then the total: customers picked (selected, never
    the control group), of how many in the band, their contact cost and expected gain.

    ``scored`` (every scored customer's risk band) counts the bands when the targets table
    holds only the customers worth contacting, as `churn export` on Spark writes it."""
    picked = targets["selected"].astype(bool)
    band = targets["risk_band"].astype(str)
    everyone = band if scored is None else scored.astype(str)
    rows = []
    for name in BANDS:
        mask = band == name
        rows.append(_row(name, targets[mask & picked], int((everyone == name).sum())))
    rows.append(_row("all", targets[picked], len(everyone)))
    return rows


def _row(name: str, chosen: pd.DataFrame, in_band: int) -> dict[str, Any]:
    cost = float(chosen["contact_cost"].sum())
    gain = float(chosen["expected_gain"].sum())
    return {
        "band": name,
        "picked": len(chosen),
        "in_band": in_band,
        "share": len(chosen) / in_band if in_band else None,
        "cost": cost,
        "expected_gain": gain,
        "gain_per_cost": gain / cost if cost else None,
    }
