"""Text cells to typed values, as DuckDB SQL expressions.

Every expression returns NULL for a cell it cannot read (``TRY_CAST``), never an
error and never a guess, so the quarantine rules can name the reason. The fast
path is DuckDB's own cast (ISO timestamps, ``12.50``); the slower fallbacks
(day/month/year dates, decimal commas, currency signs) only run on cells the fast
path rejected, which keeps a clean 10-million-row export fast.

Timestamps come out as naive UTC: a text offset (``-08:00``, ``+0530``, ``Z``) or a
named zone is converted, a naive cell is kept as the shop's wall-clock time. This
relies on the session time zone being UTC (``churn.data.session``).
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from churn.data.sources import quote_ident, quote_literal
from churn.errors import UserError

# Whitespace that exports leave around values, including the non-breaking space.
_BLANKS = quote_literal(" \t\r\n\u00a0")
_DMY = r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})"
_YMD_SLASH = r"^(\d{4})[/.](\d{1,2})[/.](\d{1,2})"
_CURRENCY = r"[\s'£$€¥]|EUR|GBP|USD"
_SHORT_TIME = r"([T ]\d{1,2}:\d{2})([+-])"  # 10:58 right before an offset


def raw(column: str) -> str:
    """The cell as the export wrote it (the fast paths below cast this directly)."""
    return f"CAST({quote_ident(column)} AS VARCHAR)"


def text(column: str, null_values: Sequence[str] = ()) -> str:
    """Trimmed text, with blank cells and the ``null_values`` (``NULL``, ``nan``) as NULL.

    Trimming every cell costs more than parsing it, so only cells that start or end
    with whitespace are trimmed (all_varchar already reads empty fields as NULL).
    """
    c = raw(column)
    padded = " OR ".join(
        f"{end}({c}, {quote_literal(ch)})"
        for ch in (" ", "\t", "\u00a0")
        for end in ("prefix", "suffix")
    )
    t = f"CASE WHEN {padded} THEN NULLIF(trim({c}, {_BLANKS}), '') ELSE {c} END"
    if not null_values:
        return t
    return f"CASE WHEN {is_null_like(t, null_values)} THEN NULL ELSE {t} END"


def is_null_like(value: str, null_values: Sequence[str]) -> str:
    """True when the SQL text ``value`` is one of ``null_values``, ignoring case.

    ``lower()`` on every id and country of a multi-million-row export cost more than
    parsing them, so it runs only on cells as long (in bytes) as an entry; a CASE
    condition stops at the first false operand. Deliberately not an IN list: with
    five or more constants DuckDB plans IN as a join, which loses the row order the
    quarantine's row numbers depend on.
    """
    entries = sorted({v.strip().lower() for v in null_values if v.strip()})
    if not entries:
        return "false"
    listed = f"list_contains([{', '.join(quote_literal(v) for v in entries)}], lower({value}))"
    if not all(v.isascii() for v in entries):  # case changes can change a byte length
        return listed
    lengths = " OR ".join(f"strlen({value}) = {n}" for n in sorted({len(v) for v in entries}))
    return f"(({lengths}) AND {listed})"


def identifier(column: str, null_values: Sequence[str] = ()) -> str:
    """An id as text; ``12345.0`` (an integer id that went through a float) is ``12345``."""
    t = text(column, null_values)
    return (
        f"CASE WHEN suffix({t}, '.0') THEN regexp_replace({t}, '^(-?\\d+)\\.0+$', '\\1')"
        f" ELSE {t} END"
    )


def number(column: str, decimal_separator: str) -> str:
    """A DOUBLE (possibly NaN or infinite, which the rules reject), or NULL.

    DuckDB's cast reads ``12.50`` and `` 12.50 `` directly; only cells it rejects go
    through the fallback, which drops currency signs and spaces and then, with
    ``auto``, reads the last of ``.``/``,`` as the decimal mark when both appear
    (``1.234,50``, ``1,234.50``), a single comma as a decimal comma (``12,50``) and
    several commas as thousands separators. ``,`` and ``.`` force one reading.
    The fallback is a one-element lambda so DuckDB cannot hoist its parts out of the
    COALESCE and run them on every row.
    """
    c, t = raw(column), text(column)
    stripped = f"regexp_replace({t}, {quote_literal(_CURRENCY)}, '', 'g')"
    european = "replace(replace(s, '.', ''), ',', '.')"
    english = "replace(s, ',', '')"
    if decimal_separator == ",":
        read = european
    elif decimal_separator == ".":
        read = english
    else:
        read = (
            f"CASE WHEN strpos(s, ',') = 0 THEN s"
            f" WHEN strpos(s, '.') = 0 AND length(s) - length(replace(s, ',', '')) = 1"
            f" THEN replace(s, ',', '.')"
            f" WHEN strpos(s, '.') = 0 THEN {english}"
            f" WHEN strpos(reverse(s), ',') < strpos(reverse(s), '.') THEN {european}"
            f" ELSE {english} END"
        )
    fallback = f"list_transform([{stripped}], s -> TRY_CAST({read} AS DOUBLE))[1]"
    if decimal_separator == ",":
        return fallback
    return f"COALESCE(TRY_CAST({c} AS DOUBLE), {fallback})"


def utc(instant: str) -> str:
    """A TIMESTAMP WITH TIME ZONE as the naive UTC TIMESTAMP of the same instant.

    Epoch arithmetic rather than a cast: the cast goes through the session time
    zone (ICU), this does not.
    """
    return f"make_timestamp(epoch_us({instant}))"


def has_offset(cell: str) -> str:
    """True when the text carries a numeric UTC offset (``+05:30``, ``-0800``, ``-08``).

    A plain TIMESTAMP cast accepts those and silently drops the offset (it also
    accepts ``Z`` and ``UTC``, which are right to drop). An offset follows the time,
    which follows a date of at least 8 characters, so a ``-`` from position 11 on or
    any ``+`` marks one; a false alarm (``01-03-2024``) only costs the slower
    zone-aware cast, which reads naive text as UTC too.
    """
    return f"(contains({cell}, '+') OR contains(substr({cell}, 11), '-'))"


def _offset_form(cell: str) -> str:
    """Offset text as DuckDB's cast reads it: log formats put a space before the offset
    (``10:58:00 -0800``) and ISO allows a time without seconds (``10:58-08:00``);
    DuckDB reads neither."""
    joined = f"replace(replace({cell}, ' +', '+'), ' -', '-')"
    return f"regexp_replace({joined}, {quote_literal(_SHORT_TIME)}, '\\1:00\\2')"


def timestamp(column: str, timestamp_format: str | None, dayfirst: bool) -> str:
    """ISO first, then ``dd/mm/yyyy`` (or ``mm/dd/yyyy``) and ``yyyy/mm/dd``, row by row,
    so one file may mix formats; an explicit format replaces all of that.

    Offsets are converted to UTC (the zone-aware cast runs only on cells that carry
    one); cells naming a zone (``Europe/London``, ``CET``) are read by a last,
    zone-aware fallback.
    """
    t = text(column)
    if timestamp_format:
        parsed = f"TRY_STRPTIME({t}, {quote_literal(timestamp_format)})"
        # %z / %Z make strptime return TIMESTAMP WITH TIME ZONE.
        return utc(parsed) if "%z" in timestamp_format or "%Z" in timestamp_format else parsed
    zoned = has_offset(raw(column))

    def cast(cell: str) -> str:
        instant = (
            f"COALESCE(TRY_CAST({cell} AS TIMESTAMPTZ),"
            f" TRY_CAST({_offset_form(cell)} AS TIMESTAMPTZ))"
        )
        return f"CASE WHEN {zoned} THEN {utc(instant)} ELSE TRY_CAST({cell} AS TIMESTAMP) END"

    order = "'\\3-\\2-\\1'" if dayfirst else "'\\3-\\1-\\2'"
    day_month = f"regexp_replace({t}, {quote_literal(_DMY)}, {order})"
    year_first = f"regexp_replace({t}, {quote_literal(_YMD_SLASH)}, '\\1-\\2-\\3')"
    named_zone = utc(f"TRY_CAST({t} AS TIMESTAMPTZ)")
    return (
        f"COALESCE({cast(raw(column))}, {cast(t)}, {cast(day_month)}, {cast(year_first)},"
        f" {named_zone})"
    )


def boolean(column: str) -> str:
    """Consent flags as exported: yes/no, true/false, 1/0, y/n, opt-in/opt-out."""
    t = f"lower({text(column)})"
    return (
        f"CASE WHEN {t} IN ('1', 'true', 't', 'yes', 'y', 'opt-in', 'optin', 'subscribed')"
        f" THEN true WHEN {t} IN ('0', 'false', 'f', 'no', 'n', 'opt-out', 'optout',"
        " 'unsubscribed') THEN false END"
    )


def detect_dayfirst(
    con: duckdb.DuckDBPyConnection, relation: str, column: str, sample_rows: int = 200_000
) -> bool | None:
    """Read ``a/b/yyyy`` dates in a sample: a > 12 means day first, b > 12 month first.

    Returns None when the sample has no evidence either way (the caller picks the
    default). Both kinds of evidence means the file mixes orders, which no rule can
    untangle, so the user must name the format.
    """
    t = text(column)
    day = f"TRY_CAST(regexp_extract({t}, {quote_literal(_DMY)}, 1) AS INTEGER)"
    month = f"TRY_CAST(regexp_extract({t}, {quote_literal(_DMY)}, 2) AS INTEGER)"
    row = con.execute(
        f"""
        SELECT count(*) FILTER (WHERE a > 12), count(*) FILTER (WHERE b > 12),
               any_value(raw) FILTER (WHERE a > 12), any_value(raw) FILTER (WHERE b > 12)
        FROM (SELECT {day} AS a, {month} AS b, {t} AS raw
              FROM (SELECT * FROM {relation} LIMIT {sample_rows}))
        """
    ).fetchone()
    assert row is not None
    first_big, second_big, day_example, month_example = row
    if first_big and second_big:
        raise UserError(
            f"dates in column {column!r} mix day-first ({day_example}) and month-first"
            f" ({month_example}) orders; set ingest.timestamp_format (e.g. '%d/%m/%Y %H:%M')"
        )
    if first_big:
        return True
    if second_big:
        return False
    return None
