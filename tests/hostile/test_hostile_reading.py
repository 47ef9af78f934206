"""Hostile raw files (issue 13 items 4, 5 and the file-reading parts of 11), through the CLI.

Every file of a source is read with one dialect; a line the reader cannot split is
quarantined on its own as ``malformed_line`` (with its text and row), counted as
malformed, and never costs the rest of its file. Files that cannot be read at all
(empty, another encoding, another delimiter) stop with one line naming them.

Design choice for the nightly case: one broken line in a daily file is a malformed
row like any other, so the run publishes with that line quarantined and every
other row of the file kept, unless malformed rows pass
``nightly.max_malformed_fraction`` (exit 12), exactly as for unparseable dates.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from churn.config import IngestConfig
from churn.data.ingest import ingest
from nightly_shop import FIRST, Shop, refused, run_cli, run_nightly, tree, write_params

HEADER = "Invoice,InvoiceDate,CustomerID,Amount,Country"


def _rows(n: int, day: int = 5, start: int = 0) -> list[str]:
    return [
        f"{500000 + start + i},2024-01-{day:02d} {10 + i % 8}:{i % 60:02d}:00,"
        f"{12000 + (start + i) % 37},{(i % 9) + 1}.50,United Kingdom"
        for i in range(n)
    ]


def _write(path: Path, lines: list[str], newline: str = "\n") -> Path:
    path.write_bytes(newline.join(lines).encode() + newline.encode())
    return path


def _ingest(
    tmp_path: Path,
    raw: Path,
    capsys: pytest.CaptureFixture[str],
    wrote_nothing: bool = True,
    **ingest_params: Any,
) -> tuple[int, list[str], dict[str, Any] | None]:
    """``churn ingest`` on ``raw``; (exit code, its ``churn: error`` lines, the report).

    A refused ingest must leave no transactions file (``wrote_nothing``).
    """
    out = tmp_path / "out"
    params = {
        "paths": {
            "raw_transactions": str(raw),
            "transactions": str(out / "transactions.parquet"),
            "quarantine": str(out / "quarantine.parquet"),
            "ingest_report": str(out / "ingest_report.json"),
            "customers": str(out / "customers.parquet"),
        },
        "ingest": ingest_params,
    }
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    capsys.readouterr()
    code = run_cli("--params", str(path), "ingest")
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("churn: error:")]
    report_path = out / "ingest_report.json"
    report = json.loads(report_path.read_text()) if code == 0 else None
    if report is not None:
        assert report["rows_in"] == report["rows_out"] + report["rows_quarantined"]
        assert sum(report["reasons"].values()) == report["rows_quarantined"]
    elif wrote_nothing:
        assert not (out / "transactions.parquet").exists(), "a refused ingest wrote output"
    return code, errors, report


def _quarantine(tmp_path: Path) -> pd.DataFrame:
    return pd.read_parquet(tmp_path / "out" / "quarantine.parquet")


def _one_error(errors: list[str]) -> str:
    assert len(errors) == 1, errors
    return errors[0]


# --- item 4: one broken line costs only itself ------------------------------------------


@pytest.mark.parametrize(
    ("broken", "text"),
    [
        ("extra field", "500099,2024-01-05 10:00:00,12001,3.50,United Kingdom,surprise"),
        ("whitespace", "   "),
        ("missing field", "500098,2024-01-05 10:00:00,12001"),
    ],
)
def test_broken_line_in_the_sniff_sample_is_quarantined_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], broken: str, text: str
) -> None:
    lines = [HEADER, *_rows(40)]
    lines.insert(3, text)  # data row 3, well inside DuckDB's sniff sample
    code, errors, report = _ingest(tmp_path, _write(tmp_path / "export.csv", lines), capsys)
    assert (code, errors) == (0, []), broken
    assert report is not None
    assert (report["rows_in"], report["rows_out"]) == (41, 40)
    assert report["reasons"] == {"malformed_line": 1}
    assert report["malformed_rows"] == 1
    quarantine = _quarantine(tmp_path)
    assert quarantine[["source_row", "reason", "raw_line"]].to_dict("records") == [
        {"source_row": 3, "reason": "malformed_line", "raw_line": text}
    ]


def test_broken_lines_count_towards_max_bad_fraction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [HEADER, *_rows(20)]
    for at in (2, 5, 9):
        lines.insert(at, lines[at] + ",extra")
    code, errors, _ = _ingest(tmp_path, _write(tmp_path / "export.csv", lines), capsys)
    assert code == 2
    assert _one_error(errors) == (
        "churn: error: 3 of 23 rows (13.0%) are malformed (malformed_line 3), above"
        " ingest.max_bad_fraction=0.05 (see raw_line in the quarantine; set"
        " ingest.csv.delimiter or quote if it is wrong); nothing was written"
    )


def test_folder_of_daily_files_keeps_the_rest_of_a_file_with_a_broken_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "daily"
    folder.mkdir()
    for day in (1, 2, 3):
        lines = [HEADER, *_rows(30, day=day, start=100 * day)]
        if day == 2:
            lines.insert(2, lines[2] + ",extra")
        _write(folder / f"2024-01-{day:02d}.csv", lines)
    code, errors, report = _ingest(tmp_path, folder, capsys)
    assert (code, errors) == (0, [])
    assert report is not None
    assert (report["rows_in"], report["rows_out"]) == (91, 90)
    quarantine = _quarantine(tmp_path)
    assert quarantine[["source_file", "source_row", "reason"]].to_dict("records") == [
        {"source_file": str(folder / "2024-01-02.csv"), "source_row": 2, "reason": "malformed_line"}
    ]


def test_file_that_collapses_to_one_column_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "daily"
    folder.mkdir()
    _write(folder / "2024-01-01.csv", [HEADER, *_rows(10, day=1)])
    _write(folder / "2024-01-02.csv", [h.replace(",", ";") for h in [HEADER, *_rows(10, day=2)]])
    code, errors, _ = _ingest(tmp_path, folder, capsys)
    assert code == 2
    assert _one_error(errors) == (
        f"churn: error: {folder / '2024-01-02.csv'} reads as one column with the delimiter ','"
        " of 2024-01-01.csv (its first line is"
        " 'Invoice;InvoiceDate;CustomerID;Amount;Country'); export it like the others or"
        " set ingest.csv.delimiter"
    )


# --- item 5: an unbalanced quote ----------------------------------------------------------


def test_unbalanced_quote_is_quarantined_and_quotes_still_parse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quoted = ['"' + '","'.join(line.split(",")) + '"' for line in [HEADER, *_rows(60)]]
    quoted[4] = quoted[4][:-1]  # data row 4 loses its closing quote
    code, errors, report = _ingest(tmp_path, _write(tmp_path / "quoted.csv", quoted), capsys)
    assert (code, errors) == (0, [])
    assert report is not None
    # The open quote runs on into row 5, so the reader rejects both lines; each is
    # quarantined with its own text and row, and every other row parses with quotes.
    assert (report["rows_in"], report["rows_out"]) == (60, 58)
    assert report["reasons"] == {"malformed_line": 2}
    quarantine = _quarantine(tmp_path)
    assert quarantine["source_row"].tolist() == [4, 5]
    assert quarantine["raw_line"].tolist() == [quoted[4], quoted[5]]
    transactions = pd.read_parquet(tmp_path / "out" / "transactions.parquet")
    assert set(transactions["country"]) == {"United Kingdom"}  # no quote marks kept


# --- item 11 (reading): one line instead of a traceback -----------------------------------

TEXT = [HEADER, "1,2024-01-05 10:00:00,7,3.50,España", "2,2024-01-06 10:00:00,8,4.50,France"]


@pytest.mark.parametrize(
    ("codec", "encoding", "message"),
    [
        (
            "utf-16",
            "utf-8",
            "starts with a UTF-16 byte order mark but is read as utf-8:"
            " set ingest.csv.encoding: utf-16",
        ),
        (
            "latin-1",
            "utf-8",
            "is not utf-8: byte 0xf1 on line 2 cannot be decoded; set"
            " ingest.csv.encoding (latin-1 or utf-16?)",
        ),
        (
            "utf-8",
            "latin-1",
            "is UTF-8 (read as latin-1, 'é' would become 'Ã©'): set ingest.csv.encoding: utf-8",
        ),
        (
            "utf-8",
            "utf-16",
            "is not UTF-16 (no byte order mark, few NUL bytes): set ingest.csv.encoding",
        ),
        (
            "utf-16-le",
            "utf-8",
            "is mostly NUL bytes, so it is UTF-16 or not text at all: set"
            " ingest.csv.encoding: utf-16 if it is a UTF-16 export",
        ),
    ],
)
def test_wrong_encoding_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], codec: str, encoding: str, message: str
) -> None:
    raw = tmp_path / "export.csv"
    raw.write_bytes(("\n".join(TEXT) + "\n").encode(codec))
    code, errors, _ = _ingest(tmp_path, raw, capsys, csv={"encoding": encoding})
    assert code == 2
    assert _one_error(errors) == f"churn: error: {raw} {message}"


@pytest.mark.parametrize("codec", ["utf-16", "latin-1"])
def test_the_right_encoding_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], codec: str
) -> None:
    raw = tmp_path / "export.csv"
    raw.write_bytes(("\n".join(TEXT) + "\n").encode(codec))
    code, errors, report = _ingest(tmp_path, raw, capsys, csv={"encoding": codec})
    assert (code, errors) == (0, [])
    assert report is not None and report["rows_out"] == 2
    transactions = pd.read_parquet(tmp_path / "out" / "transactions.parquet")
    assert transactions["country"].tolist() == ["España", "France"]


def test_crlf_and_lf_mixed_file_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [HEADER, *_rows(12)]
    ends = ["\r\n" if i % 3 else "\n" for i in range(len(lines))]
    raw = tmp_path / "mixed.csv"
    raw.write_bytes("".join(line + end for line, end in zip(lines, ends, strict=True)).encode())
    code, errors, report = _ingest(tmp_path, raw, capsys)
    assert (code, errors) == (0, [])
    assert report is not None
    assert (report["rows_in"], report["rows_out"]) == (12, 12)
    transactions = pd.read_parquet(tmp_path / "out" / "transactions.parquet")
    assert set(transactions["country"]) == {"United Kingdom"}  # no stray carriage return
    assert report["files"] == [str(raw)]  # the user's file, not the LF copy read


def test_empty_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = tmp_path / "export.csv"
    raw.write_bytes(b"")
    code, errors, _ = _ingest(tmp_path, raw, capsys)
    assert code == 2
    assert _one_error(errors) == (
        f"churn: error: file is empty: {raw} (0 bytes); remove it or export it again"
    )


def test_empty_daily_file_in_a_folder_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "daily"
    folder.mkdir()
    _write(folder / "2024-01-01.csv", [HEADER, *_rows(5, day=1)])
    (folder / "2024-01-02.csv").write_bytes(b"")  # the export job died mid-way
    _write(folder / "2024-01-03.csv", [HEADER, *_rows(5, day=3, start=50)])
    code, errors, _ = _ingest(tmp_path, folder, capsys)
    assert code == 2
    assert _one_error(errors) == (
        f"churn: error: file is empty: {folder / '2024-01-02.csv'} (0 bytes);"
        " remove it or export it again"
    )


def test_header_only_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = _write(tmp_path / "export.csv", [HEADER])
    code, errors, _ = _ingest(tmp_path, raw, capsys)
    assert code == 2
    assert _one_error(errors) == (
        f"churn: error: {raw}: no data rows (only a header?); nothing to ingest, check the export"
    )


def test_header_only_day_among_daily_files_is_fine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "daily"
    folder.mkdir()
    _write(folder / "2024-01-01.csv", [HEADER])  # a day without orders
    _write(folder / "2024-01-02.csv", [HEADER, *_rows(5, day=2)])
    code, errors, report = _ingest(tmp_path, folder, capsys)
    assert (code, errors) == (0, [])
    assert report is not None and report["rows_in"] == report["rows_out"] == 5


def test_customers_source_goes_through_the_same_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = _write(tmp_path / "export.csv", [HEADER, *_rows(5)])
    crm = tmp_path / "crm.csv"
    crm.write_bytes(b"")
    # Transactions are written before the customers step fails: issue 13 item 9, not here.
    code, errors, _ = _ingest(
        tmp_path, raw, capsys, wrote_nothing=False, customers={"source": str(crm)}
    )
    assert code == 2
    assert _one_error(errors) == (
        f"churn: error: file is empty: {crm} (0 bytes); remove it or export it again"
    )
    crm.write_bytes(  # mixed line endings and one line with a field too many
        b"Customer ID,Email,Consent\r\n12000,a@example.com,yes\n12001,b@example.com,no\r\n"
        b"12002,c@example.com,yes,what\n"
    )
    code, errors, report = _ingest(tmp_path, raw, capsys, customers={"source": str(crm)})
    assert (code, errors) == (0, [])
    assert report is not None
    table = report["customers_table"]
    assert (table["rows_in"], table["rows_out"], table["malformed_lines"]) == (2, 2, 1)
    customers = pd.read_parquet(tmp_path / "out" / "customers.parquet")
    assert customers["marketing_consent"].tolist() == [True, False]  # no stray "\r"


# --- item 4 through the nightly job: a folder of daily files ------------------------------


def _daily_folder(shop: Shop, folder: Path, broken_line: str | None) -> tuple[Path, int]:
    """The shop's export as one file per month, a broken line near the top of one of them;
    returns the folder and its number of data lines."""
    folder.mkdir()
    raw = shop.raw.copy()
    month = pd.to_datetime(raw["InvoiceDate"]).dt.strftime("%Y-%m")
    lines = 0
    for name, part in raw.groupby(month):
        text = part.to_csv(index=False, date_format="%Y-%m-%d %H:%M:%S").splitlines()
        if name == "2026-06" and broken_line is not None:
            text.insert(2, broken_line)
        _write(folder / f"{name}.csv", text)
        lines += len(text) - 1
    return folder, lines


def test_nightly_publishes_with_the_broken_line_quarantined(shop: Shop, workspace: Path) -> None:
    broken = "599999,2026-06-03 10:00:00,10228,12.50,EIRE,an extra field"
    folder, lines = _daily_folder(shop, workspace / "daily", broken)
    clean, _ = _daily_folder(shop, workspace / "clean", None)
    as_of = FIRST + dt.timedelta(days=1)
    params = write_params(shop, workspace, folder)
    assert run_nightly(params, as_of) == 0
    report = json.loads(
        (workspace / "nightly" / f"as_of={as_of}" / "ingest_report.json").read_text()
    )
    assert report["rows_in"] == lines == report["rows_out"] + report["rows_quarantined"]
    # Exactly the broken line is lost: every other row of its month is read as before.
    baseline = ingest(clean, IngestConfig(max_bad_fraction=1.0), as_of).report
    assert report["rows_out"] == baseline.rows_out
    assert report["reasons"] == {**baseline.reasons, "malformed_line": 1}


def test_nightly_refuses_when_broken_lines_pass_the_guard(
    shop: Shop, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _ = _daily_folder(shop, workspace / "daily", "   ")
    params = write_params(shop, workspace, folder, max_malformed_fraction=0.0)
    before = tree(workspace / "nightly")
    code, line = refused(params, FIRST + dt.timedelta(days=1), capsys)
    assert code == 12
    assert "malformed_line 1" in line and "nightly.max_malformed_fraction=0.0" in line
    assert tree(workspace / "nightly") == before
