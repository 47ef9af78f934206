"""One CSV dialect for the whole source, and each file's column names under it.

DuckDB's sniffer decides a file's dialect from a sample, and one bad line in the
sample (a line with an extra field, a whitespace-only line, an unbalanced quote)
makes it pick "one column" or "no quoting" for that whole file. So the dialect
is decided once, from the first file holding data, by two sniffs:

* a tolerant one (``ignore_errors``), which sees through a bad line but never skips;
* a strict one, which finds preamble lines to skip but gives up on a bad line, used
  only when the tolerant one sees a single column (a title line above the header).

(Preferring whichever finds more columns would be wrong: a line with an extra field
has more.) When the sniffer settles on "no quoting", the double quote is used
anyway: an unbalanced quote in the sample is the usual reason, other files of the
source may quote where the sniffed one did not, and reading with the quote costs
nothing on unquoted fields (a quote inside a field, ``12" pizza``, stays text).
Explicit ``ingest.csv`` params always win (``quote: ""`` reads quote marks as
text). Every file is then read with this dialect, and its header is parsed by
Python's csv module under it, so a line the dialect cannot split is a rejected
line, not a different dialect.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

import duckdb

from churn.config import CsvOptions
from churn.data.rawfiles import RawFile
from churn.errors import UserError

_EMPTY = "(empty)"  # how sniff_csv spells "none"


@dataclass(frozen=True)
class Dialect:
    """How every file of one source is split into fields."""

    delimiter: str
    quote: str  # "" = fields are never quoted
    escape: str
    header: bool
    skip_rows: int
    encoding: str

    def read_options(self) -> str:
        """The read_csv arguments that pin this dialect (no sniffing, no comment lines)."""
        args = {
            "delim": self.delimiter,
            "quote": self.quote,
            "escape": self.escape,
            "encoding": self.encoding,
            "comment": "",
        }
        text = ", ".join(f"{k}={_literal(v)}" for k, v in args.items())
        return f"{text}, header={str(self.header).lower()}, skip={self.skip_rows}"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sniff(
    con: duckdb.DuckDBPyConnection, raw: RawFile, options: CsvOptions, tolerant: bool
) -> tuple[str, str, str, int, int] | None:
    """(delimiter, quote, escape, skip, columns) from DuckDB's sniffer, None if it gave up."""
    args = [f"encoding={_literal(options.encoding)}", f"header={str(options.header).lower()}"]
    if tolerant:
        args.append("ignore_errors=true")
    if options.delimiter is not None:
        args.append(f"delim={_literal(options.delimiter)}")
    if options.quote is not None:
        args.append(f"quote={_literal(options.quote)}")
    if options.skip_rows:
        args.append(f"skip={options.skip_rows}")
    sql = (
        'SELECT "Delimiter", "Quote", "Escape", "SkipRows", len("Columns")'
        f" FROM sniff_csv({_literal(str(raw.read_path))}, {', '.join(args)})"
    )
    try:
        row = con.execute(sql).fetchone()
    except duckdb.Error:
        return None
    assert row is not None
    delimiter, quote, escape, skip, n = row
    return (
        str(delimiter),
        "" if quote == _EMPTY else str(quote),
        "" if escape == _EMPTY else str(escape),
        int(skip),
        int(n),
    )


def sniff(con: duckdb.DuckDBPyConnection, raw: RawFile, options: CsvOptions) -> Dialect:
    """The dialect of ``raw``: params first, then the tolerant sniff (the strict one when
    the tolerant one sees a single column)."""
    found = _sniff(con, raw, options, tolerant=True)
    if found is None or found[4] < 2:
        found = _sniff(con, raw, options, tolerant=False) or found
    if found is None and options.delimiter is not None:
        found = (options.delimiter, "", "", 0, 0)  # e.g. a line past max_line_size: read anyway
    if found is None:
        raise UserError(
            f"cannot work out how {raw.path} is split into fields: set ingest.csv.delimiter"
            " and ingest.csv.quote"
        )
    delimiter, quote, escape, skip, _ = found
    quote = options.quote if options.quote is not None else (quote or '"')
    if quote and not escape:
        escape = quote  # RFC 4180: a quote inside a quoted field is doubled
    return Dialect(
        delimiter=options.delimiter if options.delimiter is not None else delimiter,
        quote=quote,
        escape=escape if quote else "",
        header=options.header,
        skip_rows=options.skip_rows or skip,
        encoding=options.encoding,
    )


def _reader_args(dialect: Dialect) -> dict[str, Any]:
    if not dialect.quote:
        return {"quoting": csv.QUOTE_NONE}
    doubled = dialect.escape == dialect.quote
    return {
        "quotechar": dialect.quote,
        "doublequote": doubled,
        "escapechar": None if doubled else dialect.escape,
    }


def first_record(raw: RawFile, dialect: Dialect) -> list[str]:
    """The file's first record after the skipped lines (its header, or its first row)."""
    stream = io.StringIO(raw.head, newline="")
    for _ in range(dialect.skip_rows):
        stream.readline()
    if len(dialect.delimiter) == 1:
        reader = csv.reader(stream, delimiter=dialect.delimiter, **_reader_args(dialect))
        try:
            record = next(reader, None)
        except csv.Error:
            record = None
    else:  # multi-character delimiters are DuckDB's extension; split the plain line
        line = stream.readline().rstrip("\r\n")
        record = line.split(dialect.delimiter) if line else None
    if record is None:
        raise UserError(
            f"{raw.path} holds nothing after its first {dialect.skip_rows} line(s)"
            " (check ingest.csv.skip_rows)"
        )
    return record


def column_names(record: list[str], header: bool) -> list[str]:
    """Column names as DuckDB would give them: trimmed, ``columnN`` when blank, deduplicated."""
    names: list[str] = []
    for i, cell in enumerate(record):
        base = cell.strip() if header and cell.strip() else f"column{i}"
        name, n = base, 1
        while name in names:
            name, n = f"{base}_{n}", n + 1
        names.append(name)
    return names
