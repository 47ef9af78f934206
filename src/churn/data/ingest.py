"""Raw export in, canonical transactions out, every rejected row accounted for.

Everything runs in DuckDB, streaming and on all cores, so a multi-GB CSV never
lands in pandas:

1. *stage*: read the source as text, parse every cell (``churn.data.parsing``),
   name the first rule a row breaks (``churn.data.quarantine``) and keep it all,
   in file order, in memory or in a scratch Parquet file (``churn.data.staging``),
   so a row's position is exact. Lines the CSV reader cannot split are set aside
   by the reader (``churn.data.csvscan``) and numbered among their file's rows
   (``churn.data.rownumbers``);
2. *duplicates*: find later copies of repeated lines by position
   (``churn.data.duplicates``);
3. *split*: copy clean rows to the transactions file and the rest, with their
   file and row number, to the quarantine file.

The report is computed with SQL on what was written and checked
(rows_in == rows_out + rows_quarantined, the malformed share) before the
temporary files are renamed over the outputs, so a broken export never replaces
the last good transactions file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from churn.atomic import atomic_path
from churn.config import IngestConfig, RawSource
from churn.data import db_source, duplicates, parsing, rownumbers, session, staging
from churn.data.columns import TRANSACTION_ALIASES, require, resolve_columns
from churn.data.csvscan import NO_REJECTED_LINES, forget_rejects, rejected_lines
from churn.data.ingest_report import IngestReport
from churn.data.quarantine import (
    MALFORMED_REASONS,
    POLICY_REASONS,
    PlausibleWindow,
    Rules,
    check_bad_fraction,
    malformed_count,
)
from churn.data.quarantine import is_cancellation as cancellation_sql
from churn.data.quarantine import reason as reason_sql
from churn.data.sources import (
    FILE_COLUMN,
    SourceTable,
    quote_ident,
    quote_literal,
    reading,
    resolve_sources,
)
from churn.errors import UserError
from churn.schema import OPTIONAL_TRANSACTION_COLUMNS, QUARANTINE_COLUMNS, TRANSACTION_COLUMNS

log = logging.getLogger(__name__)

__all__ = [
    "MALFORMED_REASONS",
    "POLICY_REASONS",
    "IngestOutputs",
    "IngestResult",
    "ingest",
    "resolve_sources",
]


@dataclass(frozen=True)
class IngestOutputs:
    """Where ingest writes. ``staged``: the paths are already private temporary files
    that the caller publishes (the `ingest` stage renames all its outputs together),
    so ingest writes them directly instead of through its own rename."""

    transactions: Path
    quarantine: Path
    staged: bool = False


@dataclass(frozen=True)
class IngestResult:
    """The report and where the rows went; frames load on demand (files may be large)."""

    report: IngestReport
    outputs: IngestOutputs

    @property
    def transactions(self) -> pd.DataFrame:
        return pd.read_parquet(self.outputs.transactions)

    @property
    def quarantine(self) -> pd.DataFrame:
        return pd.read_parquet(self.outputs.quarantine)


@contextlib.contextmanager
def connect(memory_limit: str) -> Iterator[tuple[duckdb.DuckDBPyConnection, Path]]:
    """An in-memory DuckDB that spills past ``memory_limit``, and a private scratch folder.

    ``preserve_insertion_order`` (DuckDB's default, set here because correctness
    depends on it) makes COPY write rows in the order they were read.
    """
    with tempfile.TemporaryDirectory(prefix="churn-ingest-") as scratch:
        con = session.connect()
        try:
            try:
                con.execute(f"SET memory_limit = {quote_literal(memory_limit)}")
            except duckdb.Error as exc:
                raise UserError(
                    f"ingest.memory_limit={memory_limit!r} is not a size such as '1GB'"
                ) from exc
            con.execute(f"SET temp_directory = {quote_literal(str(Path(scratch) / 'spill'))}")
            con.execute("SET preserve_insertion_order = true")
            yield con, Path(scratch)
        finally:
            con.close()


def ingest(
    source: RawSource,
    config: IngestConfig,
    as_of: dt.date | None,
    outputs: IngestOutputs | None = None,
    *,
    today: dt.date | None = None,
) -> IngestResult:
    """Read, parse, validate and quarantine; write both outputs or, on a UserError, neither.

    Without ``outputs`` (notebooks, tests) the files go to a temporary folder that is
    removed once the result is garbage-collected. ``today`` (default: the UTC date)
    places the upper edge of the plausible timestamps.
    """
    if outputs is None:
        return _ingest_to_scratch(source, config, as_of, today)
    plausible = PlausibleWindow.around(
        config.plausible_from,
        config.plausible_future_days,
        as_of,
        today or dt.datetime.now(dt.UTC).date(),
    )
    log.info("ingest: plausible timestamps %s to before %s", plausible.earliest, plausible.before)
    with connect(config.memory_limit) as (con, scratch):
        # Files or a database table/query (issue 19): the same relation either way.
        files, src = db_source.open_raw(
            con, source, config.csv, excel_sheet=config.excel_sheet, scratch=scratch
        )
        columns = resolve_columns(
            src.columns, config.columns.model_dump(), TRANSACTION_ALIASES, "ingest.columns"
        )
        require(columns, src.columns, "ingest.columns")
        with reading(files):
            dayfirst, dayfirst_from = _dayfirst(con, src, _timestamp(columns), config)
            log.info("ingest: staging %d file(s)", len(files))
            if src.csv is not None:
                forget_rejects(con, src.csv)  # the sample above may have rejected lines too
            in_memory = staging.fits_in_memory(con, src.rows_estimate)
            stage = _stage_sql(src, columns, config, as_of, dayfirst, plausible)
            staging.stage(con, stage, scratch, in_memory)
        report = _split(con, src, files, columns, config, outputs)
    report = replace(
        report,
        files=[str(p) for p in files],
        columns={k: v for k, v in columns.items() if v is not None},
        dayfirst=dayfirst,
        dayfirst_from=dayfirst_from,
        cancellations=config.cancellations,
    )
    return IngestResult(report=report, outputs=outputs)


def _ingest_to_scratch(
    source: RawSource, config: IngestConfig, as_of: dt.date | None, today: dt.date | None
) -> IngestResult:
    """Ingest into a temporary folder that lives as long as the result does."""
    scratch = Path(tempfile.mkdtemp(prefix="churn-ingest-out-"))
    outputs = IngestOutputs(scratch / "transactions.parquet", scratch / "quarantine.parquet")
    try:
        result = ingest(source, config, as_of, outputs, today=today)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    weakref.finalize(result, shutil.rmtree, scratch, ignore_errors=True)
    return result


def _timestamp(columns: dict[str, str | None]) -> str:
    column = columns["timestamp"]
    assert column is not None  # require() has refused a source without one
    return column


def _split(
    con: duckdb.DuckDBPyConnection,
    src: SourceTable,
    files: list[Path],
    columns: dict[str, str | None],
    config: IngestConfig,
    outputs: IngestOutputs,
) -> IngestReport:
    """Number the staged rows, find duplicates, then write clean rows and quarantined ones
    (both or, when the malformed share is too high, neither); the counts of what was written."""
    rejected = rejected_lines(con, src.csv) if src.csv is not None else NO_REJECTED_LINES
    counts = rownumbers.number_rows(con, staging.STAGED, files, rejected)
    rows_in = counts.rows_in
    if not rows_in:
        raise UserError(_no_rows(files))
    n_duplicates = duplicates.find_duplicates(con, staging.STAGED)
    log.info("ingest: %s rows read, %s duplicate lines", f"{rows_in:,}", f"{n_duplicates:,}")
    output_columns = [*TRANSACTION_COLUMNS, *filter(columns.get, OPTIONAL_TRANSACTION_COLUMNS)]
    writer = _written_directly if outputs.staged else atomic_path
    with (
        writer(outputs.transactions) as tx_tmp,
        writer(outputs.quarantine) as q_tmp,
    ):
        _copy(con, _transactions_sql(output_columns, n_duplicates > 0), tx_tmp)
        _copy(con, _quarantine_sql(counts.rejected > 0), q_tmp)
        report = _report(con, rows_in, tx_tmp, q_tmp)
        check_bad_fraction(report.reasons, rows_in, config.max_bad_fraction)
    return report


@contextlib.contextmanager
def _written_directly(target: Path) -> Iterator[Path]:
    yield target


def _copy(con: duckdb.DuckDBPyConnection, query: str, target: Path) -> None:
    # Into the caller's own temporary file: DuckDB's own (tmp_<name>, renamed over an
    # existing target) was left behind when the disk filled up.
    con.execute(
        f"COPY ({query}) TO {quote_literal(str(target))} (FORMAT parquet, USE_TMP_FILE false)"
    )


def _no_rows(files: list[Path]) -> str:
    where = str(files[0]) if len(files) == 1 else f"the {len(files)} files from {files[0].parent}"
    return f"{where}: no data rows (only a header?); nothing to ingest, check the export"


def _dayfirst(
    con: duckdb.DuckDBPyConnection, src: SourceTable, column: str, config: IngestConfig
) -> tuple[bool, str]:
    """Params win; else the data decides; else day first, as in most of the world."""
    if config.timestamp_format:
        return bool(config.dayfirst), "timestamp_format"
    if config.dayfirst is not None:
        return config.dayfirst, "params"
    detected = parsing.detect_dayfirst(con, src.unordered, column)  # the first rows, in order
    return (True, "default") if detected is None else (detected, "data")


def _stage_sql(
    src: SourceTable,
    columns: dict[str, str | None],
    config: IngestConfig,
    as_of: dt.date | None,
    dayfirst: bool,
    plausible: PlausibleWindow,
) -> str:
    """One row out per row in, with its parsed values, its reason (or NULL) and hashes."""
    parsed = _parsed_sql(columns, config, dayfirst)
    cancelled = cancellation_sql(
        "__order_id" if columns.get("order_id") else None,
        "__quantity" if columns.get("quantity") else None,
        "__amount",
        config.cancellation_prefix,
    )
    rules = Rules(
        max_amount=config.max_amount,
        as_of=as_of,
        drop_cancellations=config.cancellations == "drop",
        plausible=plausible,
    )
    net = config.cancellations == "net"

    def signed(name: str) -> str:
        return f"CASE WHEN __cancelled THEN -abs({name}) ELSE {name} END" if net else name

    parsed_select = ", ".join(f"{sql} AS __{name}" for name, sql in parsed.items())
    source_columns = ", ".join(quote_ident(c) for c in src.columns)
    reason = reason_sql(
        src.columns,
        {
            "customer_id": "__customer_id",
            "ts": "__ts",
            "amount": "__amount",
            "cancelled": "__cancelled",
        },
        rules,
    )
    hash1, hash2 = duplicates.line_hashes(src.columns)
    return f"""
        SELECT
            __customer_id AS customer_id, __order_id AS order_id, __ts AS ts,
            {signed("__amount")} AS amount, __country AS country,
            {signed("__quantity")} AS quantity, __unit_price AS unit_price,
            __product_id AS product_id, __channel AS channel,
            {reason} AS reason, {FILE_COLUMN} AS source_file,
            __raw_timestamp AS raw_timestamp, __raw_amount AS raw_amount,
            {hash1} AS line_hash, {hash2} AS line_hash2
        FROM (
            SELECT *, {cancelled} AS __cancelled FROM (
                SELECT {FILE_COLUMN}, {source_columns}, {parsed_select}
                FROM {src.unordered}
            )
        )
    """


def _parsed_sql(
    columns: dict[str, str | None], config: IngestConfig, dayfirst: bool
) -> dict[str, str]:
    """Each canonical field parsed from its source column (typed NULL when there is none),
    and the raw timestamp and amount text the quarantine keeps."""

    def opt_text(field: str, parse: Any = parsing.text) -> str:
        column = columns.get(field)
        return parse(column) if column else "NULL::VARCHAR"

    def opt_value(field: str, parse: Any = parsing.text) -> str:
        """A text field with null-like cells (``NULL``, ``nan``) read as missing."""
        return opt_text(field, lambda column: parse(column, config.null_values))

    def opt_number(field: str) -> str | None:
        column = columns.get(field)
        return parsing.number(column, config.decimal_separator) if column else None

    ts_column, amount_column = _timestamp(columns), columns["amount"]
    quantity, unit_price = opt_number("quantity"), opt_number("unit_price")
    if amount_column:
        amount = parsing.number(amount_column, config.decimal_separator)
        raw_amount = parsing.raw(amount_column)
    else:
        assert quantity is not None and unit_price is not None
        amount = f"round(({quantity}) * ({unit_price}), 6)"
        raw_amount = f"concat_ws(' x ', {opt_text('quantity', parsing.raw)},"
        raw_amount += f" {opt_text('unit_price', parsing.raw)})"
    return {
        "customer_id": opt_value("customer_id", parsing.identifier),
        "order_id": opt_value("order_id"),
        "ts": parsing.timestamp(ts_column, config.timestamp_format, dayfirst),
        "amount": amount,
        "quantity": quantity or "NULL::DOUBLE",
        "unit_price": unit_price or "NULL::DOUBLE",
        "product_id": opt_value("product_id", parsing.identifier),
        "country": opt_value("country"),
        "channel": opt_value("channel"),
        "raw_timestamp": parsing.raw(ts_column),
        "raw_amount": raw_amount,
    }


def _transactions_sql(output_columns: list[str], with_duplicates: bool) -> str:
    """Clean rows in file order. A filter keeps the scan's order; the duplicates' anti-join
    does not (chunks of rows came out swapped, so one export gave differently ordered
    files from run to run), so with duplicates the rows are put back in order, and
    without any (the usual export) there is no join and no sort."""
    clean = f"SELECT {', '.join(output_columns)} FROM {staging.STAGED} WHERE reason IS NULL"
    if not with_duplicates:
        return clean
    return f"{clean} AND position NOT IN (SELECT position FROM duplicate_rows) ORDER BY position"


def _quarantine_sql(with_rejected_lines: bool) -> str:
    """Quarantined rows in file order, with the row number within their own file (1 = first).

    Lines the CSV reader rejected are merged in by row number; without any, the staged
    rows are already in file order (``position``), which the filter and joins keep.
    """
    join, row = rownumbers.yielded_row_sql("s", shifted=with_rejected_lines)
    staged = f"""
        SELECT s.source_file, f.file_index, {row} AS source_row,
               CASE WHEN d.position IS NOT NULL THEN 'duplicate_line' ELSE s.reason END
                   AS reason,
               s.customer_id, s.order_id, s.raw_timestamp, s.raw_amount,
               NULL::VARCHAR AS raw_line, s.position
        FROM {staging.STAGED} s {join}
        LEFT JOIN duplicate_rows d ON d.position = s.position
        WHERE s.reason IS NOT NULL OR d.position IS NOT NULL
    """
    columns = ", ".join(QUARANTINE_COLUMNS)
    if not with_rejected_lines:
        return f"SELECT {columns} FROM ({staged}) ORDER BY position"
    return f"""
        SELECT {columns} FROM (
            SELECT * EXCLUDE (position) FROM ({staged})
            UNION ALL
            SELECT r.source_file, f.file_index, r.source_row, 'malformed_line', NULL, NULL,
                   NULL, NULL, r.line_text
            FROM rejected_rows r JOIN file_starts f USING (source_file)
        )
        ORDER BY file_index, source_row
    """


def _report(
    con: duckdb.DuckDBPyConnection, rows_in: int, transactions: Path, quarantine: Path
) -> IngestReport:
    """Counts from what was actually written, so the report cannot disagree with the files."""
    tx = con.execute(
        "SELECT count(*), count(DISTINCT customer_id), min(ts), max(ts) FROM read_parquet(?)",
        [str(transactions)],
    ).fetchone()
    assert tx is not None
    rows_out, customers, first_ts, last_ts = tx
    reasons = {
        str(r): int(n)
        for r, n in con.execute(
            "SELECT reason, count(*) FROM read_parquet(?) GROUP BY reason ORDER BY reason",
            [str(quarantine)],
        ).fetchall()
    }
    return accounted_report(rows_in, rows_out, reasons, customers, first_ts, last_ts)


def accounted_report(
    rows_in: int,
    rows_out: int,
    reasons: dict[str, int],
    customers: int,
    first_ts: Any,
    last_ts: Any,
) -> IngestReport:
    """The report from counts read back from the written files, on either engine; a row
    neither kept nor quarantined is a bug, so the accounting is checked here, once."""
    rows_quarantined = sum(reasons.values())
    if rows_in != rows_out + rows_quarantined:
        raise AssertionError(
            f"row accounting broken: {rows_in} in != {rows_out} out"
            f" + {rows_quarantined} quarantined"
        )
    malformed = malformed_count(reasons)
    return IngestReport(
        rows_in=rows_in,
        rows_out=int(rows_out),
        rows_quarantined=rows_quarantined,
        reasons=reasons,
        malformed_rows=malformed,
        malformed_fraction=round(malformed / rows_in, 6) if rows_in else 0.0,
        customers=int(customers),
        first_ts=None if first_ts is None else str(first_ts),
        last_ts=None if last_ts is None else str(last_ts),
    )
