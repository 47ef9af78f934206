"""What the budget bought, by risk band: the report's answer to "why these customers?".

The list is ordered by expected gain (churn risk x value x save rate - cost), not by
risk, so its top can be all medium-risk customers with a personal call (#18). Counting
the picked customers, their cost and their expected gain per band shows the mix the
budget chose and what each part of it is expected to return.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

BANDS = ("high", "medium", "low")


def picked_by_band(
    targets: pd.DataFrame, band_sizes: Mapping[str, int] | None = None
) -> list[dict[str, Any]]:
    """One row per risk band (high first), then the total: customers picked (selected, never
    the control group), of how many in the band, their contact cost and expected gain.

    ``band_sizes`` (every scored customer per risk band, from the score table) counts the
    bands when the targets table holds only the customers worth contacting, as `churn
    export` on Spark writes it; by default the targets table's own rows are counted."""
    picked = targets["selected"].astype(bool)
    band = targets["risk_band"].astype(str)
    sizes = band.value_counts() if band_sizes is None else band_sizes
    rows = []
    for name in BANDS:
        mask = band == name
        rows.append(_row(name, targets[mask & picked], int(sizes.get(name, 0))))
    everyone = len(targets) if band_sizes is None else int(sum(band_sizes.values()))
    rows.append(_row("all", targets[picked], everyone))
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
