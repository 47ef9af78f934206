"""Contacted versus control, per group: the typed read-out every consumer uses.

:func:`measurements` turns the per-arm sums of ``churn.outcomes.measure.group_sums``
into one :class:`Measurement` per group (pooled, per campaign, action, risk band,
segment). The report ("Did it work?") and an uplift model read these objects,
not the SQL.

Definitions, per group:

* retention = share of customers with a purchase within the horizon;
  churn = 1 - retention;
* lift = retention_contacted - retention_control (Newcombe interval);
* save rate = (churn_control - churn_contacted) / churn_control, the share of
  would-be churners the contact kept (Katz interval of the churn ratio);
* revenue per customer in the horizon, and its difference (Welch interval);
* incremental revenue = that difference x contacted customers (same interval, scaled);
* cost = the contacted customers' contact costs; roi = (incremental revenue - cost) / cost.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from churn.outcomes import intervals


@dataclass(frozen=True)
class Measurement:
    n_contacted: int
    n_control: int
    retention_contacted: float | None
    retention_control: float | None
    lift: float | None
    lift_ci_low: float | None
    lift_ci_high: float | None
    save_rate: float | None
    save_rate_ci_low: float | None
    save_rate_ci_high: float | None
    churned_contacted: int
    churned_control: int
    revenue_per_contacted: float | None
    revenue_per_control: float | None
    revenue_difference: float | None
    revenue_difference_ci_low: float | None
    revenue_difference_ci_high: float | None
    incremental_revenue: float | None
    incremental_revenue_ci_low: float | None
    incremental_revenue_ci_high: float | None
    cost: float
    roi: float | None
    horizon_closed: bool
    observed_days: int  # the horizon, or the days seen so far while it is open

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Readout:
    """One read-out: pooled over closed campaigns, and each breakdown by its key."""

    pooled: Measurement
    by_campaign: dict[str, Measurement]
    by_action: dict[str, Measurement]
    by_band: dict[str, Measurement]
    by_segment: dict[str, Measurement]

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.pooled.as_dict(),
            "by_campaign": {k: m.as_dict() for k, m in self.by_campaign.items()},
            "by_action": {k: m.as_dict() for k, m in self.by_action.items()},
            "by_band": {k: m.as_dict() for k, m in self.by_band.items()},
            "by_segment": {k: m.as_dict() for k, m in self.by_segment.items()},
        }


_MONEY = ("incremental_revenue", "revenue_")  # rounded to cents


def _number(value: Any, digits: int = 6) -> float | None:
    value = float(value)
    return round(value, digits) if np.isfinite(value) else None


def _columns(sums: pd.DataFrame) -> dict[str, np.ndarray]:
    """Every measured column for every group row, vectorised."""
    n1, n0 = sums["n1"].to_numpy("float64"), sums["n0"].to_numpy("float64")
    r1, r0 = sums["r1"].to_numpy("float64"), sums["r0"].to_numpy("float64")
    lift = intervals.proportion_difference(r1, n1, r0, n0)
    save = intervals.save_rate(n1 - r1, n1, n0 - r0, n0)
    revenue = intervals.mean_difference(
        sums["s1"].to_numpy(), sums["q1"].to_numpy(), n1, sums["s0"].to_numpy(),
        sums["q0"].to_numpy(), n0,
    )  # fmt: skip
    cost = sums["cost"].to_numpy("float64")
    incremental = revenue.estimate * n1
    with np.errstate(divide="ignore", invalid="ignore"):
        roi = np.where(cost > 0, (incremental - cost) / cost, np.nan)
        per1, per0 = sums["s1"].to_numpy() / n1, sums["s0"].to_numpy() / n0
    return {
        "retention_contacted": lift_arm(r1, n1),
        "retention_control": lift_arm(r0, n0),
        "lift": lift.estimate, "lift_ci_low": lift.low, "lift_ci_high": lift.high,
        "save_rate": save.estimate, "save_rate_ci_low": save.low, "save_rate_ci_high": save.high,
        "revenue_per_contacted": per1, "revenue_per_control": per0,
        "revenue_difference": revenue.estimate,
        "revenue_difference_ci_low": revenue.low, "revenue_difference_ci_high": revenue.high,
        "incremental_revenue": incremental,
        "incremental_revenue_ci_low": revenue.low * n1,
        "incremental_revenue_ci_high": revenue.high * n1,
        "roi": roi,
    }  # fmt: skip


def lift_arm(retained: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, retained / np.where(n > 0, n, 1), np.nan)


def measurements(sums: pd.DataFrame) -> Readout:
    """The typed read-out from ``group_sums``' rows."""
    columns = _columns(sums)
    found: dict[str, dict[str, Measurement]] = {}
    pooled: Measurement | None = None
    records = [{str(k): v for k, v in r.items()} for r in sums.to_dict("records")]
    for i, row in enumerate(records):
        values = {
            name: _number(col[i], 2 if name.startswith(_MONEY) else 6)
            for name, col in columns.items()
        }
        item = Measurement(
            n_contacted=int(row["n1"]),
            n_control=int(row["n0"]),
            churned_contacted=int(row["n1"] - row["r1"]),
            churned_control=int(row["n0"] - row["r0"]),
            cost=round(float(row["cost"]), 2),
            horizon_closed=bool(row["closed"]),
            observed_days=int(row["observed_days"]),
            **values,
        )
        if row["level"] == "pooled":
            pooled = item
        else:
            found.setdefault(str(row["level"]), {})[str(row["key"])] = item
    assert pooled is not None
    return Readout(
        pooled=pooled,
        by_campaign=found.get("campaign", {}),
        by_action=found.get("action", {}),
        by_band=found.get("risk_band", {}),
        by_segment=found.get("segment", {}),
    )
