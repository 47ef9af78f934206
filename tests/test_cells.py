"""Formula neutralising (churn.cells): what it changes, that it undoes exactly, and that
every spreadsheet the product writes goes through it."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from churn.atomic import write_csv
from churn.cells import FORMULA_STARTS, neutralise, neutralise_frame, restore

SRC = Path(__file__).resolve().parents[1] / "src" / "churn"

IDS = [
    '=HYPERLINK("http://x","click")',
    "+cmd|' /C calc'!A0",
    "@SUM(1)",
    "-2+3",
    "-12",
    "\t=1+1",
    "\r=1+1",
    "a\rb",
    "line\nbreak",
    "'",
    "''",
    "'=x",
    "'abc",
    "=",
    "",
    "C123",
    'quote " and, comma',
    " =leading space",
]


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_formula_starts_get_one_quote(start: str) -> None:
    assert neutralise(f"{start}1+1") == f"'{start}1+1"


def test_plain_text_numbers_and_missing_values_are_untouched() -> None:
    for value in ("C123", "Ann", "a=b", " =x", "", -2.5, -3, np.float64(-1.5), None, np.nan):
        assert neutralise(value) is value


@given(st.text())
def test_restore_undoes_neutralise_for_every_text(text: str) -> None:
    safe = neutralise(text)
    assert not str(safe).startswith(FORMULA_STARTS)
    assert restore(safe) == text


def test_restore_leaves_text_that_was_never_neutralised() -> None:
    for text in ("C123", "'abc", "'", " '=x"):
        assert restore(text) == text


def test_frame_text_columns_change_numbers_do_not() -> None:
    frame = pd.DataFrame(
        {
            "id": IDS[:4],
            "amount": [-1.5, -2.0, 3.0, -4.25],
            "count": [-1, 2, -3, 4],
            "band": pd.Categorical(["=high", "low", "=high", "low"]),
            "note": pd.array(["-x", None, "ok", "@y"], dtype="string"),
            "=header": [True, False, True, False],
        }
    )
    safe = neutralise_frame(frame)
    assert safe["id"].tolist() == ["'" + i for i in IDS[:4]]
    assert safe["amount"].dtype == float and safe["amount"].tolist() == [-1.5, -2.0, 3.0, -4.25]
    assert safe["count"].dtype == "int64"
    assert safe["band"].tolist() == ["'=high", "low", "'=high", "low"]
    assert safe["note"].tolist()[0] == "'-x" and pd.isna(safe["note"].tolist()[1])
    assert list(safe.columns) == ["id", "amount", "count", "band", "note", "'=header"]
    assert frame["id"].tolist() == IDS[:4]  # the input is not modified


def test_csv_round_trips_every_id_and_keeps_one_row_per_record(tmp_path: Path) -> None:
    """What a CRM loader does: read the CSV (RFC 4180), strip the quote rule, join."""
    path = tmp_path / "list.csv"
    write_csv(pd.DataFrame({"Customer ID": IDS, "Amount": -1.25}), path)
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [restore(row["Customer ID"]) for row in rows] == IDS
    assert all(float(row["Amount"]) == -1.25 for row in rows)
    for row in rows:
        assert not row["Customer ID"].startswith(FORMULA_STARTS)
    read = pd.read_csv(path, dtype={"Customer ID": str}, keep_default_na=False)
    assert read["Customer ID"].map(restore).tolist() == IDS
    assert read["Amount"].dtype == float


def test_every_spreadsheet_writer_goes_through_the_neutraliser() -> None:
    """CSV only through churn.atomic.write_csv, XLSX only through scoring.export.write_xlsx.

    The exceptions are the raw sample (`churn generate`, and `churn simulate-campaign`
    appending the campaign's purchases to it): an input for `churn ingest`, which must read
    back the ids it wrote.
    """
    allowed = {
        "atomic.py": {"to_csv("},
        "scoring/export.py": {"Workbook(", "ExcelWriter("},  # both inside write_xlsx
        "stages/generate.py": {"shop.transactions.to_csv("},
        "data/campaign.py": {"result.transactions.to_csv("},
    }
    pattern = re.compile(r"[\w.]*(?:to_csv|to_excel|Workbook|ExcelWriter|csv\.writer)\(")
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        name = str(path.relative_to(SRC))
        calls = {m.group(0) for m in pattern.finditer(path.read_text())} - {"load_Workbook("}
        calls = {c for c in calls if not any(c.endswith(a) for a in allowed.get(name, ()))}
        if calls:
            found[name] = sorted(calls)
    assert found == {}
