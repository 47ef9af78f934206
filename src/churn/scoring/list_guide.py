"""What each column of the retention list means and how Excel shows it.

The list goes to people who were not in the room when it was built (#18): every number
was ``General`` (``256.1``, no currency, no percent) and nothing said why the list is
in the order it is. This module holds, per list column, the number format of its cells
and one sentence saying what it is, and the "How to read this list" text that the
XLSX carries as a second sheet and the HTML report repeats. The writer
(churn.scoring.export.write_xlsx) applies them by header, so any frame of list rows
(a filtered cut, a page's download) gets the same formats.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from churn.schema import EXPORT_HEADERS

# How a cell is shown: money (whole units, or cents for per-contact amounts), percent
# (the list stores 66.4 for 66.4 %; Excel gets 0.664 shown as 66 %), counts, dates.
MONEY, CENTS, PERCENT, COUNT, DATE = "money", "cents", "percent", "count", "date"
_KINDS: Final = MappingProxyType(
    {
        "priority": COUNT,
        "churn_probability": PERCENT,
        "expected_value_12m": MONEY,
        "clv_discounted": MONEY,
        "next_purchase_date": DATE,
        "value_at_risk": MONEY,
        "contact_cost": CENTS,
        "save_rate": PERCENT,
        "expected_gain": CENTS,
        "recency_days": COUNT,
        "n_orders": COUNT,
        "revenue": MONEY,
        "risk_rank": COUNT,
    }
)

# One sentence per column, in the words of the list (EXPORT_HEADERS).
MEANINGS: Final = MappingProxyType(
    {
        "priority": "Order of the list: 1 is the contact worth most (highest expected gain).",
        "customer_id": "The customer's id in your shop's data.",
        "name": "From the customers table, when there is one.",
        "email": "From the customers table, when there is one.",
        "country": "From the customers table, else the country of the customer's latest order.",
        "churn_probability": (
            "The one risk number: the model's chance that the customer buys nothing in the"
            " next {horizon} days."
        ),
        "risk_band": "Low, medium or high churn risk (cut points in scoring.* of params.yaml).",
        "segment": "RFM segment: how recently, how often and how much the customer bought.",
        "expected_value_12m": "What the customer is expected to spend in the next 12 months.",
        "clv_discounted": "Expected spend over their lifetime, discounted to today's money.",
        "next_purchase_date": "When the next order is expected; empty if none is expected.",
        "value_at_risk": "Churn risk x expected 12-month value: what losing them would cost.",
        "action": "What to do: the first targeting rule in params.yaml the customer matches.",
        "contact_cost": "What the recommended action costs per customer.",
        "save_rate": "Share of would-be churners the action is expected to keep.",
        "expected_gain": (
            "Churn risk x expected value x save rate - contact cost: what contacting the"
            " customer is expected to earn. The list is sorted by it."
        ),
        "reason_1": "The strongest warning sign in the customer's own history, in words.",
        "reason_2": "The second warning sign, if any.",
        "reason_3": "The third warning sign, if any.",
        "recency_days": "Days since the customer's last order.",
        "n_orders": "Orders so far.",
        "revenue": "Spend so far.",
        "risk_rank": "Place among all active customers by churn risk (1 = riskiest).",
    }
)

# The "How to read this list" sheet, before the column table.
READING: Final = (
    "How to read this list",
    "",
    "Who is on it: the customers the campaign budget picks, best expected gain first.",
    "Why this order: expected gain = churn risk x expected 12-month value x save rate"
    " - contact cost. A valuable customer with medium risk can be worth more than a"
    " cheap one who is almost gone, so risk alone is not the order.",
    "One risk number: 'Churn risk (%)' is the model's chance of no purchase in the next"
    " {horizon} days. The purchase-pattern 'chance still active' the model uses as one of"
    " its inputs is not shown: it answers another question and would disagree with it.",
    "'Picked for value' in Why (1): no single warning sign, but the customer's value makes"
    " a contact pay off at the usual risk.",
    "Money is in {currency}; percentages are rounded for reading (the cell holds the exact"
    " value). Use the filter arrows in the header row to cut the list.",
    "",
)


def number_format(column: str, currency: str) -> str | None:
    """The Excel number format of a list column (canonical name); None: as written."""
    symbol = '"' + currency.replace('"', "") + '"'
    return {
        MONEY: f"{symbol}#,##0",
        CENTS: f"{symbol}#,##0.00",
        PERCENT: "0%",
        COUNT: "#,##0",
        DATE: "yyyy-mm-dd",
    }.get(_KINDS.get(column, ""))


def is_percent(column: str) -> bool:
    return _KINDS.get(column) == PERCENT


def by_header() -> Mapping[str, str]:
    """Header marketing reads -> canonical column name."""
    return {header: column for column, header in EXPORT_HEADERS.items()}


def guide_rows(headers: list[str], currency: str, horizon_days: int) -> list[tuple[str, str]]:
    """(column, what it means) for the list's columns, after the reading notes."""
    words = {"currency": currency, "horizon": horizon_days}
    names = by_header()
    notes = [(line.format(**words), "") for line in READING]
    columns = [
        (header, MEANINGS[names[header]].format(**words))
        for header in headers
        if header in names and names[header] in MEANINGS
    ]
    return [*notes, ("Column", "What it means"), *columns]
