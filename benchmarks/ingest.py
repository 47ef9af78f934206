"""Ingest speed and memory against DuckDB's own CSV -> Parquet copy of the same file.

    .venv/bin/python benchmarks/ingest.py                # 10 million rows (~0.6 GB CSV)
    .venv/bin/python benchmarks/ingest.py --rows 3000000 # the size issue 13 measured
    .venv/bin/python benchmarks/ingest.py --rows 500000 --repeat 1  # a quick run

The CSV looks like an online-retail export (quantity x price, ~20% guest orders,
~2% cancellations, a few duplicate lines, some dd/mm/yyyy dates among ISO ones).
Each measurement runs in its own child process, because DuckDB allocates outside
Python's heap (tracemalloc cannot see it): the child reports its wall time, its
CPU time (user + system, all threads) and its peak resident memory (ru_maxrss).
The reference is a plain ``COPY (SELECT * FROM read_csv(...)) TO ... (FORMAT
parquet)``, which parses and writes the same bytes but validates, dedups and
quarantines nothing. Ingest includes every check: one dialect for all files, the
reader's rejected lines, encoding and line-ending checks (issue 13).

The machine is shared, so the two alternate ``--repeat`` times and the verdict is
the median of the per-round ratios; the CPU-time ratio is printed beside it
because it moves less with the load.
Target (issue 13): within 2x of the copy's time, and under 2 GB peak.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 2.0
TARGET_PEAK_MB = 2048


def generate(path: Path, rows: int) -> None:
    import duckdb

    duckdb.connect().execute(
        f"""
        COPY (
            SELECT
                CASE WHEN i % 50 = 7 THEN 'C' ELSE '' END || (500000 + i // 4)::VARCHAR
                    AS "Invoice",
                (10000 + (i * 7919) % 4000)::VARCHAR || CASE WHEN i % 3 = 0 THEN 'A' ELSE '' END
                    AS "StockCode",
                CASE WHEN i % 50 = 7 THEN -1 ELSE 1 + (i * 31) % 24 END AS "Quantity",
                CASE WHEN i % 20 = 3
                    THEN strftime(TIMESTAMP '2022-01-01' + to_seconds(i * 9), '%d/%m/%Y %H:%M')
                    ELSE strftime(TIMESTAMP '2022-01-01' + to_seconds(i * 9), '%Y-%m-%d %H:%M:%S')
                END AS "InvoiceDate",
                round(0.5 + ((i * 37) % 2000) / 100.0, 2) AS "Price",
                CASE WHEN i % 5 = 0 THEN NULL ELSE 12000 + (i * 7) % 300000 END AS "Customer ID",
                CASE i % 7 WHEN 0 THEN 'France' WHEN 1 THEN 'Germany' ELSE 'United Kingdom' END
                    AS "Country"
            FROM range({rows}) t(i)
            -- a duplicated line every 1000 rows, as exports that overlap produce
            UNION ALL
            SELECT '500000', '10000', 1, '2022-01-01 00:00:00', 0.5, 12000, 'France'
            FROM range({rows // 1000})
        ) TO '{path}' (HEADER, DELIMITER ',')
        """
    )


def child(kind: str, csv: Path, out: Path) -> None:
    """Run one measurement and print its time and peak memory as JSON."""
    import duckdb

    from churn.config import IngestConfig
    from churn.data.ingest import IngestOutputs, ingest

    started = time.perf_counter()  # after imports: time the work, not Python start-up
    before = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = before.ru_utime + before.ru_stime
    if kind == "ours":
        report = ingest(
            csv,
            IngestConfig(),
            None,
            IngestOutputs(out / "transactions.parquet", out / "quarantine.parquet"),
        ).report
        rows = {
            "rows_in": report.rows_in,
            "rows_out": report.rows_out,
            "rows_quarantined": report.rows_quarantined,
        }
    else:
        duckdb.connect().execute(
            f"COPY (SELECT * FROM read_csv('{csv}')) TO '{out / 'copy.parquet'}' (FORMAT parquet)"
        )
        rows = {}
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu_before
    peak_mb = usage.ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_mb": peak_mb, **rows}))


def measure(kind: str, csv: Path, out: Path) -> dict[str, float]:
    out.mkdir(exist_ok=True)
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--csv", str(csv), "--out", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of copy, then ingest")
    parser.add_argument("--child", choices=["ours", "copy"], help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.csv, args.out)
        return
    with tempfile.TemporaryDirectory(prefix="churn-bench-") as tmp:
        csv = Path(tmp) / "transactions.csv"
        started = time.perf_counter()
        generate(csv, args.rows)
        size_mb = csv.stat().st_size / 2**20
        print(
            f"generated {args.rows:,} rows (+{args.rows // 1000:,} duplicate lines),"
            f" {size_mb:,.0f} MB, in {time.perf_counter() - started:.1f}s"
        )
        rounds = []
        for i in range(max(1, args.repeat)):
            copy = measure("copy", csv, Path(tmp) / f"copy{i}")
            ours = measure("ours", csv, Path(tmp) / f"ours{i}")
            rounds.append((copy, ours))
    heads = ("copy", "ingest", "ratio", "cpu copy", "ingest", "ratio")
    print(" " * 8 + "".join(f"{h:>{w}s}" for h, w in zip(heads, (9, 9, 8, 10, 9, 8), strict=True)))
    for i, (copy, ours) in enumerate(rounds, 1):
        print(
            f"round {i}{copy['seconds']:>8.1f}s{ours['seconds']:>8.1f}s"
            f"{ours['seconds'] / copy['seconds']:>7.2f}x"
            f"{copy['cpu']:>9.1f}s{ours['cpu']:>8.1f}s{ours['cpu'] / copy['cpu']:>7.2f}x"
        )
    ratio = statistics.median(o["seconds"] / c["seconds"] for c, o in rounds)
    cpu_ratio = statistics.median(o["cpu"] / c["cpu"] for c, o in rounds)
    peak = max(o["peak_mb"] for _, o in rounds)
    last = rounds[-1][1]
    print(
        f"rows in {last['rows_in']:,.0f}, out {last['rows_out']:,.0f},"
        f" quarantined {last['rows_quarantined']:,.0f}; peak memory: copy"
        f" {max(c['peak_mb'] for c, _ in rounds):,.0f} MB, ingest {peak:,.0f} MB"
    )
    fast = "ok" if ratio <= TARGET_RATIO else "MISSED"
    lean = "ok" if peak < TARGET_PEAK_MB else "MISSED"
    print(
        f"median ratio {ratio:.2f}x (target <= {TARGET_RATIO}x: {fast}), CPU {cpu_ratio:.2f}x;"
        f" peak {peak:,.0f} MB (target < {TARGET_PEAK_MB:,} MB: {lean})"
    )


if __name__ == "__main__":
    main()
