"""The optional customer master: who a customer id is, and whether marketing may contact them.

Retention lists go to a CRM, which needs an email, a name and the consent flag
that transactions never carry. The table is optional, but its output always
exists (empty, with the canonical columns) so the DVC stage has a fixed set of
outs and the export stage can always join it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from churn.atomic import atomic_path
from churn.config import CsvOptions, CustomersConfig
from churn.data import db_source, parsing, session
from churn.data.columns import CUSTOMER_ALIASES, resolve_columns, shown
from churn.data.sources import (
    ORD_COLUMN,
    count_rejected_lines,
    quote_literal,
    reading,
)
from churn.errors import UserError
from churn.schema import CUSTOMER_COLUMNS, MARKETING_CONSENT

# The customers table with no rows, for a project without a customer master.
_EMPTY = "SELECT {} WHERE false".format(
    ", ".join(
        f"NULL::{'BOOLEAN' if c == MARKETING_CONSENT else 'VARCHAR'} AS {c}"
        for c in CUSTOMER_COLUMNS
    )
)
_KEY = "ingest.customers"
# One row per id, the first in file order; rows without an id are dropped (and counted
# as missing_id).
_FIRST_ROW_PER_ID = (
    "SELECT * EXCLUDE (position) FROM customers_in WHERE customer_id IS NOT NULL"
    " QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY position) = 1"
    " ORDER BY customer_id"
)


def ingest_customers(
    config: CustomersConfig, csv: CsvOptions, target: Path, *, null_values: Sequence[str]
) -> dict[str, Any]:
    """Write the canonical customers table (one row per id, first one wins); return counts.

    ``null_values`` (``ingest.null_values``) read as missing, as in the transactions:
    a CRM row with id ``NULL`` has no id, it is not a customer called "NULL".
    """
    con = session.connect()
    try:
        if config.source is None:
            _copy(con, _EMPTY, target)
            return {"source": None, "rows_in": 0, "rows_out": 0}
        # Files or a database table/query (issue 19).
        files, src = db_source.open_raw(
            con, config.source, csv, name="customers", key=f"{_KEY}.source"
        )
        columns = _source_columns(src.columns, config)
        query = _canonical_rows(columns, src.relation, null_values)
        with reading(files):
            con.execute(f"CREATE TEMP TABLE customers_in AS {query}")
            _copy(con, _FIRST_ROW_PER_ID, target)
            malformed = count_rejected_lines(con, src)  # lines the CSV reader could not split
            counts = _counts(con)
    finally:
        con.close()
    return {
        "source": str(config.source),
        "columns": {k: v for k, v in columns.items() if v is not None},
        **counts,
        "malformed_lines": malformed,
    }


def _source_columns(found: list[str], config: CustomersConfig) -> dict[str, str | None]:
    """Each canonical field's column in the source (None when absent). Only the id is
    required: without it no row can be joined to a target, so the source is refused."""
    columns = resolve_columns(
        found, config.columns.model_dump(), CUSTOMER_ALIASES, f"{_KEY}.columns"
    )
    if columns["customer_id"] is None:
        raise UserError(
            f"no customer id column recognised in {config.source}; columns are:"
            f" {shown(found)} (set {_KEY}.columns.customer_id)"
        )
    return columns


def _canonical_rows(
    columns: dict[str, str | None], relation: str, null_values: Sequence[str]
) -> str:
    """SELECT of every source row in the canonical columns, with its position in the
    files: an absent field reads as NULL, so every source gives the same table."""

    def field(name: str, parse: Any = parsing.text) -> str:
        column = columns.get(name)
        return parse(column, null_values) if column else "NULL::VARCHAR"

    consent = columns.get("marketing_consent")
    return f"""
        SELECT {field("customer_id", parsing.identifier)} AS customer_id,
               lower({field("email")}) AS email, {field("name")} AS name,
               {field("country")} AS country,
               {parsing.boolean(consent) if consent else "NULL::BOOLEAN"}
                   AS marketing_consent,
               {ORD_COLUMN} AS position
        FROM {relation}
    """


def _counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows read, kept, and dropped (by reason) from the staged ``customers_in``."""
    found = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE customer_id IS NULL),"
        " count(DISTINCT customer_id) FROM customers_in"
    ).fetchone()
    assert found is not None
    rows_in, missing_id, distinct = (int(v) for v in found)
    return {
        "rows_in": rows_in,
        "rows_out": distinct,
        "missing_id": missing_id,
        "duplicate_id": rows_in - missing_id - distinct,
    }


def _copy(con: duckdb.DuckDBPyConnection, query: str, target: Path) -> None:
    with atomic_path(target) as tmp:
        con.execute(f"COPY ({query}) TO {quote_literal(str(tmp))} (FORMAT parquet)")
