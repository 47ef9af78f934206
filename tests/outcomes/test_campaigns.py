"""Reading every published list: campaign windows, one count per customer, open horizons,
and the contact log (real Parquet and CSV files, the real DuckDB read-out)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from churn.config import ContactsConfig, IngestConfig
from churn.data.contacts import ingest_contacts
from churn.errors import UserError
from churn.outcomes.campaigns import read_out
from churn.outcomes.lists import campaign_starts, find_list_files

D = dt.date


def test_a_campaign_runs_campaign_days_from_its_first_list() -> None:
    dates = [D(2026, 10, 1), D(2026, 10, 2), D(2026, 10, 30), D(2026, 10, 31), D(2026, 11, 15)]
    starts = campaign_starts(dates, 30)
    assert starts == {
        D(2026, 10, 1): D(2026, 10, 1),
        D(2026, 10, 2): D(2026, 10, 1),
        D(2026, 10, 30): D(2026, 10, 1),
        D(2026, 10, 31): D(2026, 10, 31),
        D(2026, 11, 15): D(2026, 10, 31),
    }


def _list(as_of: str, rows: list[tuple[str, str, bool]], targeted: bool = True) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "as_of": pd.Timestamp(as_of),
            "churn_probability": 0.5,
            "expected_value_12m": 100.0,
            "risk_band": "medium",
            "segment": "At risk",
            "action": [r[1] for r in rows],
            "contact_cost": 5.0,
            "targeted": targeted,
            "control_group": [r[2] for r in rows],
        }
    )


@pytest.fixture
def published(tmp_path: Path) -> tuple[Path, Path, Path]:
    """An export list at 10-01, nightly lists at 10-01 (the same), 10-05 and 11-10."""
    export = tmp_path / "scores" / "targets.parquet"
    export.parent.mkdir()
    first = [("c1", "Offer", False), ("c2", "Offer", False), ("c3", "Offer", True)]
    _list("2026-10-01", first).to_parquet(export)
    nightly = tmp_path / "nightly"
    for as_of, rows in (
        ("2026-10-01", first),
        ("2026-10-05", [("c1", "Call", False), ("c4", "Offer", True)]),
        ("2026-11-10", [("c1", "Offer", False), ("c5", "Offer", True)]),
    ):
        folder = nightly / f"as_of={as_of}"
        folder.mkdir(parents=True)
        part = pd.concat([_list(as_of, rows), _list(as_of, [("n1", "Offer", False)], False)])
        part.to_parquet(folder / "targets.parquet")
    tx = pd.DataFrame(
        {
            "customer_id": ["c1", "c1", "c3", "c4", "c5", "zz"],
            "ts": pd.to_datetime(
                [
                    "2026-10-03 09:00",
                    "2026-12-29 10:00",
                    "2026-09-30 09:00",
                    "2026-10-06 09:00",
                    "2026-11-20 09:00",
                    "2027-01-10 09:00",
                ]
            ),
            "amount": [10.0, 20.0, 99.0, 7.0, 3.0, 1.0],
        }
    )
    tx.to_parquet(tmp_path / "tx.parquet")
    return export, nightly, tmp_path / "tx.parquet"


def test_each_customer_counts_once_per_campaign_and_open_horizons_are_marked(
    published: tuple[Path, Path, Path],
) -> None:
    export, nightly, tx = published
    files = find_list_files(export, nightly)
    assert len(files) == 4
    out = read_out(files, tx, horizon_days=90, campaign_days=30)
    assert out.list_dates == (D(2026, 10, 1), D(2026, 10, 5), D(2026, 11, 10))
    assert out.campaigns == (D(2026, 10, 1), D(2026, 11, 10))
    assert out.data_end == D(2027, 1, 11)
    first = out.intent_to_treat.by_campaign["2026-10-01"]
    # c1 (first listed 10-01 with the offer), c2 contacted; c3, c4 control; c1 once
    assert (first.n_contacted, first.n_control) == (2, 2)
    assert first.retention_contacted == 0.5  # c1 bought 10-03 and 12-29 (in its window)
    assert first.retention_control == 0.5  # c4 bought; c3's purchase came before the list
    assert first.revenue_per_contacted == 15.0
    assert first.horizon_closed and first.observed_days == 90
    second = out.intent_to_treat.by_campaign["2026-11-10"]
    assert not second.horizon_closed and second.observed_days == 62  # "so far"
    pooled = out.intent_to_treat.pooled
    assert pooled.horizon_closed and pooled.n_contacted == 2  # the closed campaign alone
    assert set(out.intent_to_treat.by_action) == {"Offer"}  # c1's later call is not its first


def test_contacted_only_keeps_the_reached_against_the_whole_control_group(
    published: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    export, nightly, tx = published
    log = tmp_path / "contacts.csv"
    log.write_text(
        "Customer ID,Contact date,Action,Channel,Reached\n"
        "c1,2026-10-02,Offer,email,yes\n"
        "c2,2026-10-02,Offer,phone,no\n"
        "NULL,2026-10-02,Offer,phone,yes\n"
        "c2,someday,Offer,phone,yes\n"
    )
    config = ContactsConfig(source=log)
    ingest = IngestConfig(contacts=config)
    target, quarantine = tmp_path / "contacts.parquet", tmp_path / "contacts_q.parquet"
    report = ingest_contacts(config, ingest.csv, target, quarantine, ingest)
    assert report["rows_in"] == 4 == report["rows_out"] + report["rows_quarantined"]
    assert report["reasons"] == {"missing_customer_id": 1, "unparseable_timestamp": 1}
    assert report["columns"] == {
        "customer_id": "Customer ID",
        "date": "Contact date",
        "action": "Action",
        "channel": "Channel",
        "reached": "Reached",
    }
    assert len(pd.read_parquet(quarantine)) == 2
    out = read_out(find_list_files(export, nightly), tx, 90, 30, contacts=target)
    assert out.contacted_only is not None
    itt = out.intent_to_treat.by_campaign["2026-10-01"]
    reached = out.contacted_only.by_campaign["2026-10-01"]
    assert (itt.n_contacted, reached.n_contacted) == (2, 1)  # c2 was never reached
    assert reached.n_control == itt.n_control == 2
    assert reached.retention_contacted == 1.0


def test_a_contact_log_without_an_id_column_fails_with_the_key_to_set(tmp_path: Path) -> None:
    log = tmp_path / "contacts.csv"
    log.write_text("who,when\nc1,2026-10-02\n")
    config = ContactsConfig(source=log)
    ingest = IngestConfig(contacts=config)
    with pytest.raises(UserError, match=r"ingest\.contacts\.columns\.customer_id"):
        ingest_contacts(config, ingest.csv, tmp_path / "c.parquet", tmp_path / "q.parquet", ingest)


def test_no_list_at_all_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="run `churn export`"):
        read_out([], tmp_path / "tx.parquet", 90, 30)
