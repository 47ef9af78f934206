"""Where raw rows come from: one file, a glob or a folder of CSV, Parquet or Excel files.

Every source becomes the same thing: a DuckDB relation over the original columns
plus ``__file`` (the file a row came from), in two flavours. ``unordered`` lets
DuckDB read in parallel; the transactions ingest gets exact row positions from it
by materialising it under ``preserve_insertion_order`` (churn.data.ingest).
``relation`` adds ``__ord``, increasing with the row's position in the files read
one after another, from ``WITH ORDINALITY`` (a streaming window, in scan order,
but on one core), for small tables such as the customer master. Downstream code
never cares about the format.

CSV is read by DuckDB as text (every column VARCHAR) so that a bad cell becomes
one quarantined row rather than a failed or silently coerced column, and so that
a multi-GB export streams instead of landing in pandas; every file of a source
is read with one dialect, and lines that dialect cannot split are kept aside
(``churn.data.csvscan``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa

from churn.config import CsvOptions
from churn.data import rawfiles
from churn.data.csvscan import FILE_COLUMN, ORD_COLUMN, CsvScan, open_csv, rejected_lines
from churn.errors import UserError

__all__ = [
    "FILE_COLUMN",
    "ORD_COLUMN",
    "SourceTable",
    "count_rejected_lines",
    "open_source",
    "quote_ident",
    "quote_literal",
    "reading",
    "resolve_sources",
]

Kind = Literal["csv", "parquet", "excel"]
_KINDS: dict[str, Kind] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".gz": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xlsx": "excel",
    ".xlsm": "excel",
}


@dataclass(frozen=True)
class SourceTable:
    """A readable relation over the source files and the original column names."""

    relation: str
    unordered: str
    columns: list[str]
    files: list[Path]
    kind: Kind
    csv: CsvScan | None = None  # how CSV files are read, and where rejected lines land
    keep: object = None  # a temporary folder the reader needs while the source is in use
    rows_estimate: int = 0  # roughly how many rows the files hold (to plan the staging)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def resolve_sources(source: Path, key: str = "paths.raw_transactions") -> list[Path]:
    """A file, a glob pattern or a folder; files are read in name order (daily files sort)."""
    text = str(source)
    if any(ch in text for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(text))  # noqa: PTH207 (absolute patterns)
    elif source.is_dir():
        files = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
    elif source.exists():
        files = [source]
    else:
        raise UserError(f"ingest source not found: {source} (set {key})")
    if not files:
        raise UserError(f"ingest source {source} matched no files (set {key})")
    return files


def _kind(files: list[Path], key: str) -> Kind:
    odd = sorted({p.suffix or p.name for p in files if p.suffix.lower() not in _KINDS})
    if odd:
        raise UserError(
            f"unsupported source files {', '.join(odd)}: use .csv (.csv.gz), .parquet or .xlsx"
            f" (set {key})"
        )
    kinds = sorted({_KINDS[p.suffix.lower()] for p in files})
    if len(kinds) > 1:
        raise UserError(
            f"source mixes {' and '.join(kinds)} files: put one format in the folder (set {key})"
        )
    return kinds[0]


def _listing(files: list[Path]) -> str:
    return "[" + ", ".join(quote_literal(str(p)) for p in files) + "]"


def _ordered(table_function: str) -> str:
    return (
        f"(SELECT * EXCLUDE (ordinality), ordinality AS {ORD_COLUMN}"
        f" FROM {table_function} WITH ORDINALITY)"
    )


def _parquet_scan(files: list[Path]) -> str:
    return (
        f"read_parquet({_listing(files)}, filename={quote_literal(FILE_COLUMN)},"
        " union_by_name=true)"
    )


def _cell_text(value: Any) -> str | None:
    """Excel cells arrive typed; turn them into the text a CSV export would hold."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _unique_names(header: tuple[Any, ...]) -> list[str]:
    names: list[str] = []
    for i, cell in enumerate(header):
        base = str(cell).strip() if cell is not None and str(cell).strip() else f"column{i}"
        name, n = base, 1
        while name in names:
            name, n = f"{base}_{n}", n + 1
        names.append(name)
    return names


def _excel_table(files: list[Path], sheet: str | None) -> pa.Table:
    """Excel has no streaming reader in DuckDB's bundled extensions; openpyxl's read-only
    mode streams rows, and a sheet holds at most ~1M rows, so this stays small."""
    from openpyxl import load_workbook

    tables: list[pa.Table] = []
    position = 0
    for path in files:
        try:
            book = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many types for a bad file
            raise UserError(f"cannot read Excel file {path}: {exc}".splitlines()[0]) from exc
        try:
            if sheet is not None and sheet not in book.sheetnames:
                raise UserError(
                    f"{path} has no sheet {sheet!r}; sheets are: {', '.join(book.sheetnames)}"
                    " (set ingest.excel_sheet)"
                )
            rows = book[sheet] if sheet is not None else book.worksheets[0]
            values = (r for r in rows.iter_rows(values_only=True) if any(c is not None for c in r))
            header = next(values, None)
            if header is None:
                continue
            names = _unique_names(header)
            columns: list[list[str | None]] = [[] for _ in names]
            for row in values:  # blank rows carry no data, like blank CSV lines
                for i in range(len(names)):
                    columns[i].append(_cell_text(row[i]) if i < len(row) else None)
        finally:
            book.close()
        n = len(columns[0]) if columns else 0
        data = {name: pa.array(col, pa.string()) for name, col in zip(names, columns, strict=True)}
        data[FILE_COLUMN] = pa.array([str(path)] * n, pa.string())
        data[ORD_COLUMN] = pa.array(range(position + 1, position + n + 1), pa.int64())
        position += n
        tables.append(pa.table(data))
    if not tables:
        raise UserError(f"Excel source {files[0]} holds no rows (set ingest.excel_sheet?)")
    return pa.concat_tables(tables, promote_options="default")


def open_source(
    con: duckdb.DuckDBPyConnection,
    files: list[Path],
    csv: CsvOptions,
    excel_sheet: str | None = None,
    name: str = "source",
    key: str = "paths.raw_transactions",
    scratch: Path | None = None,
) -> SourceTable:
    """Describe the files as one relation; reading errors become one-line UserErrors.

    ``scratch`` takes copies of CSV files whose line endings had to be evened out;
    without it a temporary folder is made, kept alive by the returned table.
    """
    kind = _kind(files, key)
    keep: object = None
    scan: CsvScan | None = None
    rows = 0
    if kind == "excel":
        for path in files:
            rawfiles.check_not_empty(path)
        table = _excel_table(files, excel_sheet)
        rows = table.num_rows
        con.register(f"{name}_excel", table)
        relation = unordered = f"{name}_excel"
    elif kind == "csv":
        if scratch is None:
            keep = tempfile.TemporaryDirectory(prefix="churn-read-")
            scratch = Path(keep.name)
        with reading(files):
            scan = open_csv(con, files, csv, scratch / name, name)
        relation, unordered, rows = scan.ordered, scan.scan, scan.rows_estimate
    else:
        for path in files:
            rawfiles.check_not_empty(path)
        parquet = _parquet_scan(files)
        relation, unordered = _ordered(parquet), f"(SELECT * FROM {parquet})"
        with reading(files):
            counted = con.execute(
                f"SELECT sum(num_rows) FROM parquet_file_metadata({_listing(files)})"
            ).fetchone()
        rows = int(counted[0] or 0) if counted else 0
    with reading(files):
        described = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    found = [str(row[0]) for row in described]
    columns = [c for c in found if c not in (FILE_COLUMN, ORD_COLUMN)]
    return SourceTable(relation, unordered, columns, files, kind, scan, keep, rows)


def count_rejected_lines(con: duckdb.DuckDBPyConnection, src: SourceTable) -> int:
    """Lines the last read of a CSV source could not split (0 for Parquet and Excel)."""
    if src.csv is None:
        return 0
    found = con.execute(f"SELECT count(*) FROM ({rejected_lines(con, src.csv)})").fetchone()
    return int(found[0]) if found else 0


def _one_line(exc: duckdb.Error) -> str:
    """DuckDB's CSV errors span many lines; keep the headline and the line that explains it."""
    if "state machine reached an invalid state" in str(exc):
        # What the strict reader says about CRLF and LF line ends mixed past the part of a
        # compressed file that churn.data.rawfiles looks at.
        return (
            "its lines end partly in CRLF and partly in LF; unpack it (churn evens out"
            " line endings of uncompressed files) or convert it to one line ending"
        )
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    head = lines[0] if lines else type(exc).__name__
    for prefix in ("Invalid Input Error: ", "IO Error: "):
        head = head.removeprefix(prefix)
    detail = next(
        (
            line
            for line in lines[1:]
            if not line.startswith(("Original Line", "Possible Solution", "file =", "LINE"))
            and "=" not in line
        ),
        "",
    )
    return f"{head}: {detail}" if detail else head


@contextlib.contextmanager
def reading(files: list[Path]) -> Iterator[None]:
    """Turn DuckDB's complaints about the input (not about our SQL) into a UserError."""
    try:
        yield
    except (duckdb.InvalidInputException, duckdb.IOException, duckdb.ConversionException) as exc:
        where = str(files[0]) if len(files) == 1 else f"{len(files)} files from {files[0].parent}"
        raise UserError(
            f"cannot read {where}: {_one_line(exc)} (check ingest.csv options:"
            " delimiter, quote, encoding)"
        ) from exc
