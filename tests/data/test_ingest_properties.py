"""Whatever the export holds, ingest either accounts for every row or stops with one line.

Hypothesis writes CSVs the way broken exports look: well-formed rows with garbage
cells (nothing may be lost: rows_in is the number of rows written), and raw
garbage text (no traceback, no silent loss). A subprocess run checks what the
user actually sees from `python -m churn ingest`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churn.config import IngestConfig
from churn.data.ingest import IngestOutputs, ingest
from churn.errors import UserError

HEADER = ["Invoice", "InvoiceDate", "CustomerID", "Amount", "Country"]

cells = st.one_of(
    st.sampled_from(
        ["", " ", "2024-01-05 10:00:00", "05/01/2024 10:00", "13/01/2024", "12.50", "1,5", "-3"]
    ),
    st.sampled_from(["C500001", "NaN", "inf", "1e400", "12345.0", "ñandú", '"', "a,b", "\t"]),
    st.text(max_size=12),
)
good_row = st.tuples(
    st.from_regex(r"C?5[0-9]{5}", fullmatch=True),
    st.sampled_from(["2024-01-05 10:00:00", "06/01/2024 11:30", "2024-02-01"]),
    st.sampled_from(["12345", "12346", "", "12347.0"]),
    st.sampled_from(["20.50", "-5", "0", "3,75"]),
    st.sampled_from(["United Kingdom", "France", ""]),
).map(list)
bad_row = st.lists(cells, min_size=5, max_size=5)
rows = st.lists(st.one_of(good_row, good_row, bad_row), min_size=1, max_size=40)
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _csv_text(body: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # quotes any cell holding \r or \n
    writer.writerow(HEADER)
    writer.writerows(body)
    return out.getvalue()


def _ingest(text: str, max_bad_fraction: float) -> tuple[dict[str, object], int, int] | str:
    """The report and output lengths, or the UserError message."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "export.csv"
        source.write_text(text, encoding="utf-8")
        outputs = IngestOutputs(Path(tmp) / "t.parquet", Path(tmp) / "q.parquet")
        config = IngestConfig(max_bad_fraction=max_bad_fraction)
        try:
            report = ingest(source, config, dt.date(2025, 1, 1), outputs).report
        except UserError as exc:
            assert not outputs.transactions.exists()
            return str(exc)
        n_tx = len(pd.read_parquet(outputs.transactions))
        n_q = len(pd.read_parquet(outputs.quarantine))
        return report, n_tx, n_q


@SETTINGS
@given(body=rows, max_bad_fraction=st.sampled_from([0.05, 0.5, 1.0]))
def test_well_formed_csv_loses_no_row(body: list[list[str]], max_bad_fraction: float) -> None:
    result = _ingest(_csv_text(body), max_bad_fraction)
    if isinstance(result, str):
        assert "\n" not in result
        assert "max_bad_fraction" in result or "dates in column" in result
        return
    report, n_tx, n_q = result
    assert report.rows_in == len(body)
    assert report.rows_in == report.rows_out + report.rows_quarantined
    assert (n_tx, n_q) == (report.rows_out, report.rows_quarantined)


@SETTINGS
@given(
    text=st.one_of(
        st.text(max_size=300),
        st.lists(st.text(alphabet=',;"\n\r\t ab1-/.:C', max_size=30), max_size=12).map(
            lambda lines: ",".join(HEADER) + "\n" + "\n".join(lines)
        ),
    )
)
def test_garbage_never_escapes_as_a_traceback(text: str) -> None:
    result = _ingest(text, 1.0)
    if isinstance(result, str):
        assert "\n" not in result and result
        return
    report, n_tx, n_q = result
    assert report.rows_in == report.rows_out + report.rows_quarantined
    assert (n_tx, n_q) == (report.rows_out, report.rows_quarantined)


def test_cli_on_a_malformed_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "export.csv").write_text(
        "Invoice,InvoiceDate,CustomerID,Amount\n1,yesterday,7,abc\n2,2024-01-01,7,3\n"
    )
    (tmp_path / "params.yaml").write_text("paths:\n  raw_transactions: export.csv\n")
    proc = subprocess.run(
        [sys.executable, "-m", "churn", "ingest"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1
    assert errors[0].startswith("churn: error: 1 of 2 rows (50.0%) are malformed")
    assert not (tmp_path / "data/interim/transactions.parquet").exists()


def test_cli_writes_every_output(tmp_path: Path) -> None:
    (tmp_path / "export.csv").write_text("Customer ID,Date,Total\n7,2024-01-01,3\n8,,4\n")
    (tmp_path / "params.yaml").write_text(
        "paths:\n  raw_transactions: export.csv\ningest:\n  max_bad_fraction: 1.0\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "churn", "ingest"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    interim = tmp_path / "data/interim"
    for name in ("transactions.parquet", "quarantine.parquet", "customers.parquet"):
        assert (interim / name).exists()
    report = (interim / "ingest_report.json").read_text()
    assert '"unparseable_timestamp": 1' in report and '"customers_table"' in report


def test_a_line_break_inside_a_header_cell_stays_on_one_error_line() -> None:
    from churn.data.columns import shown

    assert shown(["Customer\nID", "Date"]) == "Customer\\nID, Date"
