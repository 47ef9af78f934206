"""How the page writes a value of the list: money and percentages rounded for people.

Only the page's text: the downloads keep the export's numbers (churn.scoring.export).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pandas as pd

from churn.schema import EXPORT_HEADERS, subset
from churn.scoring.export import MONEY_COLUMNS

# The columns of the list the page shows (the downloads hold every export column).
SHOWN = tuple(
    EXPORT_HEADERS[c]
    for c in subset(
        EXPORT_HEADERS,
        "priority",
        "customer_id",
        "name",
        "churn_probability",
        "risk_band",
        "segment",
        "expected_value_12m",
        "value_at_risk",
        "action",
        "expected_gain",
        "reason_1",
    )
)
ID_HEADER = EXPORT_HEADERS["customer_id"]
BAND_HEADER = EXPORT_HEADERS["risk_band"]
# How numbers read; a column the marketing view drops (e.g. P(alive)) is simply not here.
PERCENT = frozenset(
    EXPORT_HEADERS[c] for c in ("churn_probability", "p_alive") if c in EXPORT_HEADERS
)
MONEY = frozenset(EXPORT_HEADERS[c] for c in MONEY_COLUMNS)
NUMERIC = PERCENT | MONEY | {EXPORT_HEADERS["priority"]}


def shown_headers(rows: pd.DataFrame) -> list[str]:
    """The shown columns, less contact columns nobody filled (no customers table)."""
    return [h for h in SHOWN if h in rows and (h not in _OPTIONAL or rows[h].astype(bool).any())]


_OPTIONAL = frozenset({EXPORT_HEADERS["name"]})


def display(header: str, value: Any, currency: str) -> str:
    """One cell as text: money with the currency and cents, percentages with one decimal."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if header in MONEY:
        sign = "-" if value < 0 else ""
        return f"{sign}{currency}{abs(float(value)):,.2f}"
    if header in PERCENT:
        return f"{float(value):.1f}"
    if isinstance(value, dt.date | pd.Timestamp):
        return value.isoformat()[:10]
    return str(value)


def display_rows(rows: pd.DataFrame, headers: list[str], currency: str) -> list[dict[str, str]]:
    return [
        {h: display(h, value, currency) for h, value in zip(headers, record, strict=True)}
        for record in rows[headers].itertuples(index=False)
    ]
