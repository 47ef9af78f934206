"""Issue 13, items 6-9: values that broke ingest or its outputs, through the real CLI.

6. implausible dates (0001, 1900, 1970-01-01, 2200, 9999) are quarantined, and
   ``churn features`` runs on anything ingest lets through;
7. the same time-zone-aware Parquet and offset-bearing CSV give the same UTC rows
   on hosts in Los Angeles, Kolkata and UTC (subprocesses with ``TZ`` set);
8. null-like ids (``NULL``, ``nan``, ``None``, ``N/A``) are missing, not one big
   customer, while ``NA`` (Namibia) stays a country;
9. a failing customers step leaves every previous ingest output byte-identical.

Ingest-only cases run ``churn ingest`` on a small file with a params.yaml in
tmp_path; none needs the nightly shop.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from churn.config import GenerateConfig
from churn.data.generate import generate_shop
from churn.data.quarantine import MAX_SPAN
from nightly_shop import run_cli, tree

HEADER = "Invoice,InvoiceDate,CustomerID,Amount,Country\n"


def _params(folder: Path, raw: Path, as_of: str | None = None, **ingest: Any) -> Path:
    """A params.yaml whose outputs all land in ``folder/out``."""
    out = folder / "out"
    paths = {
        "raw_transactions": str(raw),
        "transactions": str(out / "transactions.parquet"),
        "quarantine": str(out / "quarantine.parquet"),
        "ingest_report": str(out / "ingest_report.json"),
        "customers": str(out / "customers.parquet"),
        "train_features": str(out / "train.parquet"),
        "score_features": str(out / "score.parquet"),
        "calendar": str(out / "calendar.json"),
        "rfm_edges": str(out / "rfm_edges.json"),
    }
    snapshots = {"n_train_cutoffs": 3, "as_of": as_of}
    params = {"paths": paths, "ingest": ingest, "snapshots": snapshots}
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _run(params: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    """``churn --params P ARGS`` in process: exit code and the ``churn: error:`` lines."""
    capsys.readouterr()
    code = run_cli("--params", str(params), *args)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, [line for line in err.splitlines() if line.startswith("churn: error:")]


def _records(frame: pd.DataFrame, *columns: str) -> list[dict[str, Any]]:
    """Rows as dicts with missing values as None (pandas shows them as NaN)."""
    picked = frame[list(columns)].astype(object)
    return picked.where(picked.notna(), None).to_dict("records")  # type: ignore[no-any-return]


def _report(folder: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((folder / "out" / "ingest_report.json").read_text())
    assert report["rows_in"] == report["rows_out"] + report["rows_quarantined"]
    assert sum(report["reasons"].values()) == report["rows_quarantined"]
    return report


# --- 6. implausible dates ------------------------------------------------------------

PLACEHOLDERS = [
    "0001-01-01 00:00:00",  # .NET DateTime.MinValue
    "1900-01-01",  # SQL Server / Excel zero date
    "1970-01-01 00:00:00",  # Unix epoch zero
    "2200-01-01",
    "9999-12-31 23:59:59",
]


def _shop_csv(folder: Path, extra: list[str]) -> Path:
    """A small generated shop (enough history for `churn features`) plus ``extra`` lines."""
    shop = generate_shop(
        GenerateConfig(seed=5, n_customers=300, start=dt.date(2024, 6, 1), end=dt.date(2026, 6, 1))
    ).transactions
    raw = folder / "raw.csv"
    shop.to_csv(raw, index=False, date_format="%Y-%m-%d %H:%M:%S")
    columns = list(shop.columns)
    with raw.open("a") as out:
        for line in extra:
            cells = line.split(",")
            fields = dict(
                zip(["Invoice", "InvoiceDate", "CustomerID", "Amount"], cells, strict=True)
            )
            out.write(",".join(fields.get(c, "") for c in columns) + "\n")
    return raw


def test_implausible_dates_are_quarantined_and_features_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = [f"X{i},{ts},{1000 + i},10" for i, ts in enumerate(PLACEHOLDERS)]
    extra.append("OLD,1997-03-04 10:00:00,2000,12.5")  # old is not broken (CDNOW starts 1997)
    raw = _shop_csv(tmp_path, extra)
    n_shop = len(pd.read_csv(raw)) - len(extra)
    params = _params(tmp_path, raw)  # the default window
    assert _run(params, capsys, "ingest") == (0, [])
    report = _report(tmp_path)
    assert report["rows_in"] == n_shop + len(extra)
    assert report["reasons"]["implausible_timestamp"] == len(PLACEHOLDERS)
    assert report["first_ts"] == "1997-03-04 10:00:00"
    assert report["last_ts"] < "2026-06-02"
    quarantine = pd.read_parquet(tmp_path / "out" / "quarantine.parquet")
    implausible = quarantine[quarantine["reason"] == "implausible_timestamp"]
    assert implausible["raw_timestamp"].tolist() == PLACEHOLDERS
    assert _run(params, capsys, "features") == (0, [])  # was: OverflowError traceback


def test_features_run_on_the_widest_window_ingest_allows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows on both edges of the longest plausible window: ingest keeps them, features
    (gaps in seconds, squared in 64 bits) must not overflow on them."""
    today = dt.datetime.now(dt.UTC).date()
    before = today + dt.timedelta(days=7)
    earliest = before - MAX_SPAN
    edges = [f"{earliest} 00:00:00", f"{before - dt.timedelta(days=1)} 23:59:59"]
    extra = [f"E{i}{j},{ts},{900 + i},10" for i in range(2) for j, ts in enumerate(edges)]
    extra += [f"L{i},{before} 00:00:00,{900 + i},10" for i in range(2)]  # one second later
    raw = _shop_csv(tmp_path, extra)
    params = _params(tmp_path, raw, plausible_from=earliest.isoformat())
    assert _run(params, capsys, "ingest") == (0, [])
    report = _report(tmp_path)
    assert report["reasons"]["implausible_timestamp"] == 2
    assert (report["first_ts"], report["last_ts"]) == (edges[0], edges[1])
    assert _run(params, capsys, "features") == (0, [])


def test_a_window_longer_than_features_take_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tmp_path / "raw.csv"
    raw.write_text(HEADER + "1,2024-01-01,7,10,UK\n")
    params = _params(tmp_path, raw, plausible_from="1900-01-01")
    code, errors = _run(params, capsys, "ingest")
    assert code == 2
    assert len(errors) == 1
    assert errors[0].startswith("churn: error: plausible timestamps from 1900-01-01 to before")
    assert "set ingest.plausible_from to" in errors[0]
    assert tree(tmp_path / "out") == {}  # nothing written


def test_implausible_dates_above_the_threshold_stop_ingest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tmp_path / "raw.csv"
    raw.write_text(
        HEADER
        + "".join(f"{i},{ts},{i},10,UK\n" for i, ts in enumerate(PLACEHOLDERS * 2))
        # a past as-of date: later rows are after_as_of (policy) up to the window's edge
        + "20,2024-01-02,20,10,UK\n21,2025-06-01,21,10,UK\n"
    )
    params = _params(tmp_path, raw)
    code, errors = _run(params, capsys, "ingest")
    assert code == 2
    assert errors == [
        "churn: error: 10 of 12 rows (83.3%) are malformed (implausible_timestamp 10), above"
        " ingest.max_bad_fraction=0.05 (dates outside the plausible window; lower"
        " ingest.plausible_from if the history really is that old); nothing was written"
    ]
    assert tree(tmp_path / "out") == {}  # nothing written
    lenient = _params(tmp_path, raw, as_of="2024-06-01", max_bad_fraction=1.0)
    assert _run(lenient, capsys, "ingest") == (0, [])
    assert _report(tmp_path)["reasons"] == {"implausible_timestamp": 10, "after_as_of": 1}


# --- 7. time zones -------------------------------------------------------------------

HOST_ZONES = ("America/Los_Angeles", "Asia/Kolkata", "UTC")
# The same instant, 18:58 UTC, written five ways, and one naive wall-clock time.
OFFSET_CSV = HEADER + (
    "1,2024-03-01 10:58:00-08:00,1,10,UK\n"
    "2,2024-03-01T18:58:00Z,2,10,UK\n"
    "3,2024-03-02 00:28:00+05:30,3,10,UK\n"
    "4,2024-03-01 19:58:00+0100,4,10,UK\n"
    "5,2024-03-01 18:58:00 Europe/London,5,10,UK\n"
    "6,01/03/2024 10:58 -08:00,6,10,UK\n"
    "7,2024-03-01 10:58:00,7,10,UK\n"
)
UTC_1858 = pd.Timestamp("2024-03-01 18:58:00")
AWARE = pd.to_datetime(["2024-03-01 18:58:00", "2024-07-01 23:30:00"]).tz_localize("UTC")


Outputs = dict[tuple[str, str], pd.DataFrame]


@pytest.fixture(scope="module")
def per_host(tmp_path_factory: pytest.TempPathFactory) -> Outputs:
    """Transactions from the offset CSV and a zone-aware Parquet file, ingested by
    ``churn.cli.main`` in one subprocess per host zone (``TZ``); keyed (input, zone)."""
    root = tmp_path_factory.mktemp("zones")
    csv = root / "offsets.csv"
    csv.write_text(OFFSET_CSV)
    aware = root / "aware.parquet"
    pd.DataFrame(
        {
            "CustomerID": ["1", "2"],
            "InvoiceDate": AWARE.tz_convert("Asia/Kolkata"),  # stored as UTC + zone name
            "Amount": [10.0, 12.0],
        }
    ).to_parquet(aware)
    # The real entry point, twice per process: Python start-up is most of the cost here.
    run = (
        "import sys\nfrom churn.cli import main\n"
        "for p in sys.argv[1:]: main(['--params', p, 'ingest'])"
    )
    outputs: Outputs = {}
    for zone in HOST_ZONES:
        folders = {name: root / zone.replace("/", "_") / name for name in ("csv", "parquet")}
        params = []
        for folder, raw in zip(folders.values(), (csv, aware), strict=True):
            folder.mkdir(parents=True)
            params.append(str(_params(folder, raw, max_bad_fraction=1.0)))
        proc = subprocess.run(
            [sys.executable, "-c", run, *params],
            env={**os.environ, "TZ": zone},
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        for name, folder in folders.items():
            report = _report(folder)
            assert report["rows_quarantined"] == 0, report["reasons"]
            outputs[name, zone] = pd.read_parquet(folder / "out" / "transactions.parquet")
    return outputs


def test_offsets_in_text_are_converted_to_utc_on_every_host(per_host: Outputs) -> None:
    transactions = per_host["csv", "UTC"]
    assert transactions["ts"].tolist() == [UTC_1858] * 6 + [pd.Timestamp("2024-03-01 10:58")]
    assert str(transactions["ts"].dtype) == "datetime64[us]"  # naive UTC, no zone attached
    for zone in HOST_ZONES:
        pd.testing.assert_frame_equal(per_host["csv", zone], transactions)


def test_zone_aware_parquet_reads_the_same_on_every_host(per_host: Outputs) -> None:
    transactions = per_host["parquet", "UTC"]
    assert transactions["ts"].tolist() == list(AWARE.tz_localize(None))
    for zone in HOST_ZONES:
        pd.testing.assert_frame_equal(per_host["parquet", zone], transactions)


# --- 8. null-like ids ----------------------------------------------------------------


def test_null_like_ids_are_missing_not_one_big_customer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nulls = ["NULL", "nan", "None", "N/A", " null ", "NaN", "#N/A", "<NA>", "\\N", "none"]
    lines = [f"{i},2024-01-{i + 1:02d} 10:00:00,{v},10,UK" for i, v in enumerate(nulls)]
    lines += [
        "100,2024-02-01 10:00:00,42,10,NA",  # Namibia
        "NULL,2024-02-02 10:00:00,42,11,n/a",  # no order id, no country
        "102,2024-02-03 10:00:00,NA,12,NULL",  # a customer called NA is a real id
    ]
    raw = tmp_path / "raw.csv"
    raw.write_text(HEADER + "\n".join(lines) + "\n")
    crm = tmp_path / "crm.csv"
    crm.write_text(
        "Customer ID,Email,Name,Country,Consent\n"
        "NULL,x@example.com,Nobody,UK,yes\n"
        "nan,y@example.com,Nobody,UK,yes\n"
        "42,ann@example.com,N/A,NA,yes\n"
        "NA,na@example.com,Ana,None,no\n"
    )
    params = _params(tmp_path, raw, customers={"source": str(crm)})
    assert _run(params, capsys, "ingest") == (0, [])
    report = _report(tmp_path)
    assert report["reasons"] == {"guest_order": len(nulls)}
    assert report["customers"] == 2
    tx = pd.read_parquet(tmp_path / "out" / "transactions.parquet")
    assert _records(tx, "order_id", "customer_id", "country") == [
        {"order_id": "100", "customer_id": "42", "country": "NA"},
        {"order_id": None, "customer_id": "42", "country": None},
        {"order_id": "102", "customer_id": "NA", "country": None},
    ]
    assert report["customers_table"]["missing_id"] == 2
    customers = pd.read_parquet(tmp_path / "out" / "customers.parquet")
    assert _records(customers, "customer_id", "name", "country") == [
        {"customer_id": "42", "name": None, "country": "NA"},
        {"customer_id": "NA", "name": "Ana", "country": None},
    ]


# --- 9. partial ingest ---------------------------------------------------------------


def test_a_failing_customers_step_leaves_every_output_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tmp_path / "raw.csv"
    raw.write_text(HEADER + "1,2024-01-01 10:00:00,7,10,UK\n")
    crm = tmp_path / "crm.csv"
    crm.write_text("Customer ID,Email\n7,ann@example.com\n")
    params = _params(tmp_path, raw, customers={"source": str(crm)})
    assert _run(params, capsys, "ingest") == (0, [])
    assert _report(tmp_path)["rows_out"] == 1
    published = tree(tmp_path / "out")
    assert sorted(published) == [
        "customers.parquet",
        "ingest_report.json",
        "quarantine.parquet",
        "transactions.parquet",
    ]
    # New transactions, and a customers export that lost its id column.
    raw.write_text(HEADER + "1,2024-01-01 10:00:00,7,10,UK\n2,2024-01-02 10:00:00,8,20,UK\n")
    crm.write_text("Email,Name\nann@example.com,Ann\n")
    code, errors = _run(params, capsys, "ingest")
    assert code == 2
    assert errors == [
        f"churn: error: no customer id column recognised in {crm}; columns are: Email, Name"
        " (set ingest.customers.columns.customer_id)"
    ]
    assert tree(tmp_path / "out") == published  # byte-identical, no temporary files left
