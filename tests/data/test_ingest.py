"""Ingest keeps every row accounted for and explains each one it sets aside."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from churn.config import ColumnMap, IngestConfig
from churn.data.ingest import CANONICAL_COLUMNS, ingest
from churn.errors import UserError

MESSY_CSV = """Invoice,InvoiceDate,CustomerID,Amount,Country
500001,2024-01-05 10:00:00,12345,20.50,United Kingdom
500002,2024-01-06 11:00:00,,15.00,United Kingdom
500003,not a date,12345,10.00,United Kingdom
500004,2024-01-07 12:00:00,12346,abc,France
500005,2024-01-08 12:00:00,12346,99999999,France
500001,2024-01-05 10:00:00,12345,20.50,United Kingdom
C500006,2024-01-09 09:00:00,12345,-20.50,United Kingdom
500007,2024-01-10 09:00:00, 12347.0 ,0,Germany
500008,2025-06-01 09:00:00,12347,5.00,Germany
"""


def _write(tmp_path: Path, text: str, name: str = "export.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_row_is_accounted_for_with_a_reason(tmp_path: Path) -> None:
    source = _write(tmp_path, MESSY_CSV)
    result = ingest(source, IngestConfig(max_bad_fraction=1.0), as_of=dt.date(2025, 1, 1))
    report = result.report
    assert report["rows_in"] == 9
    assert report["rows_in"] == report["rows_out"] + report["rows_quarantined"]
    assert report["reasons"] == {
        "guest_order": 1,
        "unparseable_timestamp": 1,
        "non_numeric_amount": 1,
        "absurd_amount": 1,
        "duplicate_line": 1,
        "zero_amount": 1,
        "after_as_of": 1,
    }
    assert list(result.transactions.columns) == CANONICAL_COLUMNS
    kept = result.transactions.set_index("order_id")["amount"].to_dict()
    assert kept == {"500001": 20.5, "C500006": -20.5}  # cancellation netted as negative revenue
    rows = result.quarantine.set_index("reason")["source_row"].to_dict()
    assert rows["duplicate_line"] == 6  # the second copy is the duplicate, the first is kept
    assert rows["unparseable_timestamp"] == 3


def test_drop_policy_quarantines_cancellations(tmp_path: Path) -> None:
    source = _write(tmp_path, MESSY_CSV)
    result = ingest(source, IngestConfig(max_bad_fraction=1.0, cancellations="drop"), as_of=None)
    assert result.report["reasons"]["cancellation"] == 1
    assert (result.transactions["amount"] > 0).all()


def test_too_many_malformed_rows_stop_the_stage(tmp_path: Path) -> None:
    source = _write(tmp_path, MESSY_CSV)
    with pytest.raises(UserError, match=r"ingest.max_bad_fraction"):
        ingest(source, IngestConfig(max_bad_fraction=0.05), as_of=None)


def test_missing_column_names_found_columns_and_key(tmp_path: Path) -> None:
    source = _write(tmp_path, MESSY_CSV)
    config = IngestConfig(columns=ColumnMap(customer_id="Customer"))
    with pytest.raises(UserError) as excinfo:
        ingest(source, config, as_of=None)
    message = str(excinfo.value)
    assert "ingest.columns.customer_id" in message
    assert "CustomerID" in message and "\n" not in message


def test_folder_of_daily_files(tmp_path: Path) -> None:
    folder = tmp_path / "daily"
    folder.mkdir()
    lines = MESSY_CSV.splitlines()
    header, body = lines[0], lines[1:]
    for day, row in enumerate(body[:3]):
        _write(folder, f"{header}\n{row}\n", f"2024-01-0{day + 1}.csv")
    result = ingest(folder, IngestConfig(max_bad_fraction=1.0), as_of=None)
    assert result.report["rows_in"] == 3
    assert len(result.report["files"]) == 3
    assert set(result.quarantine["source_file"].map(lambda p: Path(p).name)) == {
        "2024-01-02.csv",
        "2024-01-03.csv",
    }


def test_missing_source_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        ingest(tmp_path / "nope.csv", IngestConfig(), as_of=None)
