"""Ingest keeps every row accounted for and explains each one it sets aside."""

from __future__ import annotations

import datetime as dt
import gzip
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from churn.config import ColumnMap, CsvOptions, CustomersConfig, IngestConfig
from churn.data.customers import ingest_customers
from churn.data.ingest import IngestOutputs, ingest
from churn.errors import UserError
from churn.schema import CUSTOMER_COLUMNS, QUARANTINE_COLUMNS, TRANSACTION_COLUMNS

FIXTURES = Path(__file__).parent / "fixtures"
RETAIL = FIXTURES / "online_retail_messy.csv"

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
LENIENT = IngestConfig(max_bad_fraction=1.0)
NULLS = IngestConfig().null_values


@dataclass
class Run:
    report: dict[str, Any]
    transactions: pd.DataFrame
    quarantine: pd.DataFrame


def run(source: Path, config: IngestConfig = LENIENT, as_of: dt.date | None = None) -> Run:
    result = ingest(source, config, as_of)  # outputs in a scratch folder, never beside fixtures
    return Run(result.report, result.transactions, result.quarantine)


def _write(folder: Path, text: str, name: str = "export.csv") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def _accounted(result: Run) -> None:
    report = result.report
    assert report.rows_in == report.rows_out + report.rows_quarantined
    assert len(result.transactions) == report.rows_out
    assert len(result.quarantine) == report.rows_quarantined
    assert sum(report.reasons.values()) == report.rows_quarantined


def test_every_row_is_accounted_for_with_a_reason(tmp_path: Path) -> None:
    result = run(_write(tmp_path, MESSY_CSV), as_of=dt.date(2025, 1, 1))
    _accounted(result)
    assert result.report.rows_in == 9
    assert result.report.reasons == {
        "guest_order": 1,
        "unparseable_timestamp": 1,
        "non_numeric_amount": 1,
        "absurd_amount": 1,
        "duplicate_line": 1,
        "zero_amount": 1,
        "after_as_of": 1,
    }
    assert list(result.transactions.columns) == list(TRANSACTION_COLUMNS)
    assert list(result.quarantine.columns) == list(QUARANTINE_COLUMNS)
    kept = result.transactions.set_index("order_id")["amount"].to_dict()
    assert kept == {"500001": 20.5, "C500006": -20.5}  # cancellation netted as negative revenue
    rows = result.quarantine.set_index("reason")["source_row"].to_dict()
    assert rows["duplicate_line"] == 6  # the second copy is the duplicate, the first is kept
    assert rows["unparseable_timestamp"] == 3
    assert result.quarantine["source_row"].tolist() == [2, 3, 4, 5, 6, 8, 9]  # file order


def test_messy_retail_export(tmp_path: Path) -> None:
    """BOM, CRLF, quoted commas, dd/mm and ISO dates, decimal commas, trailing spaces."""
    result = run(RETAIL)
    _accounted(result)
    report = result.report
    assert report.rows_in == 15
    assert report.reasons == {
        "duplicate_line": 1,
        "guest_order": 2,
        "unparseable_timestamp": 1,
        "non_numeric_amount": 1,
        "zero_amount": 1,
    }
    assert report.columns == {
        "customer_id": "Customer ID",
        "timestamp": "InvoiceDate",
        "order_id": "Invoice",
        "quantity": "Quantity",
        "unit_price": "Price",
        "product_id": "StockCode",
        "country": "Country",
    }
    assert (report.dayfirst, report.dayfirst_from) == (True, "data")
    tx = result.transactions
    assert list(tx.columns) == [*TRANSACTION_COLUMNS, "quantity", "unit_price", "product_id"]
    assert tx["amount"].round(2).tolist() == [
        15.3,
        20.34,
        11.1,
        54.08,
        -27.5,  # C-invoice, netted
        204.0,  # "2,55" x 80
        11.1,
        20.34,
        -6.9,  # negative quantity without a C prefix is a return
    ]
    assert set(tx["customer_id"]) == {"17850", "13047", "14527", "13748", "15100"}
    assert tx["ts"].iloc[8] == pd.Timestamp("2011-01-03 11:00")  # 03/01/2011 is 3 January
    assert tx["ts"].iloc[6] == pd.Timestamp("2010-12-31 09:01")
    assert set(tx["country"]) == {"United Kingdom"}  # trailing space trimmed
    rows = result.quarantine.groupby("reason")["source_row"].apply(list).to_dict()
    assert rows == {
        "duplicate_line": [5],
        "guest_order": [7, 15],
        "unparseable_timestamp": [10],
        "non_numeric_amount": [11],
        "zero_amount": [14],
    }


def test_default_threshold_stops_the_messy_export(tmp_path: Path) -> None:
    outputs = IngestOutputs(tmp_path / "t.parquet", tmp_path / "q.parquet")
    with pytest.raises(UserError) as excinfo:
        ingest(RETAIL, IngestConfig(), None, outputs)
    message = str(excinfo.value)
    assert "3 of 15 rows" in message and "ingest.max_bad_fraction=0.05" in message
    assert "\n" not in message
    assert not outputs.transactions.exists() and not outputs.quarantine.exists()


def test_policy_rows_do_not_count_towards_the_threshold(tmp_path: Path) -> None:
    lines = ["Invoice,InvoiceDate,CustomerID,Amount"]
    lines += [f"{i},2024-01-{i % 28 + 1:02d} 10:00,{'' if i % 2 else i},5" for i in range(40)]
    result = run(_write(tmp_path, "\n".join(lines) + "\n"), IngestConfig(cancellations="drop"))
    assert result.report.reasons == {"guest_order": 20}
    assert result.report.malformed_rows == 0


def test_drop_policy_quarantines_cancellations(tmp_path: Path) -> None:
    result = run(RETAIL, IngestConfig(max_bad_fraction=1.0, cancellations="drop"))
    _accounted(result)
    assert result.report.reasons["cancellation"] == 2  # C536379 and the -2 quantity
    assert (result.transactions["amount"] > 0).all()


def test_too_many_malformed_rows_stop_the_stage(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"ingest.max_bad_fraction"):
        run(_write(tmp_path, MESSY_CSV), IngestConfig(max_bad_fraction=0.05))


def test_gzip_csv_reads_like_the_plain_file(tmp_path: Path) -> None:
    packed = tmp_path / "retail.csv.gz"
    with RETAIL.open("rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    plain, zipped = run(RETAIL), run(packed)
    assert zipped.report.reasons == plain.report.reasons
    pd.testing.assert_frame_equal(zipped.transactions, plain.transactions)


def test_excel_export(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Order Date", "Customer ID", "Order ID", "Total", "Country"])
    sheet.append([dt.datetime(2024, 3, 1, 9, 30), 101.0, "A1", 12.5, "NL"])
    sheet.append(["02/03/2024 10:00", 102, "A2", "7,25", "NL"])  # typed in by hand
    sheet.append([None, None, None, None, None])  # a blank row is not a row
    sheet.append([dt.datetime(2024, 3, 3), None, "A3", 4.0, "BE"])
    sheet.append(["soon", 103, "A4", 3.0, "BE"])
    path = tmp_path / "export.xlsx"
    book.save(path)
    result = run(path)
    _accounted(result)
    assert result.report.rows_in == 4
    assert result.report.reasons == {"guest_order": 1, "unparseable_timestamp": 1}
    tx = result.transactions
    assert tx["customer_id"].tolist() == ["101", "102"]
    assert tx["amount"].tolist() == [12.5, 7.25]
    assert tx["ts"].tolist() == [pd.Timestamp("2024-03-01 09:30"), pd.Timestamp("2024-03-02 10:00")]
    assert result.quarantine["source_row"].tolist() == [3, 4]


def test_parquet_source(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "customer": ["1", "2", None],
            "when": pd.to_datetime(["2024-01-01 10:00", "2024-01-02 00:00", "2024-01-03 00:00"]),
            "revenue": [10.0, float("nan"), 3.0],
        }
    )
    path = tmp_path / "tx.parquet"
    frame.to_parquet(path)
    config = IngestConfig(
        columns=ColumnMap(customer_id="customer", timestamp="when", amount="revenue"),
        max_bad_fraction=1.0,
    )
    result = run(path, config)
    _accounted(result)
    assert result.report.reasons == {"non_numeric_amount": 1, "guest_order": 1}
    assert result.transactions["ts"].tolist() == [pd.Timestamp("2024-01-01 10:00")]


def test_folder_of_daily_files(tmp_path: Path) -> None:
    folder = tmp_path / "daily"
    folder.mkdir()
    lines = MESSY_CSV.splitlines()
    header, body = lines[0], lines[1:]
    for day, row in enumerate(body[:3]):
        _write(folder, f"{header}\n{row}\n", f"2024-01-0{day + 1}.csv")
    result = run(folder)
    _accounted(result)
    assert result.report.rows_in == 3
    assert len(result.report.files) == 3
    assert set(result.quarantine["source_file"].map(lambda p: Path(p).name)) == {
        "2024-01-02.csv",
        "2024-01-03.csv",
    }
    assert result.quarantine["source_row"].tolist() == [1, 1]


def test_daily_files_with_drifting_columns_and_duplicates_across_files(tmp_path: Path) -> None:
    folder = tmp_path / "daily"
    folder.mkdir()
    _write(
        folder,
        "CustomerID,InvoiceDate,Amount\n1,2024-01-01 09:00,5\n2,2024-01-01 10:00,6\n",
        "d1.csv",
    )
    # The next day's export reorders columns, adds one, and repeats yesterday's last line.
    _write(
        folder,
        "InvoiceDate,Amount,CustomerID,Channel\n2024-01-02 09:00,7,3,web\n",
        "d2.csv",
    )
    _write(folder, "CustomerID,InvoiceDate,Amount\n2,2024-01-01 10:00,6\n", "d3.csv")
    result = run(folder)
    _accounted(result)
    assert result.report.reasons == {"duplicate_line": 1}
    assert result.quarantine[["source_file", "source_row"]].to_numpy().tolist() == [
        [str(folder / "d3.csv"), 1]
    ]
    assert result.transactions["channel"].fillna("-").tolist() == ["-", "-", "web"]


def test_row_numbers_are_exact_across_chunks_and_files(tmp_path: Path) -> None:
    """Bad rows planted at known positions in files much larger than DuckDB's read chunks."""
    folder = tmp_path / "big"
    folder.mkdir()
    planted: dict[str, list[int]] = {}
    for name, n_rows in (("a.csv", 400_000), ("b.csv", 70_001)):
        bad = sorted({1, n_rows, *range(977, n_rows, 9_973)})
        planted[name] = bad
        bad_set = set(bad)
        with (folder / name).open("w") as out:
            out.write("CustomerID,InvoiceDate,Amount,Note\n")
            for i in range(1, n_rows + 1):
                ts = "garbage" if i in bad_set else f"2024-01-{i % 28 + 1:02d} 10:00:00"
                out.write(f"{i % 5000},{ts},{i % 97 + 1}.5,row {i} of {name}\n")
    result = run(folder)
    _accounted(result)
    assert result.report.rows_in == 470_001
    quarantined = result.quarantine.assign(name=result.quarantine["source_file"].map(_name))
    found = quarantined.groupby("name")["source_row"].apply(list).to_dict()
    assert found == planted


@pytest.mark.parametrize("duplicates", [False, True])
def test_transactions_keep_the_file_order(tmp_path: Path, duplicates: bool) -> None:
    """Clean rows come out in file order, as many read chunks as DuckDB splits them into:
    the duplicate check's join let whole chunks swap places now and then, so the same
    export gave another transactions file (and data fingerprint) from run to run."""
    path = tmp_path / "export.csv"
    n_rows = 400_000
    with path.open("w") as out:
        out.write("CustomerID,InvoiceDate,Amount\n")
        for i in range(1, n_rows + 1):
            out.write(f"{i % 5000},2024-01-{i % 28 + 1:02d} 10:00:00,{i}\n")
            if duplicates and i % 50_000 == 0:
                out.write(f"{i % 5000},2024-01-{i % 28 + 1:02d} 10:00:00,{i}\n")
    result = run(path)
    _accounted(result)
    assert result.report.reasons == ({"duplicate_line": 8} if duplicates else {})
    amounts = result.transactions["amount"].to_numpy()
    assert len(amounts) == n_rows
    assert (amounts[1:] > amounts[:-1]).all()


def _name(path: str) -> str:
    return Path(path).name


def test_mapping_names_the_columns_found_and_the_key(tmp_path: Path) -> None:
    config = IngestConfig(columns=ColumnMap(customer_id="Customer"))
    with pytest.raises(UserError) as excinfo:
        run(_write(tmp_path, MESSY_CSV), config)
    message = str(excinfo.value)
    assert "ingest.columns.customer_id" in message
    assert "CustomerID" in message and "\n" not in message


def test_unrecognised_export_lists_columns_and_key(tmp_path: Path) -> None:
    with pytest.raises(UserError) as excinfo:
        run(_write(tmp_path, "who,when,how much\n1,2024-01-01,3\n"))
    message = str(excinfo.value)
    assert message == (
        "no customer id column recognised; columns are: who, when, how much"
        " (set ingest.columns.customer_id)"
    )


def test_explicit_mapping_is_matched_loosely(tmp_path: Path) -> None:
    source = _write(tmp_path, "Kunde Nr,Datum,Umsatz\n7,2024-01-01,3\n")
    config = IngestConfig(
        columns=ColumnMap(customer_id="kunde_nr", timestamp="Datum", amount="umsatz")
    )
    assert run(source, config).transactions["customer_id"].tolist() == ["7"]


def test_month_first_dates_are_detected(tmp_path: Path) -> None:
    source = _write(
        tmp_path, "CustomerID,InvoiceDate,Amount\n1,12/25/2024 10:00,3\n1,01/02/2025,4\n"
    )
    result = run(source)
    assert result.transactions["ts"].tolist() == [
        pd.Timestamp("2024-12-25 10:00"),
        pd.Timestamp("2025-01-02"),
    ]
    assert result.report.dayfirst_from == "data"


def test_mixed_date_orders_need_an_explicit_format(tmp_path: Path) -> None:
    source = _write(tmp_path, "CustomerID,InvoiceDate,Amount\n1,12/25/2024,3\n1,25/12/2024,4\n")
    with pytest.raises(UserError, match=r"ingest\.timestamp_format"):
        run(source)
    explicit = IngestConfig(timestamp_format="%m/%d/%Y", max_bad_fraction=1.0)
    assert run(source, explicit).report.reasons == {"unparseable_timestamp": 1}
    month_first = IngestConfig(dayfirst=False, max_bad_fraction=1.0)
    assert run(source, month_first).report.rows_out == 1


def test_decimal_separator_can_be_forced(tmp_path: Path) -> None:
    source = _write(
        tmp_path, 'CustomerID;InvoiceDate;Amount\n1;2024-01-01;"1.234,50"\n1;2024-01-02;1.234\n'
    )
    auto = run(source)
    assert auto.transactions["amount"].tolist() == [1234.5, 1.234]
    forced = run(source, IngestConfig(decimal_separator=","))
    assert forced.transactions["amount"].tolist() == [1234.5, 1234.0]


def test_csv_options_are_passed_to_the_reader(tmp_path: Path) -> None:
    source = tmp_path / "latin.csv"
    source.write_bytes("Kunde|Datum|Betrag|Land\n7|2024-01-01|3|España\n".encode("latin-1"))
    config = IngestConfig(
        columns=ColumnMap(customer_id="Kunde", timestamp="Datum", amount="Betrag", country="Land"),
        csv=CsvOptions(delimiter="|", encoding="latin-1"),
    )
    assert run(source, config).transactions["country"].tolist() == ["España"]


def test_undecodable_file_is_one_line_user_error(tmp_path: Path) -> None:
    source = tmp_path / "latin.csv"
    source.write_bytes(
        "CustomerID,InvoiceDate,Amount,Land\n7,2024-01-01,3,España\n".encode("latin-1")
    )
    with pytest.raises(UserError) as excinfo:
        run(source)
    message = str(excinfo.value)
    assert "\n" not in message and "encoding" in message


def test_outputs_land_where_asked(tmp_path: Path) -> None:
    outputs = IngestOutputs(tmp_path / "a" / "t.parquet", tmp_path / "b" / "q.parquet")
    result = ingest(_write(tmp_path, MESSY_CSV), LENIENT, None, outputs)
    assert result.outputs == outputs
    assert len(pd.read_parquet(outputs.transactions)) == result.report.rows_out
    assert len(pd.read_parquet(outputs.quarantine)) == result.report.rows_quarantined


def test_missing_source_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        run(tmp_path / "nope.csv")


def test_customers_table_is_canonical(tmp_path: Path) -> None:
    source = _write(
        tmp_path,
        "Customer ID,E-mail,Full Name,Country,Accepts Marketing\n"
        "17850.0,Ann@Example.com ,Ann Smith,United Kingdom,yes\n"
        ",nobody@example.com,Nobody,France,no\n"
        "13047,bob@example.com,Bob Jones,United Kingdom,0\n"
        "17850,ann.other@example.com,Ann Again,United Kingdom,no\n",
        "crm.csv",
    )
    target = tmp_path / "customers.parquet"
    counts = ingest_customers(
        CustomersConfig(source=source), CsvOptions(), target, null_values=NULLS
    )
    assert counts["rows_in"] == 4 and counts["missing_id"] == 1 and counts["duplicate_id"] == 1
    table = pd.read_parquet(target)
    assert list(table.columns) == list(CUSTOMER_COLUMNS)
    assert table.to_dict("records") == [
        {
            "customer_id": "13047",
            "email": "bob@example.com",
            "name": "Bob Jones",
            "country": "United Kingdom",
            "marketing_consent": False,
        },
        {
            "customer_id": "17850",
            "email": "ann@example.com",
            "name": "Ann Smith",
            "country": "United Kingdom",
            "marketing_consent": True,
        },
    ]


def test_customers_table_without_a_source_is_empty_but_exists(tmp_path: Path) -> None:
    target = tmp_path / "customers.parquet"
    counts = ingest_customers(CustomersConfig(), CsvOptions(), target, null_values=NULLS)
    assert counts["rows_out"] == 0
    table = pd.read_parquet(target)
    assert list(table.columns) == list(CUSTOMER_COLUMNS) and table.empty
