"""Values ingest reads: time zones, null-like cells, the plausible window (issue 13, 6-9)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from churn.config import IngestConfig
from churn.data import parsing, session
from churn.data.ingest import ingest
from churn.data.quarantine import MAX_SPAN, PlausibleWindow
from churn.errors import UserError

LENIENT = IngestConfig(max_bad_fraction=1.0)
NULLS = IngestConfig().null_values


def _parse(sql: str, cells: list[str | None]) -> list[object]:
    con = session.connect()
    con.execute("CREATE TABLE t (c VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[c] for c in cells])
    return [row[0] for row in con.execute(f"SELECT {sql} FROM t").fetchall()]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("2024-03-01 10:58:00-08:00", "2024-03-01 18:58:00"),
        ("2024-03-01T10:58:00Z", "2024-03-01 10:58:00"),
        ("2024-03-01 10:58:00+05:30", "2024-03-01 05:28:00"),
        ("2024-03-01 10:58:00-0800", "2024-03-01 18:58:00"),
        ("2024-03-01 10:58:00-08", "2024-03-01 18:58:00"),
        ("2024-03-01 10:58:00 -0800", "2024-03-01 18:58:00"),  # log style
        ("2024-03-01T10:58-08:00", "2024-03-01 18:58:00"),  # no seconds
        ("2024-03-01 10:58:00.250+14:00", "2024-02-29 20:58:00.250000"),
        ("2024-03-01 10:58:00 UTC", "2024-03-01 10:58:00"),
        ("2024-03-01 10:58:00 America/New_York", "2024-03-01 15:58:00"),
        (" 2024-03-01 10:58:00-08:00 ", "2024-03-01 18:58:00"),
        ("01/03/2024 10:58 -08:00", "2024-03-01 18:58:00"),
        ("2024-03-01 10:58:00", "2024-03-01 10:58:00"),  # naive: the shop's wall clock
        ("01-03-2024 10:58", "2024-03-01 10:58:00"),
        ("2024-03-01", "2024-03-01 00:00:00"),
        ("not a date", None),
    ],
)
def test_offsets_are_converted_to_utc_and_naive_times_kept(cell: str, expected: str) -> None:
    (value,) = _parse(parsing.timestamp("c", None, dayfirst=True), [cell])
    assert (None if value is None else str(value)) == expected


def test_an_explicit_format_with_an_offset_gives_utc() -> None:
    sql = parsing.timestamp("c", "%d/%m/%Y %H:%M %z", dayfirst=True)
    assert [str(v) for v in _parse(sql, ["01/03/2024 10:58 -0800"])] == ["2024-03-01 18:58:00"]


def test_null_like_cells_match_ignoring_case_and_padding() -> None:
    cells = ["NULL", "null", "nUlL", " None ", "NAN", "n/a", "#N/A", "<na>", "NaT", "\\N"]
    cells += ["UNDEFINED", "NA", "Nan Goldin", "nullable", "12345", None, "  "]
    got = _parse(parsing.text("c", NULLS), cells)
    assert got == [None] * 11 + ["NA", "Nan Goldin", "nullable", "12345", None, None]


def test_long_and_non_ascii_null_values_are_matched_too() -> None:
    values = ["Não informado", "not available at all"]
    got = _parse(parsing.text("c", values), ["NÃO INFORMADO", "Not Available At All", "x"])
    assert got == [None, None, "x"]
    assert parsing.is_null_like("c", []) == "false"


def test_null_check_is_not_planned_as_a_join() -> None:
    """Five or more IN constants become a hash join in DuckDB, which loses the scan order
    that the quarantine's row numbers rely on."""
    con = session.connect()
    con.execute("CREATE TABLE t (c VARCHAR)")
    plan = con.execute(f"EXPLAIN SELECT {parsing.identifier('c', NULLS)} FROM t").fetchall()
    assert "JOIN" not in plan[0][1]


@pytest.mark.parametrize(
    ("as_of", "before"),
    [
        (None, dt.date(2026, 12, 13)),  # today + 7
        (dt.date(2025, 1, 1), dt.date(2026, 12, 13)),  # a replay: later rows are after_as_of
        (dt.date(2027, 1, 1), dt.date(2027, 1, 8)),  # as_of ahead of the clock
    ],
)
def test_plausible_window_follows_the_later_of_as_of_and_today(
    as_of: dt.date | None, before: dt.date
) -> None:
    window = PlausibleWindow.around(dt.date(1970, 1, 2), 7, as_of, dt.date(2026, 12, 6))
    assert (window.earliest, window.before) == (dt.date(1970, 1, 2), before)


def test_plausible_window_never_outgrows_the_features() -> None:
    today = dt.date(2026, 12, 6)
    widest = PlausibleWindow.around(today + dt.timedelta(days=7) - MAX_SPAN, 7, None, today)
    assert widest.before - widest.earliest == MAX_SPAN
    with pytest.raises(UserError, match=r"set ingest\.plausible_from to 1931-"):
        PlausibleWindow.around(dt.date(1900, 1, 1), 7, None, today)
    with pytest.raises(UserError, match="check the as-of date"):
        PlausibleWindow.around(dt.date(1970, 1, 2), 7, dt.date(9999, 12, 30), today)


def test_rows_beyond_the_window_are_malformed_and_ranked_before_after_as_of(
    tmp_path: Path,
) -> None:
    source = tmp_path / "export.csv"
    source.write_text(
        "CustomerID,InvoiceDate,Amount\n"
        "1,1970-01-02 00:00:00,5\n"  # first plausible second
        "1,1970-01-01 23:59:59,5\n"
        "1,2024-06-01 10:00:00,5\n"  # after as_of, inside the window
        "1,2024-06-07 23:59:59,5\n"  # the window's last second
        "1,2024-06-08 00:00:00,5\n"
    )
    result = ingest(source, LENIENT, dt.date(2024, 1, 1), today=dt.date(2024, 6, 1))
    report = result.report
    assert report.reasons == {"implausible_timestamp": 2, "after_as_of": 2}
    assert report.malformed_rows == 2
    rows = result.quarantine.groupby("reason")["source_row"].apply(list).to_dict()
    assert rows == {"implausible_timestamp": [2, 5], "after_as_of": [3, 4]}


def test_every_duckdb_connection_runs_in_utc(tmp_path: Path) -> None:
    """On a host in Kolkata, every connection the product opens still says UTC."""
    script = """
import json
from pathlib import Path
from churn.data import ingest, session
from churn.features import backend
zones = {"session": session.connect().execute("SELECT current_setting('TimeZone')").fetchone()[0]}
with ingest.connect("1GB") as (con, _):
    zones["ingest"] = con.execute("SELECT current_setting('TimeZone')").fetchone()[0]
zones["features"] = backend.connect("duckdb").raw_sql(
    "SELECT current_setting('TimeZone')").fetchone()[0]
print(json.dumps(zones))
"""
    proc = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "TZ": "Asia/Kolkata"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(proc.stdout) == {"session": "UTC", "ingest": "UTC", "features": "UTC"}
