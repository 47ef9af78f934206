"""Text cells to typed values, as Spark SQL expressions (``engine: pyspark`` ingest).

The Spark twin of :mod:`churn.data.parsing`: the same readings of the same cells,
written in Spark's dialect so they run on the executors. Every expression gives
NULL for a cell it cannot read (``try_cast``: Spark 4 runs ANSI SQL, where a plain
cast raises), never an error and never a guess, so the quarantine rules can name
the reason. Timestamps come out as naive UTC (``TIMESTAMP_NTZ``): a text offset
is converted, a naive cell is kept as the shop's wall-clock time. That relies on
the session time zone being UTC (``churn.features.backend.spark_session``).

Known gaps against DuckDB's reader, all rare in exports: named zones
(``Europe/London``) after a time, and times without seconds right before an
offset (``10:58-08:00``), come out unparseable here.
"""

from __future__ import annotations

from collections.abc import Sequence

_BLANKS = " \t\r\n\u00a0"
_DMY = r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})"
_YMD_SLASH = r"^(\d{4})[/.](\d{1,2})[/.](\d{1,2})"
_CURRENCY = r"[\s'£$€¥]|EUR|GBP|USD"
_INTEGER_FLOAT = r"^(-?\d+)\.0+$"


def ident(name: str) -> str:
    """A Spark SQL identifier (backticks, doubled inside)."""
    return "`" + name.replace("`", "``") + "`"


def literal(text: str) -> str:
    """A Spark SQL string literal; backslashes are escapes in Spark's dialect."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def raw(column: str) -> str:
    """The cell as the export wrote it."""
    return f"CAST({ident(column)} AS STRING)"


def text(column: str, null_values: Sequence[str] = ()) -> str:
    """Trimmed text, with blank cells and the ``null_values`` (``NULL``, ``nan``) as NULL."""
    t = f"NULLIF(trim(BOTH {literal(_BLANKS)} FROM {raw(column)}), '')"
    entries = sorted({v.strip().lower() for v in null_values if v.strip()})
    if not entries:
        return t
    listed = ", ".join(literal(v) for v in entries)
    return f"CASE WHEN lower({t}) IN ({listed}) THEN NULL ELSE {t} END"


def identifier(column: str, null_values: Sequence[str] = ()) -> str:
    """An id as text; ``12345.0`` (an integer id that went through a float) is ``12345``."""
    return f"regexp_replace({text(column, null_values)}, {literal(_INTEGER_FLOAT)}, '$1')"


def number(column: str, decimal_separator: str) -> str:
    """A DOUBLE (possibly NaN or infinite, which the rules reject), or NULL.

    Spark's cast reads ``12.50`` directly; cells it rejects drop currency signs and
    spaces and then, with ``auto``, read the last of ``.``/``,`` as the decimal mark
    when both appear, a single comma as a decimal comma and several commas as
    thousands separators (as :func:`churn.data.parsing.number`).
    """
    s = f"regexp_replace({text(column)}, {literal(_CURRENCY)}, '')"
    european = f"replace(replace({s}, '.', ''), ',', '.')"
    english = f"replace({s}, ',', '')"
    if decimal_separator == ",":
        return f"try_cast({european} AS DOUBLE)"
    if decimal_separator == ".":
        read = english
    else:
        commas = f"(length({s}) - length(replace({s}, ',', '')))"
        read = (
            f"CASE WHEN instr({s}, ',') = 0 THEN {s}"
            f" WHEN instr({s}, '.') = 0 AND {commas} = 1 THEN replace({s}, ',', '.')"
            f" WHEN instr({s}, '.') = 0 THEN {english}"
            f" WHEN instr(reverse({s}), ',') < instr(reverse({s}), '.') THEN {european}"
            f" ELSE {english} END"
        )
    return f"COALESCE(try_cast({raw(column)} AS DOUBLE), try_cast({read} AS DOUBLE))"


def _cast(cell: str) -> str:
    """ISO text as naive UTC: an offset is applied by the (UTC) session's cast."""
    return f"CAST(try_cast({cell} AS TIMESTAMP) AS TIMESTAMP_NTZ)"


def timestamp(column: str, timestamp_format: str | None, dayfirst: bool) -> str:
    """ISO first, then ``dd/mm/yyyy`` (or ``mm/dd/yyyy``) and ``yyyy/mm/dd``, row by row;
    an explicit format (strftime, as in params) replaces all of that."""
    t = text(column)
    if timestamp_format:
        pattern = literal(java_pattern(timestamp_format))
        return f"CAST(try_to_timestamp({t}, {pattern}) AS TIMESTAMP_NTZ)"
    order = "'$3-$2-$1'" if dayfirst else "'$3-$1-$2'"
    day_month = f"regexp_replace({t}, {literal(_DMY)}, {order})"
    year_first = f"regexp_replace({t}, {literal(_YMD_SLASH)}, '$1-$2-$3')"
    return f"COALESCE({_cast(t)}, {_cast(day_month)}, {_cast(year_first)})"


_STRFTIME = {
    "%Y": "yyyy",
    "%y": "yy",
    "%m": "MM",
    "%d": "dd",
    "%H": "HH",
    "%I": "hh",
    "%M": "mm",
    "%S": "ss",
    "%f": "SSSSSS",
    "%p": "a",
    "%b": "MMM",
    "%B": "MMMM",
    "%z": "Z",
    "%Z": "z",
    "%%": "%",
}


def java_pattern(strftime: str) -> str:
    """``ingest.timestamp_format`` (strftime, as DuckDB reads it) as a Spark datetime pattern."""
    out, i = [], 0
    while i < len(strftime):
        token = strftime[i : i + 2]
        if token in _STRFTIME:
            out.append(_STRFTIME[token])
            i += 2
        elif strftime[i].isalpha():
            out.append("'" + strftime[i] + "'")
            i += 1
        else:
            out.append(strftime[i].replace("'", "''"))
            i += 1
    return "".join(out)


def dayfirst_evidence(column: str) -> tuple[str, str]:
    """(day, month) of ``a/b/yyyy`` cells as integers, for :func:`churn.data.parsing`'s rule."""
    t = text(column)
    # NULLIF first: a cell that is no ``a/b/yyyy`` extracts '', and a failing try_cast
    # costs a thrown exception per row (5 s per 100,000 ISO dates), a NULL costs nothing.
    day = f"try_cast(NULLIF(regexp_extract({t}, {literal(_DMY)}, 1), '') AS INT)"
    month = f"try_cast(NULLIF(regexp_extract({t}, {literal(_DMY)}, 2), '') AS INT)"
    return day, month
