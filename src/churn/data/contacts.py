"""The optional contact log: who the CRM actually reached, for the campaign read-out.

A list says who should be contacted; a call centre misses some, an email bounces.
With a log (``ingest.contacts.source``: customer id, date, action, channel, reached
yes/no) `churn outcomes` can also report contacted-only beside intent-to-treat.
It is read like the customers table (churn.data.customers): the same source
reader (CSV dialect, Parquet, Excel, globs and folders), column recognition
(``ingest.contacts.columns``, null = recognise common names), null values and
date parsing as the transactions. Rows without a customer id or with a date that
does not parse go to a quarantine file with their reason; the returned counts add up
(``rows_in = rows_out + rows_quarantined``), plus lines the CSV reader could not split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from churn.atomic import atomic_path
from churn.config import ContactsConfig, CsvOptions, IngestConfig
from churn.data import db_source, parsing, session
from churn.data.columns import TRANSACTION_ALIASES, resolve_columns, shown
from churn.data.sources import (
    ORD_COLUMN,
    count_rejected_lines,
    quote_literal,
    reading,
)
from churn.errors import UserError
from churn.schema import CONTACT_LOG_COLUMNS

CONTACT_ALIASES: dict[str, tuple[str, ...]] = {
    "customer_id": TRANSACTION_ALIASES["customer_id"] + ("id",),
    "date": (
        "date",
        "contactdate",
        "contactedat",
        "contacttime",
        "timestamp",
        "sentat",
        "calldate",
    ),
    "action": ("action", "treatment", "offer", "recommendedaction"),
    "channel": ("channel", "medium"),
    "reached": ("reached", "contacted", "delivered", "answered", "success", "outcome"),
}
_KEY = "ingest.contacts"


def ingest_contacts(
    config: ContactsConfig, csv: CsvOptions, target: Path, quarantine: Path, ingest: IngestConfig
) -> dict[str, Any]:
    """Write the canonical contact log and its quarantine; return the accounting."""
    if config.source is None:
        raise UserError(f"{_KEY}.source is not set")
    con = session.connect()
    try:
        # Files or a database table/query (issue 19).
        files, src = db_source.open_raw(
            con, config.source, csv, excel_sheet=ingest.excel_sheet, name="contacts",
            key=f"{_KEY}.source",
        )  # fmt: skip
        columns = resolve_columns(
            src.columns, config.columns.model_dump(), CONTACT_ALIASES, f"{_KEY}.columns"
        )
        for required in ("customer_id", "date"):
            if columns[required] is None:
                raise UserError(
                    f"no {required} column recognised in {config.source}; columns are:"
                    f" {shown(src.columns)} (set {_KEY}.columns.{required})"
                )
        with reading(files):
            con.execute(
                f"CREATE TEMP TABLE contacts_in AS {_parsed(columns, src.relation, ingest)}"
            )
            _copy(
                con,
                f"SELECT {', '.join(CONTACT_LOG_COLUMNS)} FROM contacts_in WHERE reason IS NULL",
                target,
            )
            _copy(con, "SELECT * FROM contacts_in WHERE reason IS NOT NULL", quarantine)
            malformed = count_rejected_lines(con, src)
            reasons = dict(
                con.execute(
                    "SELECT reason, count(*) FROM contacts_in WHERE reason IS NOT NULL GROUP BY 1"
                ).fetchall()
            )
            counted = con.execute("SELECT count(*) FROM contacts_in").fetchone()
    finally:
        con.close()
    rows_in = int(counted[0]) if counted else 0
    quarantined = sum(int(v) for v in reasons.values())
    return {
        "source": str(config.source),
        "columns": {k: v for k, v in columns.items() if v is not None},
        "rows_in": rows_in,
        "rows_out": rows_in - quarantined,
        "rows_quarantined": quarantined,
        "reasons": {str(k): int(v) for k, v in sorted(reasons.items())},
        "malformed_lines": malformed,
    }


def _parsed(columns: dict[str, str | None], relation: str, ingest: IngestConfig) -> str:
    """Canonical columns plus a quarantine reason (NULL for a good row)."""
    nulls = ingest.null_values

    def field(name: str) -> str:
        column = columns.get(name)
        return parsing.text(column, nulls) if column else "NULL::VARCHAR"

    date_column = columns["date"]
    assert date_column is not None
    day = parsing.timestamp(date_column, ingest.timestamp_format, ingest.dayfirst is not False)
    reached = columns.get("reached")
    return f"""
        SELECT *, CASE WHEN customer_id IS NULL THEN 'missing_customer_id'
                       WHEN date IS NULL THEN 'unparseable_timestamp' END AS reason
        FROM (
            SELECT {parsing.identifier(str(columns["customer_id"]), nulls)} AS customer_id,
                   CAST({day} AS DATE) AS date, {field("action")} AS action,
                   {field("channel")} AS channel,
                   {f"coalesce({parsing.boolean(reached)}, false)" if reached else "true"}
                       AS reached,
                   {parsing.raw(date_column)} AS raw_date,
                   {ORD_COLUMN} AS source_row
            FROM {relation}
        )
    """


def _copy(con: Any, query: str, target: Path) -> None:
    with atomic_path(target) as tmp:
        con.execute(f"COPY ({query}) TO {quote_literal(str(tmp))} (FORMAT parquet)")
