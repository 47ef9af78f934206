"""The ingest report: what one ingest read, kept, quarantined and why.

`churn ingest` writes it beside its outputs (``paths.ingest_report``), the nightly job
beside each published list; the nightly quarantine guard and the manifest read its
fields instead of recounting the quarantine reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class IngestReport:
    """Row accounting (``rows_in == rows_out + rows_quarantined``) and how the source was read."""

    rows_in: int
    rows_out: int
    rows_quarantined: int
    reasons: dict[str, int]  # quarantine reason -> rows
    malformed_rows: int  # rows under a malformed reason (churn.data.quarantine)
    malformed_fraction: float  # malformed_rows / rows_in, rounded to 6 places
    customers: int  # distinct customer ids kept
    first_ts: str | None
    last_ts: str | None
    files: list[str] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)  # canonical field -> source column
    dayfirst: bool = False
    dayfirst_from: str = ""  # what decided dayfirst: timestamp_format, params, data, default
    cancellations: str = ""
    # churn.data.customers.ingest_customers' counts; set by the ingest stage
    customers_table: dict[str, Any] | None = None

    def with_customers(self, counts: dict[str, Any]) -> IngestReport:
        """This report with the customers table's counts beside the transactions'."""
        return replace(self, customers_table=counts)
