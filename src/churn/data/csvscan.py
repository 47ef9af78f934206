"""Every CSV file of a source read with one dialect; lines it cannot split are kept aside.

DuckDB reads the files with the dialect pinned (``churn.data.dialect``) and the
column names parsed from each file's own header, so nothing is sniffed per file
and a broken line cannot change how the rest of its file is read. The reader's
``store_rejects`` keeps each line it cannot split (too many or too few fields, an
unbalanced quote) with its file, line number and text; ``rejected_lines`` turns
them into quarantine rows. ``store_rejects`` does not combine with
``union_by_name``, so runs of consecutive files with the same header are read
together and the runs are stacked by name (daily files whose columns drift).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import duckdb

from churn.config import CsvOptions
from churn.data import dialect as dialects
from churn.data import rawfiles
from churn.errors import UserError

FILE_COLUMN = "__file"
ORD_COLUMN = "__ord"
_RUN_BITS = 40  # room for 10^12 rows per run of files
# The reader's words for a line that is not text in the chosen encoding: a params error.
ENCODING_ERROR = "INVALID ENCODING"
NO_REJECTED_LINES = (
    "SELECT NULL::VARCHAR AS source_file, NULL::BIGINT AS record, NULL::BIGINT AS part,"
    " NULL::VARCHAR AS line_text WHERE false"
)


@dataclass(frozen=True)
class CsvScan:
    """SQL over the files (original columns + ``__file``) and where rejected lines land."""

    scan: str  # unordered: DuckDB may read in parallel (COPY keeps the order)
    ordered: str  # plus ORD_COLUMN, increasing in file order (one core)
    columns: list[str]
    dialect: dialects.Dialect
    reject_tables: list[tuple[str, str]]  # (rejects_table, rejects_scan) per run of files
    renamed: dict[str, str]  # path the reader opened -> path the user named
    rows_estimate: int


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _check_columns(
    raw: rawfiles.RawFile, record: list[str], sniffed: rawfiles.RawFile, d: dialects.Dialect
) -> None:
    """A file that splits into one column while the dialect says more was written another way."""
    if len(record) > 1:
        return
    shown = (record[0] if record else "")[:80].encode("unicode_escape").decode("ascii")
    if raw is not sniffed:
        raise UserError(
            f"{raw.path} reads as one column with the delimiter {d.delimiter!r} of"
            f" {sniffed.path.name} (its first line is {shown!r}); export it like the others"
            " or set ingest.csv.delimiter"
        )
    raise UserError(
        f"{raw.path} reads as one column (its first line is {shown!r}): set"
        " ingest.csv.delimiter (and ingest.csv.quote) to match the file"
    )


def _first_with_data(raws: list[rawfiles.RawFile], skip: int) -> rawfiles.RawFile:
    """Sniff a file that has rows: a header-only daily file says little about the dialect."""
    for raw in raws:
        if sum(1 for line in raw.head.splitlines()[skip:] if line.strip()) >= 2:
            return raw
    return raws[0]


def open_csv(
    con: duckdb.DuckDBPyConnection,
    files: list[Path],
    options: CsvOptions,
    scratch: Path,
    name: str,
) -> CsvScan:
    """Check the files, fix one dialect, and describe the read (nothing is read yet)."""
    raws = [rawfiles.inspect(path, options.encoding, scratch / "lf") for path in files]
    first = _first_with_data(raws, options.skip_rows)
    dialect = dialects.sniff(con, first, options)
    names_of: dict[Path, list[str]] = {}
    for raw in raws:
        record = dialects.first_record(raw, dialect)
        _check_columns(raw, record, first, dialect)
        names_of[raw.path] = dialects.column_names(record, dialect.header)
    runs = [list(run) for _, run in itertools.groupby(raws, key=lambda r: names_of[r.path])]
    reads, tables, columns = [], [], []
    for i, run in enumerate(runs):
        names = names_of[run[0].path]
        columns += [c for c in names if c not in columns]
        table = (f"{name}_rejected_{i}", f"{name}_rejected_scan_{i}")
        spec = "{" + ", ".join(f"{_literal(c)}: 'VARCHAR'" for c in names) + "}"
        listing = "[" + ", ".join(_literal(str(r.read_path)) for r in run) + "]"
        reads.append(
            f"read_csv({listing}, auto_detect=false, columns={spec},"
            f" {dialect.read_options()}, filename={_literal(FILE_COLUMN)},"
            f" store_rejects=true, rejects_table={_literal(table[0])},"
            f" rejects_scan={_literal(table[1])})"
        )
        tables.append(table)
    renamed = {str(r.read_path): str(r.path) for r in raws if r.read_path != r.path}
    scan = " UNION ALL BY NAME ".join(f"SELECT * FROM {read}" for read in reads)
    # WITH ORDINALITY counts within one read; each run's count is lifted above the last's.
    ordered = " UNION ALL BY NAME ".join(
        f"SELECT * EXCLUDE (ordinality), ordinality + {i << _RUN_BITS} AS {ORD_COLUMN}"
        f" FROM {read} WITH ORDINALITY"
        for i, read in enumerate(reads)
    )
    return CsvScan(
        _renaming(scan, renamed),
        _renaming(ordered, renamed),
        columns,
        dialect,
        tables,
        renamed,
        sum(r.rows_estimate for r in raws),
    )


def _renaming(scan: str, renamed: dict[str, str]) -> str:
    """Report the file the user named, not the LF copy the reader opened."""
    if not renamed:
        return f"({scan})"
    cases = " ".join(f"WHEN {_literal(k)} THEN {_literal(v)}" for k, v in renamed.items())
    mapped = f"CASE {FILE_COLUMN} {cases} ELSE {FILE_COLUMN} END AS {FILE_COLUMN}"
    return f"(SELECT * REPLACE ({mapped}) FROM ({scan}))"


def forget_rejects(con: duckdb.DuckDBPyConnection, csv_scan: CsvScan) -> None:
    """Drop what earlier reads (a sample, a DESCRIBE) rejected, before the read that counts."""
    for table in itertools.chain.from_iterable(csv_scan.reject_tables):
        con.execute(f"DROP TABLE IF EXISTS {_ident(table)}")


def rejected_lines(con: duckdb.DuckDBPyConnection, csv_scan: CsvScan) -> str:
    """SQL: one row per line the last read rejected: ``source_file``, ``record``, ``part``
    (1, 2, ... within the record) and ``line_text``.

    ``record`` is the reader's number for the rejected record among the file's data
    records (1 = the first after the header); a record an unbalanced quote ran on over
    several lines gives one row per line, all with that number. A line that is not
    valid text in ``ingest.csv.encoding`` stops the stage instead: the whole file is
    likely in another encoding, and its rows must not quietly go missing.
    """
    tables = con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
    existing = {str(row[0]) for row in tables}
    offset = csv_scan.dialect.skip_rows + int(csv_scan.dialect.header)
    parts = []
    for errors, scans in csv_scan.reject_tables:
        if errors not in existing or scans not in existing:
            continue
        parts.append(
            f"SELECT s.file_path AS {FILE_COLUMN}, e.line - {offset} AS record,"
            " any_value(e.csv_line) AS csv_line, string_agg(DISTINCT e.error_type, ', ') AS error"
            f" FROM {_ident(errors)} e JOIN {_ident(scans)} s"
            " ON e.scan_id = s.scan_id AND e.file_id = s.file_id GROUP BY ALL"
        )
    if not parts:
        return NO_REJECTED_LINES
    renamed = _renaming(" UNION ALL ".join(parts), csv_scan.renamed)
    rejected = f"SELECT {FILE_COLUMN} AS source_file, * EXCLUDE ({FILE_COLUMN}) FROM {renamed}"
    bad = con.execute(
        f"SELECT source_file, record + {offset} FROM ({rejected})"
        f" WHERE contains(error, {_literal(ENCODING_ERROR)}) ORDER BY ALL LIMIT 1"
    ).fetchone()
    if bad is not None:
        raise UserError(
            f"{bad[0]} line {bad[1]} is not valid {csv_scan.dialect.encoding} text: set"
            " ingest.csv.encoding to the file's encoding (utf-8, utf-16 or latin-1)"
        )
    # Leading and trailing line breaks are the reader's framing, not part of the line.
    return f"""
        SELECT source_file, record, generate_subscripts(lines, 1) AS part,
               rtrim(unnest(lines), chr(13)) AS line_text
        FROM (SELECT *, string_split(trim(csv_line, chr(13) || chr(10)), chr(10)) AS lines
              FROM ({rejected}))
    """
