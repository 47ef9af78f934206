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
from churn.data import parsing, session
from churn.data.columns import CUSTOMER_ALIASES, resolve_columns, shown
from churn.data.sources import (
    ORD_COLUMN,
    count_rejected_lines,
    open_source,
    quote_literal,
    reading,
    resolve_sources,
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
        files = resolve_sources(config.source, f"{_KEY}.source")
        src = open_source(con, files, csv, name="customers", key=f"{_KEY}.source")
        columns = resolve_columns(
            src.columns, config.columns.model_dump(), CUSTOMER_ALIASES, f"{_KEY}.columns"
        )
        if columns["customer_id"] is None:
            raise UserError(
                f"no customer id column recognised in {config.source}; columns are:"
                f" {shown(src.columns)} (set {_KEY}.columns.customer_id)"
            )

        def field(name: str, parse: Any = parsing.text) -> str:
            column = columns.get(name)
            return parse(column, null_values) if column else "NULL::VARCHAR"

        consent = columns.get("marketing_consent")
        query = f"""
            SELECT {field("customer_id", parsing.identifier)} AS customer_id,
                   lower({field("email")}) AS email, {field("name")} AS name,
                   {field("country")} AS country,
                   {parsing.boolean(consent) if consent else "NULL::BOOLEAN"}
                       AS marketing_consent,
                   {ORD_COLUMN} AS position
            FROM {src.relation}
        """
        with reading(files):
            con.execute(f"CREATE TEMP TABLE customers_in AS {query}")
            _copy(
                con,
                "SELECT * EXCLUDE (position) FROM customers_in WHERE customer_id IS NOT NULL"
                " QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY position) = 1"
                " ORDER BY customer_id",
                target,
            )
            malformed = count_rejected_lines(con, src)  # lines the CSV reader could not split
            counts = con.execute(
                "SELECT count(*), count(*) FILTER (WHERE customer_id IS NULL),"
                " count(DISTINCT customer_id) FROM customers_in"
            ).fetchone()
    finally:
        con.close()
    assert counts is not None
    rows_in, missing_id, distinct = (int(v) for v in counts)
    return {
        "source": str(config.source),
        "columns": {k: v for k, v in columns.items() if v is not None},
        "rows_in": rows_in,
        "rows_out": distinct,
        "missing_id": missing_id,
        "duplicate_id": rows_in - missing_id - distinct,
        "malformed_lines": malformed,
    }


def _copy(con: duckdb.DuckDBPyConnection, query: str, target: Path) -> None:
    with atomic_path(target) as tmp:
        con.execute(f"COPY ({query}) TO {quote_literal(str(tmp))} (FORMAT parquet)")
