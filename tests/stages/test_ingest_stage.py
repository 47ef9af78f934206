"""churn.stages.ingest: the typed report it returns is the JSON it writes, key for key."""

from __future__ import annotations

import json
from pathlib import Path

from churn.atomic import record_json
from churn.config import IngestConfig
from churn.data.ingest_stage import IngestTargets
from churn.stages.ingest import ingest_to

# The keys `churn ingest` has always written (tests, the nightly manifest and people
# reading data/interim/ingest_report.json rely on them).
REPORT_KEYS = {
    "rows_in",
    "rows_out",
    "rows_quarantined",
    "reasons",
    "malformed_rows",
    "malformed_fraction",
    "customers",
    "first_ts",
    "last_ts",
    "files",
    "columns",
    "dayfirst",
    "dayfirst_from",
    "cancellations",
    "customers_table",
}


def test_report_written_is_the_report_returned(tmp_path: Path) -> None:
    source = tmp_path / "export.csv"
    source.write_text(
        "customer_id,order_id,ts,amount,country\n"
        "c1,o1,2024-01-02 10:00:00,12.50,FR\n"
        "c2,o2,2024-01-03 11:00:00,abc,FR\n"
        ",o3,2024-01-04 12:00:00,3.00,DE\n"
    )
    targets = IngestTargets(
        transactions=tmp_path / "tx.parquet",
        quarantine=tmp_path / "q.parquet",
        customers=tmp_path / "customers.parquet",
        report=tmp_path / "report.json",
    )
    report = ingest_to(targets, source, IngestConfig(max_bad_fraction=1.0), None)
    written = json.loads(targets.report.read_text())
    assert set(written) == REPORT_KEYS
    assert written == json.loads(json.dumps(record_json(report)))
    assert (report.rows_in, report.rows_out, report.malformed_rows) == (3, 1, 1)
    assert report.reasons == {"guest_order": 1, "non_numeric_amount": 1}
    assert report.malformed_fraction == round(1 / 3, 6)
    assert report.customers_table == {"source": None, "rows_in": 0, "rows_out": 0}
