"""Raw export in, canonical transactions out, every rejected row accounted for.

DuckDB reads the source (streaming, never a whole CSV in pandas), every value
is read as text and parsed here with ``TRY_CAST`` so that one bad cell sends one
row to quarantine instead of failing or silently coercing the whole file.
Invariant checked before anything is written: rows_in == rows_out + rows_quarantined.
"""

from __future__ import annotations

import datetime as dt
import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from churn.config import IngestConfig
from churn.errors import UserError

CANONICAL_COLUMNS = ["customer_id", "order_id", "ts", "amount", "country"]

# Reasons that mean the export is broken; their share is capped by max_bad_fraction.
MALFORMED_REASONS = (
    "unparseable_timestamp",
    "non_numeric_amount",
    "absurd_amount",
    "after_as_of",
    "duplicate_line",
)
# Reasons that are business policy, reported but not held against the export.
POLICY_REASONS = ("guest_order", "zero_amount", "cancellation")


@dataclass(frozen=True)
class IngestResult:
    transactions: pd.DataFrame
    quarantine: pd.DataFrame
    report: dict[str, Any]


def resolve_sources(source: Path) -> list[Path]:
    """A file, a glob pattern or a folder; the folder's files are read in name order."""
    text = str(source)
    if any(ch in text for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(text))  # noqa: PTH207 (absolute patterns)
    elif source.is_dir():
        files = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
    elif source.exists():
        files = [source]
    else:
        raise UserError(f"ingest source not found: {source} (set paths.raw_transactions)")
    if not files:
        raise UserError(f"ingest source {source} matched no files (set paths.raw_transactions)")
    return files


def _scan_sql(files: list[Path]) -> str:
    suffixes = {p.suffix.lower() for p in files}
    listing = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in files) + "]"
    if suffixes <= {".parquet"}:
        return f"SELECT * FROM read_parquet({listing}, filename=true, union_by_name=true)"
    if suffixes <= {".csv", ".gz", ".txt", ".tsv"}:
        return (
            f"SELECT * FROM read_csv({listing}, header=true, all_varchar=true, filename=true,"
            " union_by_name=true)"
        )
    raise UserError(f"unsupported source file types {sorted(suffixes)}: use .csv or .parquet files")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _check_columns(found: list[str], config: IngestConfig) -> None:
    wanted = {k: v for k, v in config.columns.model_dump().items() if v is not None}
    missing = {k: v for k, v in wanted.items() if v not in found}
    if missing:
        key, column = next(iter(missing.items()))
        shown = ", ".join(c for c in found if c != "filename")
        raise UserError(
            f"column {column!r} for {key} not found; columns are: {shown}"
            f" (set ingest.columns.{key})"
        )


def ingest(source: Path, config: IngestConfig, as_of: dt.date | None) -> IngestResult:
    """Read, parse, validate and quarantine; raise UserError if the export looks broken."""
    files = resolve_sources(source)
    con = duckdb.connect()
    try:
        con.execute(f"CREATE TEMP VIEW src AS {_scan_sql(files)}")
        found = [row[0] for row in con.execute("DESCRIBE src").fetchall()]
        _check_columns(found, config)
        cols = config.columns
        ts_text = f"CAST({_quote(cols.timestamp)} AS VARCHAR)"
        ts_expr = (
            f"TRY_STRPTIME(TRIM({ts_text}), '{config.timestamp_format}')"
            if config.timestamp_format
            else f"TRY_CAST(TRIM({ts_text}) AS TIMESTAMP)"
        )
        amount_expr = (
            f"TRY_CAST(TRIM(CAST({_quote(cols.amount)} AS VARCHAR)) AS DOUBLE)"
            if cols.amount
            else "NULL::DOUBLE"
        )
        order_expr = (
            f"NULLIF(TRIM(CAST({_quote(cols.order_id)} AS VARCHAR)), '')"
            if cols.order_id
            else "NULL::VARCHAR"
        )
        country_expr = (
            f"NULLIF(TRIM(CAST({_quote(cols.country)} AS VARCHAR)), '')"
            if cols.country
            else "NULL::VARCHAR"
        )
        customer_expr = f"NULLIF(TRIM(CAST({_quote(cols.customer_id)} AS VARCHAR)), '')"
        # Integer-looking ids exported as floats ("12345.0") are the same customer.
        customer_expr = f"regexp_replace({customer_expr}, '\\.0+$', '')"
        original_columns = ", ".join(_quote(c) for c in found if c != "filename")
        prefix = config.cancellation_prefix.replace("'", "''")
        as_of_sql = f"TIMESTAMP '{as_of.isoformat()}'" if as_of else "NULL::TIMESTAMP"
        con.execute(
            f"""
            CREATE TEMP TABLE parsed AS
            SELECT
                filename AS source_file,
                row_number() OVER (PARTITION BY filename) AS source_row,
                {customer_expr} AS customer_id,
                {order_expr} AS order_id,
                {ts_expr} AS ts,
                {amount_expr} AS amount,
                {country_expr} AS country,
                row_number() OVER (PARTITION BY {original_columns}) AS copy_number,
                CAST({ts_text} AS VARCHAR) AS raw_timestamp,
                {"CAST(" + _quote(cols.amount) + " AS VARCHAR)" if cols.amount else "NULL"}
                    AS raw_amount
            FROM src
            """
        )
        con.execute(
            f"""
            CREATE TEMP TABLE classified AS
            SELECT *,
                CASE
                    WHEN copy_number > 1 THEN 'duplicate_line'
                    WHEN ts IS NULL THEN 'unparseable_timestamp'
                    WHEN amount IS NULL OR isnan(amount) THEN 'non_numeric_amount'
                    WHEN abs(amount) > {config.max_amount} THEN 'absurd_amount'
                    WHEN {as_of_sql} IS NOT NULL AND ts >= {as_of_sql} THEN 'after_as_of'
                    WHEN customer_id IS NULL THEN 'guest_order'
                    WHEN amount = 0 THEN 'zero_amount'
                    WHEN '{config.cancellations}' = 'drop'
                        AND (amount < 0 OR starts_with(coalesce(order_id, ''), '{prefix}'))
                        THEN 'cancellation'
                    ELSE NULL
                END AS reason
            FROM parsed
            """
        )
        transactions = con.execute(
            """
            SELECT customer_id, order_id, ts, amount, country FROM classified
            WHERE reason IS NULL ORDER BY ts, customer_id, order_id
            """
        ).df()
        quarantine = con.execute(
            """
            SELECT source_file, source_row, reason, customer_id, order_id,
                   raw_timestamp, raw_amount
            FROM classified WHERE reason IS NOT NULL ORDER BY source_file, source_row
            """
        ).df()
        rows_in = int(con.execute("SELECT count(*) FROM src").fetchone()[0])  # type: ignore[index]
    finally:
        con.close()
    report = _report(rows_in, transactions, quarantine, files)
    bad = sum(report["reasons"].get(r, 0) for r in MALFORMED_REASONS)
    if rows_in and bad / rows_in > config.max_bad_fraction:
        raise UserError(
            f"{bad} of {rows_in} rows ({bad / rows_in:.1%}) are malformed, above"
            f" ingest.max_bad_fraction={config.max_bad_fraction}; see the reasons with"
            " --debug or raise the threshold if this is expected"
        )
    return IngestResult(transactions=transactions, quarantine=quarantine, report=report)


def _report(
    rows_in: int, transactions: pd.DataFrame, quarantine: pd.DataFrame, files: list[Path]
) -> dict[str, Any]:
    rows_out, rows_quarantined = len(transactions), len(quarantine)
    if rows_in != rows_out + rows_quarantined:
        raise AssertionError(
            f"row accounting broken: {rows_in} in != {rows_out} out"
            f" + {rows_quarantined} quarantined"
        )
    reasons = {str(k): int(v) for k, v in quarantine["reason"].value_counts().items()}
    return {
        "files": [str(p) for p in files],
        "rows_in": rows_in,
        "rows_out": rows_out,
        "rows_quarantined": rows_quarantined,
        "reasons": reasons,
        "customers": int(transactions["customer_id"].nunique()),
        "first_ts": None if transactions.empty else str(transactions["ts"].min()),
        "last_ts": None if transactions.empty else str(transactions["ts"].max()),
    }
