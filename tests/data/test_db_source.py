"""Transactions (and customers) read straight from a real PostgreSQL server.

A throwaway server (tests/pg_server.py) holds the sample's transactions in a typed
table (timestamp, numeric) plus broken rows; `churn ingest` (the real CLI, in
process) reads it and must give the same canonical transactions, quarantine and
report as the same rows exported to CSV. Connection problems are one line that
names the source and never the password.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest
import yaml

from churn.config import ContactsConfig, GenerateConfig, IngestConfig
from churn.data.contacts import ingest_contacts
from churn.data.generate import generate_shop
from nightly_shop import run_cli
from pg_server import PASSWORD, USER, PgServer, running_server
from project_copy import copy_project

if TYPE_CHECKING:
    import psycopg

AS_OF = "2026-03-01"
COLUMNS = '"Invoice" text, "InvoiceDate" timestamp, "CustomerID" text, "Amount" numeric(14, 2),'
COLUMNS += ' "Country" text'
# Rows a broken feed holds, each quarantined for its own reason (or a duplicate line).
BROKEN = [
    ("900001", None, "10001", 10.0, "France"),  # unparseable_timestamp
    ("900002", dt.datetime(1900, 1, 1), "10001", 10.0, "France"),  # implausible_timestamp
    ("900003", dt.datetime(2024, 2, 1, 10), "10001", None, "France"),  # non_numeric_amount
    ("900004", dt.datetime(2024, 2, 1, 11), "10001", 5e7, "France"),  # absurd_amount
    ("900005", dt.datetime(2024, 2, 1, 12), "NULL", 12.5, "France"),  # guest_order
    ("900006", dt.datetime(2024, 2, 1, 13), "10002", 0.0, None),  # zero_amount
    ("900008", dt.datetime(2024, 2, 1, 15), "10003", 9.5, 'Korea, "South"\nline two'),  # kept
    ("900007", dt.datetime(2024, 2, 1, 14), "10002", 7.25, "Spain"),
    ("900007", dt.datetime(2024, 2, 1, 14), "10002", 7.25, "Spain"),  # duplicate_line
]


@pytest.fixture(scope="module")
def server() -> Iterator[PgServer]:
    with running_server() as found:
        yield found


@pytest.fixture(scope="module")
def shop_csv(server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Load the fixture into ``orders`` and ``customers``; the same orders, exported by the
    server as CSV in the order the source reads them (by every column)."""
    raw = generate_shop(GenerateConfig(seed=3, n_customers=1_000)).transactions
    rows: list[tuple[Any, ...]] = [
        (r.Invoice, r.InvoiceDate.to_pydatetime(), r.CustomerID, r.Amount, r.Country)
        for r in raw.itertuples()
    ]
    csv = tmp_path_factory.mktemp("db") / "orders.csv"
    with _connect(server) as con:
        con.execute(f"CREATE TABLE orders ({COLUMNS})")
        with con.cursor() as cur:
            cur.executemany("INSERT INTO orders VALUES (%s, %s, %s, %s, %s)", [*rows, *BROKEN])
        con.execute('CREATE TABLE customers ("Customer ID" text, "E-mail" text, "Consent" boolean)')
        con.execute(
            "INSERT INTO customers VALUES ('10001', 'A@Example.com', true),"
            " ('10002', 'b@example.com', false), ('10001', 'dup@example.com', true),"
            " (NULL, 'x', true)"
        )
        with csv.open("wb") as out, con.cursor().copy(
            "COPY (SELECT * FROM orders ORDER BY 1, 2, 3, 4, 5) TO STDOUT (FORMAT csv, HEADER)"
        ) as copy:  # fmt: skip
            for chunk in copy:
                out.write(bytes(chunk))
    return csv


def _connect(server: PgServer) -> psycopg.Connection[Any]:
    import psycopg  # needs libpq, which a host without PostgreSQL may lack (the test skips)

    return psycopg.connect(
        host="127.0.0.1", port=server.port, user=USER, password=PASSWORD, dbname="shop",
        autocommit=True,
    )  # fmt: skip


def _params(folder: Path, raw: object, **ingest: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    params = {
        "paths": {
            "raw_transactions": raw,
            **{
                key: str(folder / name)
                for key, name in (
                    ("transactions", "transactions.parquet"),
                    ("quarantine", "quarantine.parquet"),
                    ("customers", "customers.parquet"),
                    ("ingest_report", "report.json"),
                )
            },
        },
        "ingest": {"max_bad_fraction": 0.5, **ingest},
        "snapshots": {"as_of": AS_OF},
    }
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _ingest(params: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    assert run_cli("--params", str(params), "ingest") == 0
    folder = params.parent
    report = json.loads((folder / "report.json").read_text())
    return (
        pd.read_parquet(folder / "transactions.parquet"),
        pd.read_parquet(folder / "quarantine.parquet"),
        report,
    )


@pytest.fixture
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    """libpq's own variable, as a cron job's environment would set it."""
    monkeypatch.setenv("PGPASSWORD", PASSWORD)


def test_a_table_ingests_like_the_same_rows_in_csv(
    server: PgServer, shop_csv: Path, tmp_path: Path, password: None
) -> None:
    table = {"url": server.url, "table": "orders"}
    db_tx, db_q, db_report = _ingest(_params(tmp_path / "db", table))
    csv_tx, csv_q, csv_report = _ingest(_params(tmp_path / "csv", str(shop_csv)))

    pd.testing.assert_frame_equal(db_tx, csv_tx)
    label = f"table orders in postgresql 127.0.0.1:{server.port}/shop"
    assert set(db_q["source_file"]) == {label}
    pd.testing.assert_frame_equal(
        db_q.drop(columns="source_file"), csv_q.drop(columns="source_file")
    )
    assert db_report.pop("files") == [label]
    csv_report.pop("files")
    assert db_report == csv_report
    assert {
        "unparseable_timestamp", "implausible_timestamp", "non_numeric_amount", "absurd_amount",
        "guest_order", "zero_amount", "duplicate_line", "after_as_of",
    } <= set(db_report["reasons"])  # fmt: skip
    assert db_report["rows_in"] == db_report["rows_out"] + db_report["rows_quarantined"]
    assert 'Korea, "South"\nline two' in set(db_tx["country"])  # quotes, commas, line breaks


def test_a_query_and_a_customers_table_from_the_database(
    server: PgServer, shop_csv: Path, tmp_path: Path, password: None
) -> None:
    """A query is a source like a table; the customer master may live there too."""
    query = {
        "url": server.url,
        "query": "SELECT * FROM orders WHERE \"Country\" = 'France';\n",
        "order_by": ["InvoiceDate", "Invoice"],
    }
    customers = {"url": server.url, "table": "public.customers"}
    tx, _, report = _ingest(_params(tmp_path / "q", query, customers={"source": customers}))
    assert set(tx["country"]) == {"France"}
    assert report["customers_table"]["rows_in"] == 4
    assert report["customers_table"]["source"].startswith("table public.customers in postgresql")
    master = pd.read_parquet(tmp_path / "q" / "customers.parquet")
    assert master[["customer_id", "email", "marketing_consent"]].to_dict("list") == {
        "customer_id": ["10001", "10002"],  # the first row per id; the row without one dropped
        "email": ["a@example.com", "b@example.com"],
        "marketing_consent": [True, False],
    }


def _refused(params: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = run_cli("--params", str(params), "ingest")
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "churn: error:" in line]
    assert len(lines) == 1, err
    assert PASSWORD not in err and "Traceback" not in err
    return code, lines[0]


def test_connection_problems_are_one_line_naming_the_source(
    server: PgServer,
    shop_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    label = f"table orders in postgresql 127.0.0.1:{server.port}/shop"
    table = {"url": server.url, "table": "orders"}
    monkeypatch.setenv("PGPASSWORD", "wrong-" + PASSWORD)
    code, line = _refused(_params(tmp_path / "pw", table), capsys)
    assert code == 2
    assert line.startswith(f"churn: error: cannot connect to {label} (paths.raw_transactions):")
    assert "password authentication failed" in line and "PGPASSWORD" in line

    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    code, line = _refused(_params(tmp_path / "nt", {**table, "table": "nope"}), capsys)
    assert code == 2 and line.startswith("churn: error: cannot read table nope in postgresql")
    assert line.endswith("no such table nope (set table, schema-qualified as schema.table)")

    closed = server.url.replace(str(server.port), str(_closed_port()))
    code, line = _refused(_params(tmp_path / "down", {**table, "url": closed}), capsys)
    assert code == 2 and "cannot connect to table orders in postgresql 127.0.0.1:" in line
    assert "check the host and port" in line

    own = {**table, "password_env": "SHOP_DB_PASSWORD"}
    monkeypatch.delenv("SHOP_DB_PASSWORD", raising=False)
    code, line = _refused(_params(tmp_path / "env", own), capsys)
    assert code == 2 and "environment variable SHOP_DB_PASSWORD, which is not set" in line
    monkeypatch.setenv("SHOP_DB_PASSWORD", PASSWORD)
    monkeypatch.delenv("PGPASSWORD")
    assert run_cli("--params", str(_params(tmp_path / "env", own)), "ingest") == 0


def test_a_password_in_the_url_is_refused_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No server needed: the params are refused when they are loaded."""
    table = {"url": f"postgresql://{USER}:{PASSWORD}@127.0.0.1:1/shop", "table": "orders"}
    code, line = _refused(_params(tmp_path, table), capsys)
    assert code == 2
    assert "paths.raw_transactions" in line and "url holds a password" in line
    assert "environment variable PGPASSWORD" in line


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _database_pipeline(repo: Path, url: str) -> None:
    """The project in ``repo`` as README "Reading from a database" sets it up: the
    `generate` stage dropped, `ingest` with no file dep for the source and
    ``always_changed``, and `paths.raw_transactions` naming the table."""
    copy_project(repo, ("dvc.yaml", "params.yaml", ".dvcignore", ".gitignore", "pyproject.toml"))
    (repo / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    pipeline = yaml.safe_load((repo / "dvc.yaml").read_text())
    del pipeline["stages"]["generate"]
    ingest = pipeline["stages"]["ingest"]
    ingest["deps"].remove("${paths.raw_transactions}")
    ingest["always_changed"] = True
    (repo / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["paths"]["raw_transactions"] = {"url": url, "table": "orders"}
    params["snapshots"]["as_of"] = AS_OF
    params["ingest"]["max_bad_fraction"] = 0.5
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_dvc_repro_rereads_the_database_each_time(
    server: PgServer, shop_csv: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "project"
    repo.mkdir()
    _database_pipeline(repo, server.url)
    env = {
        "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DVC_NO_ANALYTICS": "1",
        "PGPASSWORD": PASSWORD, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
    }  # fmt: skip

    def sh(line: str) -> str:
        proc = subprocess.run(
            ["/bin/sh", "-c", line], cwd=repo, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout + proc.stderr

    sh("git init -q && git add -A && git commit -qm project")
    assert "Running stage 'ingest'" in sh(".venv/bin/dvc repro ingest")
    first = json.loads((repo / "data/interim/ingest_report.json").read_text())
    with _connect(server) as con:
        con.execute(
            "INSERT INTO orders VALUES ('999999', '2025-01-02 10:00', '10001', 3.5, 'Peru')"
        )
    try:
        assert "Running stage 'ingest'" in sh(".venv/bin/dvc repro ingest")
    finally:
        with _connect(server) as con:
            con.execute("DELETE FROM orders WHERE \"Invoice\" = '999999'")
    second = json.loads((repo / "data/interim/ingest_report.json").read_text())
    assert second["rows_in"] == first["rows_in"] + 1
    assert second["rows_out"] == first["rows_out"] + 1


def test_a_contact_log_table(server: PgServer, tmp_path: Path, password: None) -> None:
    """`churn outcomes` reads the CRM's contact log from the database the same way."""
    with _connect(server) as con:
        con.execute(
            'CREATE TABLE IF NOT EXISTS contact_log ("Customer ID" text, "Date" date,'
            ' "Action" text, "Reached" boolean)'
        )
        con.execute(
            "INSERT INTO contact_log VALUES ('10001', '2026-01-05', 'Personal call', true),"
            " ('10002', NULL, 'Win-back email', false), (NULL, '2026-01-06', 'x', true)"
        )
    config = ContactsConfig.model_validate({"source": {"url": server.url, "table": "contact_log"}})
    ingest = IngestConfig()
    counts = ingest_contacts(
        config, ingest.csv, tmp_path / "c.parquet", tmp_path / "q.parquet", ingest
    )
    assert counts["rows_in"] == 3 and counts["rows_out"] == 1
    assert counts["reasons"] == {"missing_customer_id": 1, "unparseable_timestamp": 1}
    log = pd.read_parquet(tmp_path / "c.parquet")
    assert log[["customer_id", "action", "reached"]].values.tolist() == [
        ["10001", "Personal call", True]
    ]
    assert str(log["date"].iloc[0])[:10] == "2026-01-05"
