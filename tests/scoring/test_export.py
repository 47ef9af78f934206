"""The contact list: consent filter counts, marketing column names, filters, Excel readback."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from churn.errors import UserError
from churn.schema import EXPORT_HEADERS
from churn.scoring.export import (
    CONSENT_OK,
    NO_CONSENT,
    NOT_IN_CUSTOMERS,
    UNKNOWN_CONSENT,
    XLSX_TIME,
    ExportFilters,
    build_export,
    consent_status,
    why_empty,
    write_xlsx,
)


def _targets() -> pd.DataFrame:
    n = 8
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "as_of": pd.Timestamp("2026-10-01"),
            "churn_probability": np.linspace(0.9, 0.2, n),
            "risk_band": ["high", "high", "high", "medium", "medium", "medium", "low", "low"],
            "risk_rank": np.arange(1, n + 1),
            "p_alive": np.linspace(0.1, 0.8, n),
            "expected_value_12m": [100.0, 300.0, 50.0, 80.0, 500.0, 20.0, 60.0, 40.0],
            "clv_discounted": [180.0, 555.556, 70.0, 150.0, 900.0, 25.0, 100.0, 70.0],
            "next_purchase_date": pd.Series(pd.to_datetime(["2026-11-03", "NaT"] * 4)),
            "value_at_risk": 0.0,
            "segment": ["At risk", "Champions", "Lost", "At risk", "Loyal", "Lost", "New", "New"],
            "recency_days": [100.2, 80.0, 300.0, 40.0, 20.0, 200.0, 10.0, 5.0],
            "n_orders": [3, 10, 1, 4, 12, 1, 1, 2],
            "revenue": [200.0, 900.0, 30.0, 150.0, 2000.0, 15.0, 40.0, 60.0],
            "reason_1": ["no purchase for 100 days, usually every 30", *[""] * (n - 1)],
            "reason_2": "",
            "reason_3": "",
            "model_name": "churn-classifier",
            "model_version": "1",
            "model_uri": "models:/churn-classifier@champion",
            # gains out of order on purpose: the list is sorted by expected gain
            "expected_gain": [5.0, 30.0, 2.0, 8.0, 50.0, -1.0, 1.0, 3.0],
            "action": ["Offer", "Call", "Email", "Offer", "Call", "Email", "Email", "Email"],
            "contact_cost": [5.0, 15.0, 0.5, 5.0, 15.0, 0.5, 0.5, 0.5],
            "save_rate": 0.1,
            "targeted": [True, True, True, True, True, False, True, True],
            "control_group": [False, False, False, True, False, False, False, False],
        }
    ).assign(selected=lambda t: t["targeted"] & ~t["control_group"])


CUSTOMERS = pd.DataFrame(
    {
        "customer_id": ["c0", "c1", "c2", "c3", "c4", "c5", "c6"],  # c7 is missing
        "email": ["a@x.com", "b@x.com", "c@x.com", "d@x.com", "e@x.com", "f@x.com", "g@x.com"],
        "name": ["Ann", "Bob", "Cy", "Di", "Ed", "Flo", "Gus"],
        "country": ["DE", "FR", "DE", "NL", "UK", "DE", "FR"],
        "marketing_consent": pd.array([True, True, False, True, None, True, True], "boolean"),
    }
)


def test_consent_status_covers_every_kind() -> None:
    status = consent_status(_targets()["customer_id"], CUSTOMERS)
    assert status.tolist() == [
        CONSENT_OK,
        CONSENT_OK,
        NO_CONSENT,
        CONSENT_OK,
        UNKNOWN_CONSENT,
        CONSENT_OK,
        CONSENT_OK,
        NOT_IN_CUSTOMERS,
    ]
    empty = consent_status(_targets()["customer_id"], CUSTOMERS.head(0))
    assert set(empty) == {CONSENT_OK}


def test_export_drops_and_counts_non_consenting_and_control() -> None:
    targets = _targets()
    consent = consent_status(targets["customer_id"], CUSTOMERS)
    exported, summary = build_export(targets, consent, CUSTOMERS, ExportFilters())
    assert exported["Customer ID"].tolist() == ["c1", "c0", "c6"]  # best expected gain first
    assert summary["left_out"] == {NO_CONSENT: 1, UNKNOWN_CONSENT: 1, NOT_IN_CUSTOMERS: 1}
    assert summary["control_group_held_out"] == 1
    assert summary["worth_contacting"] == 7 and summary["exported"] == 3
    assert summary["exported_cost"] == 20.5
    assert exported["Email"].tolist() == ["b@x.com", "a@x.com", "g@x.com"]
    assert exported["Priority"].tolist() == [1, 2, 3]
    assert list(exported.columns) == list(EXPORT_HEADERS.values())
    for name in ("Customer ID", "Churn risk (%)", "Risk band", "Value at risk"):
        assert name in exported.columns
    assert {"Recommended action", "Why (1)", "Why (2)", "Why (3)"} <= set(exported.columns)
    row = exported[exported["Customer ID"] == "c0"].iloc[0]
    assert row["Churn risk (%)"] == 90.0 and row["Days since last order"] == 100
    assert row["Why (1)"] == "no purchase for 100 days, usually every 30"
    assert row["Next purchase expected"] == dt.date(2026, 11, 3)
    best = exported.iloc[0]  # c1: no next purchase expected, an empty cell
    assert best["Next purchase expected"] is None and best["Lifetime value (discounted)"] == 555.56


def test_without_a_customers_table_everyone_may_be_contacted() -> None:
    targets = _targets()
    consent = consent_status(targets["customer_id"], None)
    exported, summary = build_export(targets, consent, None, ExportFilters())
    assert exported["Customer ID"].tolist() == ["c4", "c1", "c0", "c7", "c2", "c6"]
    assert set(exported["Email"]) == {""}
    assert sum(summary["left_out"].values()) == 0


def _why_empty(
    targets: pd.DataFrame, customers: pd.DataFrame | None, filters: ExportFilters
) -> str:
    consent = consent_status(targets["customer_id"], customers)
    exported, summary = build_export(targets, consent, customers, filters)
    assert exported.empty
    return why_empty(targets, consent, summary, filters)


@pytest.mark.parametrize(
    ("filters", "reason"),
    [
        (
            ExportFilters(segments=["Hibernating"]),
            "--segment 'Hibernating' left 0 of 6 selected customers",
        ),
        (
            ExportFilters(segments=["At risk", "Lost"], bands=["low"], top_n=5),
            "--band 'low' left 0 of 6 selected customers"
            " (after --segment 'At risk' --segment 'Lost': 2)",
        ),
        (
            ExportFilters(min_value=1000.0, from_params=frozenset({"min_value"})),
            "export.min_value 1000 left 0 of 6 selected customers",
        ),
        (
            ExportFilters(bands=["low"], actions=["Call"], from_params=frozenset({"actions"})),
            "export.actions ['Call'] left 0 of 6 selected customers (after --band 'low': 2)",
        ),
    ],
)
def test_an_empty_list_names_the_filter_that_emptied_it(
    filters: ExportFilters, reason: str
) -> None:
    assert _why_empty(_targets(), None, filters) == reason


def test_an_empty_list_before_any_filter_names_the_step_that_emptied_it() -> None:
    targets = _targets()
    nobody = targets.assign(targeted=False, selected=False)
    refused = CUSTOMERS.assign(marketing_consent=pd.array([False] * 7, "boolean"))
    assert _why_empty(nobody, refused, ExportFilters()) == (
        "none of the 7 customers worth contacting may be contacted"
        " (no_consent 6, not_in_customers_table 1)"
    )
    assert _why_empty(nobody, None, ExportFilters()) == (
        "the budget picked nobody (targeting.max_contacts, targeting.max_budget)"
    )
    held_out = targets.assign(control_group=targets["targeted"], selected=False)
    assert _why_empty(held_out, None, ExportFilters()) == (
        "all 7 targeted customers were held out as the control group (targeting.control_fraction)"
    )
    worthless = targets.assign(expected_gain=-1.0, targeted=False, selected=False)
    assert _why_empty(worthless, None, ExportFilters()) == (
        "none of the 8 scored customers is worth contacting"
        " (no action with a positive expected gain: see targeting.rules and .actions)"
    )


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (ExportFilters(segments=["Champions", "Loyal"]), ["c4", "c1"]),
        (ExportFilters(bands=["high"]), ["c1", "c0", "c2"]),
        (ExportFilters(min_value=100.0), ["c4", "c1", "c0"]),
        (ExportFilters(actions=["Email"]), ["c7", "c2", "c6"]),
        (ExportFilters(top_n=2), ["c4", "c1"]),
        (ExportFilters(bands=["high", "low"], top_n=3), ["c1", "c0", "c7"]),
    ],
)
def test_filters(filters: ExportFilters, expected: list[str]) -> None:
    targets = _targets()
    consent = consent_status(targets["customer_id"], None)
    exported, summary = build_export(targets, consent, None, filters)
    assert exported["Customer ID"].tolist() == expected
    assert summary["removed_by_filters"] == 6 - len(expected)


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        (ExportFilters(segments=["At Risk"]), "--segment 'At Risk' is not one of"),
        (ExportFilters(bands=["extreme"]), "--band 'extreme' is not one of"),
        (ExportFilters(actions=["Fax"]), "--action 'Fax' is not one of: 'Call', 'Email'"),
        (ExportFilters(top_n=0), "--top must be a positive"),
    ],
)
def test_bad_filter_values_are_user_errors(filters: ExportFilters, message: str) -> None:
    with pytest.raises(UserError, match=message):
        filters.check(["Call", "Email"])


def test_excel_reads_back_with_the_same_cells(tmp_path: Path) -> None:
    targets = _targets()
    consent = consent_status(targets["customer_id"], CUSTOMERS)
    exported, _ = build_export(targets, consent, CUSTOMERS, ExportFilters())
    path = tmp_path / "list.xlsx"
    write_xlsx(exported, path)
    sheet = load_workbook(path, read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == list(EXPORT_HEADERS.values())
    assert len(rows) == 1 + len(exported)
    header = list(rows[0])
    first = dict(zip(header, rows[1], strict=True))
    assert first["Customer ID"] == "c1" and first["Name"] == "Bob"
    # The cell holds the fraction Excel shows as a percentage (80 in the CSV).
    assert first["Churn risk (%)"] == pytest.approx(exported["Churn risk (%)"].iloc[0] / 100)
    assert first["Recommended action"] == "Call"
    assert first["Expected gain"] == 30.0 and first["Contact cost"] == 15.0
    assert first["Next purchase expected"] is None
    second = dict(zip(header, rows[2], strict=True))
    assert second["Next purchase expected"] == dt.datetime(2026, 11, 3)  # a date cell


def test_excel_list_is_formatted_filterable_and_explained(tmp_path: Path) -> None:
    """#18: currency and percent formats, rounded for people; an autofilter over the whole
    list; the header row frozen; a "How to read this list" sheet with the ordering, the
    one risk number and every column."""
    targets = _targets()
    consent = consent_status(targets["customer_id"], CUSTOMERS)
    exported, _ = build_export(targets, consent, CUSTOMERS, ExportFilters())
    path = tmp_path / "list.xlsx"
    write_xlsx(exported, path, currency="€", horizon_days=90)
    book = load_workbook(path)
    assert book.sheetnames == ["Retention list", "How to read this list"]
    sheet = book["Retention list"]
    header = [c.value for c in sheet[1]]
    formats = {h: sheet.cell(row=2, column=i + 1).number_format for i, h in enumerate(header)}
    assert formats["Expected value, next 12 months"] == '"€"#,##0'
    assert formats["Lifetime value (discounted)"] == '"€"#,##0'
    assert formats["Value at risk"] == formats["Revenue to date"] == '"€"#,##0'
    assert formats["Contact cost"] == formats["Expected gain"] == '"€"#,##0.00'
    assert formats["Churn risk (%)"] == formats["Save rate (%)"] == "0%"
    assert formats["Days since last order"] == formats["Orders to date"] == "#,##0"
    assert formats["Next purchase expected"] == "yyyy-mm-dd"
    assert formats["Customer ID"] == formats["Why (1)"] == "General"  # text as it is
    assert sheet.cell(row=2, column=header.index("Save rate (%)") + 1).value == 0.1
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:{sheet.cell(row=1, column=len(header)).column_letter}4"
    guide = [[c.value for c in row] for row in book["How to read this list"].iter_rows()]
    text = " ".join(str(v) for row in guide for v in row if v)
    assert "expected gain = churn risk x expected 12-month value x save rate" in text
    assert "Money is in €" in text and "next 90 days" in text
    assert "'Picked for value'" in text and "chance still active" in text
    explained = {row[0] for row in guide[guide.index(["Column", "What it means"]) + 1 :]}
    assert explained == set(header)
    assert not any("Chance still active" in h for h in header)  # one risk number


def test_excel_guide_and_formats_only_for_list_columns(tmp_path: Path) -> None:
    """Any frame of list rows gets the formats of the columns it has (a page's cut of the
    list); other columns are written as they are, and explained in the guide only if known."""
    frame = pd.DataFrame({"Customer ID": ["c1"], "Churn risk (%)": [66.4], "Other": [3.5]})
    path = tmp_path / "cut.xlsx"
    write_xlsx(frame, path, currency="CHF ")
    book = load_workbook(path)
    sheet = book.active
    assert [c.number_format for c in sheet[2]] == ["General", "0%", "General"]
    assert [c.value for c in sheet[2]] == ["c1", 0.664, 3.5]
    guide = [row[0].value for row in book["How to read this list"].iter_rows()]
    assert guide[-2:] == ["Customer ID", "Churn risk (%)"] and "Money is in CHF " in " ".join(
        str(g) for g in guide
    )


def test_country_comes_from_the_transactions_without_a_customers_table() -> None:
    """#18: Country was empty when the transactions carry it; a customers table still wins."""
    targets = _targets()
    countries = pd.DataFrame({"customer_id": ["c1", "c4", "c0"], "country": ["Germany"] * 3})
    consent = consent_status(targets["customer_id"], None)
    exported, _ = build_export(targets, consent, None, ExportFilters(), contacts=countries)
    by_id = dict(zip(exported["Customer ID"], exported["Country"], strict=True))
    assert by_id == {
        "c4": "Germany",
        "c1": "Germany",
        "c0": "Germany",
        "c7": "",
        "c2": "",
        "c6": "",
    }
    consent = consent_status(targets["customer_id"], CUSTOMERS)
    exported, _ = build_export(targets, consent, CUSTOMERS, ExportFilters(), contacts=countries)
    assert exported["Country"].tolist() == ["FR", "DE", "FR"]


def test_countries_can_be_looked_up_for_the_listed_customers_only() -> None:
    """The nightly passes a look-up instead of every customer's country (issue 20): it is
    asked for the listed customers alone and gives the same list."""
    targets = _targets()
    countries = pd.DataFrame({"customer_id": ["c1", "c4", "c0"], "country": ["Germany"] * 3})
    consent = consent_status(targets["customer_id"], None)
    asked: list[list[str]] = []

    def look_up(listed: pd.Series) -> pd.DataFrame:
        asked.append(sorted(listed))
        return countries[countries["customer_id"].isin(listed)]

    want, _ = build_export(targets, consent, None, ExportFilters(), contacts=countries)
    got, _ = build_export(targets, consent, None, ExportFilters(), contacts=look_up)
    pd.testing.assert_frame_equal(got, want)
    assert asked == [sorted(want["Customer ID"])]


def test_excel_cells_are_text_never_formulas(tmp_path: Path) -> None:
    """Formula-like text is neutralised and stored as a string; numbers stay numbers;
    a control character XML cannot hold does not fail the export."""
    frame = pd.DataFrame(
        {
            "Customer ID": ['=HYPERLINK("http://x","y")', "+1", "@SUM(1)", "-2+3", "ok\x01"],
            "Name": ["=1+1", "\t=2", "'=3", "Ann", "Bob"],
            "Value at risk": [-12.5, 3.0, np.nan, 0.0, -1.0],
            "Orders to date": [1, -2, 3, 4, 5],
            "=header": ["a", "b", "c", "d", "e"],
        }
    )
    path = tmp_path / "list.xlsx"
    write_xlsx(frame, path)
    rows = list(load_workbook(path).active.iter_rows())
    assert all(cell.data_type != "f" for row in rows for cell in row)
    values = [[cell.value for cell in row] for row in rows]
    assert values[0] == ["Customer ID", "Name", "Value at risk", "Orders to date", "'=header"]
    assert [r[0] for r in values[1:]] == [
        '\'=HYPERLINK("http://x","y")',
        "'+1",
        "'@SUM(1)",
        "'-2+3",
        "ok\ufffd",
    ]
    assert [r[1] for r in values[1:]] == ["'=1+1", "'\t=2", "''=3", "Ann", "Bob"]
    assert [r[2] for r in values[1:]] == [-12.5, 3, None, 0, -1]
    assert [r[3] for r in values[1:]] == [1, -2, 3, 4, 5]
    assert all(rows[1][i].data_type == "s" for i in (0, 1))
    assert rows[1][2].data_type == "n"


def test_excel_is_the_same_bytes_whenever_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The XLSX is a DVC output: a rerun must not change it. zipfile dates each entry
    with the clock, openpyxl stamps the workbook's created/modified properties."""
    targets = _targets()
    consent = consent_status(targets["customer_id"], CUSTOMERS)
    exported, _ = build_export(targets, consent, CUSTOMERS, ExportFilters())
    written = []
    for clock in (1_700_000_000.0, 1_800_000_000.0):
        monkeypatch.setattr(time, "time", lambda clock=clock: clock)
        path = tmp_path / f"{clock:.0f}.xlsx"
        write_xlsx(exported, path)
        written.append(path.read_bytes())
    assert written[0] == written[1]
    book = load_workbook(tmp_path / "1700000000.xlsx")
    assert book.properties.created == book.properties.modified == XLSX_TIME
