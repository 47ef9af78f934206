"""Issue 13, case 1: formula injection. Hostile customer ids, names, emails and countries
go through the real `churn ingest` -> `score` -> `export` and the real nightly job; no
spreadsheet cell the product writes may start a formula, and every id must come back.

The raw export is Parquet: a CSV with a bare carriage return inside a field is an
ingest problem of its own (cases 4/5), and here the point is what comes out.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from openpyxl import load_workbook

from churn.cells import FORMULA_STARTS, restore
from churn.schema import EXPORT_HEADERS
from nightly_shop import FIRST, NAME, Shop, run_cli, run_nightly, tree, write_params

# OWASP's examples and the issue's, plus a carriage return and a quote that must round-trip.
HOSTILE = (
    '=HYPERLINK("http://x","click me")',
    "+cmd|' /C calc'!A0",
    "@SUM(1)",
    "-2+3",
    "\r=1+1",
    "'=already quoted",
)
# Headers of exported columns that carry text from the data, and some that carry numbers.
TEXT_COLUMNS = tuple(EXPORT_HEADERS[c] for c in ("customer_id", "name", "email", "country"))
NUMBER_COLUMNS = tuple(
    EXPORT_HEADERS[c]
    for c in ("priority", "churn_probability", "value_at_risk", "expected_gain", "revenue")
)


def _hostile_ids(raw: pd.DataFrame) -> dict[str, str]:
    """Every known customer id -> a hostile one (a hostile prefix, then the old id)."""
    ids = sorted(set(raw["CustomerID"]) - {""})
    return {old: f"{HOSTILE[k % len(HOSTILE)]}{old}" for k, old in enumerate(ids)}


def _write_inputs(shop: Shop, folder: Path) -> tuple[Path, Path, dict[str, str]]:
    """The shop's raw export and a customers table, both with hostile text; Parquet."""
    mapping = _hostile_ids(shop.raw)
    # Guest orders keep no id (None, as a CSV reader gives them): an empty string in
    # Parquet would be a customer of its own (a null-like id, another case of issue 13).
    raw = shop.raw.assign(CustomerID=shop.raw["CustomerID"].map(mapping))
    raw_path = folder / "raw.parquet"
    raw.to_parquet(raw_path, index=False)
    new_ids = list(mapping.values())
    shift = [HOSTILE[(k + 1) % len(HOSTILE)] for k in range(len(new_ids))]
    customers = pd.DataFrame(
        {
            "customer_id": new_ids,
            "name": shift,
            "email": [f"{h}@example.com" for h in shift],
            "country": [HOSTILE[(k + 2) % len(HOSTILE)] for k in range(len(new_ids))],
            "marketing_consent": True,
        }
    )
    customers_path = folder / "customers.parquet"
    customers.to_parquet(customers_path, index=False)
    return raw_path, customers_path, mapping


def _csv_rows(path: Path) -> list[dict[str, str]]:
    """The CSV as a spreadsheet or CRM loader reads it (the csv module, RFC 4180)."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _assert_safe_csv(path: Path, known_ids: set[str], n_rows: int) -> list[str]:
    """No text cell starts a formula, no row was split, ids restore; returns the ids."""
    rows = _csv_rows(path)
    assert len(rows) == n_rows  # a carriage return inside a cell did not start a new row
    assert rows and list(rows[0]) == list(EXPORT_HEADERS.values())
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(FORMULA_STARTS), row
        for column in NUMBER_COLUMNS:
            float(row[column])  # numbers stay numbers
    ids = [restore(row["Customer ID"]) for row in rows]
    assert set(ids) <= known_ids
    assert all(row["Customer ID"].startswith("'") for row in rows)  # every listed id is hostile
    return ids


def test_export_csv_and_xlsx_are_inert_and_ids_join_back(shop: Shop, tmp_path: Path) -> None:
    raw_path, customers_path, mapping = _write_inputs(shop, tmp_path)
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "paths": {
                    name: str(tmp_path / default)
                    for name, default in {
                        "raw_transactions": raw_path.name,
                        "transactions": "interim/transactions.parquet",
                        "quarantine": "interim/quarantine.parquet",
                        "ingest_report": "interim/ingest_report.json",
                        "customers": "interim/customers.parquet",
                        "score_features": "features/score.parquet",
                        "train_run": "models/train_run.json",
                        "scores": "scores/scores.parquet",
                        "targets_table": "scores/targets.parquet",
                        "targets": "exports/retention_targets.csv",
                        "targets_xlsx": "exports/retention_targets.xlsx",
                        "export_summary": "exports/retention_targets.summary.json",
                    }.items()
                },
                "ingest": {"customers": {"source": str(customers_path)}},
                "tracking": {"uri": shop.tracking_uri, "registered_model": NAME},
                "export": {"top_n": 40},
            }
        )
    )
    assert run_cli("--params", str(params), "ingest") == 0
    report = json.loads((tmp_path / "interim/ingest_report.json").read_text())
    assert report["rows_in"] == report["rows_out"] + report["rows_quarantined"]
    champion = f"models:/{NAME}@champion"
    as_of = FIRST.isoformat()
    # Another model and date make a one-off: its scores and list go beside the tracked ones
    replayed = tmp_path / "replayed_scores.parquet"
    score = ["score", "--model", champion, "--as-of", as_of, "--output", str(replayed)]
    assert run_cli("--params", str(params), *score) == 0
    assert run_cli("--params", str(params), "export", "--scores", str(replayed)) == 0
    stem = tmp_path / f"exports/retention_targets.as_of={as_of}"

    summary = json.loads(Path(f"{stem}.summary.json").read_text())
    assert summary["exported"] > 0
    known = set(mapping.values())
    ids = _assert_safe_csv(Path(f"{stem}.csv"), known, summary["exported"])
    scored = pd.read_parquet(replayed)
    assert len(set(ids)) == len(ids) and set(ids) <= set(scored["customer_id"])  # joinable
    assert pd.read_csv(f"{stem}.csv")["Expected gain"].is_monotonic_decreasing  # best first

    written = pd.read_csv(f"{stem}.csv", dtype=str, keep_default_na=False)
    book = load_workbook(f"{stem}.xlsx")
    sheet = book.active
    cells = list(sheet.iter_rows())
    assert [c.value for c in cells[0]] == list(EXPORT_HEADERS.values())
    assert len(cells) == 1 + len(written)
    header = [c.value for c in cells[0]]
    for cell_row, (_, csv_row) in zip(cells[1:], written.iterrows(), strict=True):
        by_name = dict(zip(header, cell_row, strict=True))
        assert all(c.data_type != "f" for c in cell_row)  # no formula anywhere
        for column in TEXT_COLUMNS:
            cell = by_name[column]
            assert cell.data_type == "s"
            # XML keeps no bare CR (it reads back as LF); otherwise the CSV's exact text
            assert cell.value == csv_row[column].replace("\r", "\n")
        assert by_name["Churn risk (%)"].data_type == "n"


def test_nightly_list_is_inert(
    shop: Shop, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw_path, customers_path, mapping = _write_inputs(shop, workspace)
    params = write_params(shop, workspace, raw_path)
    settings = yaml.safe_load(params.read_text())
    settings["ingest"] = {"customers": {"source": str(customers_path)}}
    params.write_text(yaml.safe_dump(settings))
    root = workspace / "nightly"
    before = tree(root)
    as_of = FIRST + dt.timedelta(days=7)
    assert run_nightly(params, as_of) == 0, capsys.readouterr().err
    partition = root / f"as_of={as_of}"
    report = json.loads((partition / "ingest_report.json").read_text())
    assert report["rows_in"] == report["rows_out"] + report["rows_quarantined"]
    manifest = json.loads((partition / "manifest.json").read_text())
    _assert_safe_csv(
        partition / "retention_targets.csv", set(mapping.values()), manifest["rows"]["targets"]
    )
    after = tree(root)
    assert {k: v for k, v in after.items() if k.startswith(f"as_of={FIRST}/")} == {
        k: v for k, v in before.items() if k.startswith(f"as_of={FIRST}/")
    }
