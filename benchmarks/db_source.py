"""Ingest from a PostgreSQL table against ingest of the same rows exported to CSV.

    .venv/bin/python benchmarks/db_source.py                  # 1 million rows
    .venv/bin/python benchmarks/db_source.py --rows 200000 --repeat 1

Starts a throwaway server (tests/pg_server.py: initdb + pg_ctl on 127.0.0.1; needs
Debian's ``postgresql`` binaries), fills a typed table (text, timestamp, numeric)
in SQL, exports it with the server's own ``COPY ... TO STDOUT (FORMAT csv)`` in the
order the source reads it, then times ``churn.data.ingest.ingest`` on the table
(Ibis, text casts and ORDER BY in the database, server-side cursor -> Parquet ->
the file path's checks) and on the CSV, alternating ``--repeat`` rounds. The
machine is shared: the verdict is the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from churn.config import DatabaseSource, IngestConfig  # noqa: E402
from churn.data.ingest import ingest  # noqa: E402
from pg_server import PASSWORD, USER, running_server  # noqa: E402

FILL = """
    CREATE TABLE orders AS
    SELECT (500000 + i / 4)::text AS "Invoice",
           TIMESTAMP '2022-01-01' + i * INTERVAL '9 seconds' AS "InvoiceDate",
           CASE WHEN i %% 5 = 0 THEN NULL ELSE (12000 + (i * 7) %% 300000)::text END
               AS "Customer ID",
           round(0.5 + ((i * 37) %% 2000) / 100.0, 2)::numeric(12, 2) AS "Amount",
           CASE i %% 7 WHEN 0 THEN 'France' WHEN 1 THEN 'Germany' ELSE 'United Kingdom' END
               AS "Country"
    FROM generate_series(1, %s) AS t(i)
"""


def _timed(source: object, config: IngestConfig) -> float:
    start = time.perf_counter()
    result = ingest(source, config, None)
    elapsed = time.perf_counter() - start
    assert result.report.rows_in > 0
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    config = IngestConfig(max_bad_fraction=1.0)
    with running_server() as server, tempfile.TemporaryDirectory() as folder:
        csv = Path(folder) / "orders.csv"
        with psycopg.connect(
            host="127.0.0.1", port=server.port, user=USER, password=PASSWORD, dbname="shop",
            autocommit=True,
        ) as con:  # fmt: skip
            con.execute(FILL, [args.rows])
            with csv.open("wb") as out, con.cursor().copy(
                "COPY (SELECT * FROM orders ORDER BY 1, 2, 3, 4, 5) TO STDOUT (FORMAT csv, HEADER)"
            ) as copy:  # fmt: skip
                for chunk in copy:
                    out.write(bytes(chunk))
        table = DatabaseSource(url=server.url, table="orders", password_env="BENCH_PG_PASSWORD")
        os.environ["BENCH_PG_PASSWORD"] = PASSWORD
        ratios = []
        for round_ in range(args.repeat):
            db = _timed(table, config)
            from_csv = _timed(csv, config)
            ratios.append(db / from_csv)
            print(f"round {round_ + 1}: table {db:.2f}s, csv {from_csv:.2f}s, {db / from_csv:.2f}x")
        print(f"{args.rows:,} rows: median table/csv ratio {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
