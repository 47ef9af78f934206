"""How long `churn outcomes`' read-out takes, against a plain DuckDB group-by on the same join.

Run: .venv/bin/python benchmarks/outcomes.py [--customers 10000000] [--campaigns 12]
     [--purchases 2.0] [--repeat 2] [--memory-limit 4GB]

A shop of ``--customers`` customers and 12 monthly lists (nightly partitions, each
listing ``customers / campaigns`` of them at random, 30 % control, three actions,
bands and segments), and about ``--purchases`` purchases per customer over the year,
all as Parquet written by DuckDB. Timed in alternating rounds in the same process:

* ``read_out``: the whole measurement (churn.outcomes.campaigns.read_out): lists read
  and deduplicated per campaign window, every listed customer's outcome within the
  horizon (one range join), sums per arm for pooled / campaign / action / band /
  segment, and the intervals;
* the reference: the same range join and one ``GROUP BY action, control_group`` of
  retained counts and revenue sums, nothing else: the floor for any read-out.

The ratio (median over rounds) is the number to watch; the target is within 2x.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from churn.outcomes.campaigns import read_out
from churn.outcomes.lists import find_list_files

START = "2025-01-01"


def make_shop(folder: Path, customers: int, campaigns: int, purchases: float) -> None:
    """Nightly-style list partitions and one transactions file, generated inside DuckDB."""
    con = duckdb.connect()
    per_list = customers // campaigns
    for i in range(campaigns):
        part = folder / "nightly" / f"as_of={_as_of(i)}"
        part.mkdir(parents=True)
        con.execute(
            f"""COPY (
                SELECT 'c' || (hash(r, {i}) % {customers}) AS customer_id,
                       DATE '{_as_of(i)}' AS as_of,
                       random() AS churn_probability, 100 * random() AS expected_value_12m,
                       ['low', 'medium', 'high'][1 + (r % 3)] AS risk_band,
                       ['At risk', 'Loyal', 'Lost', 'New'][1 + (r % 4)] AS segment,
                       ['Personal call', 'Loyalty offer', 'Win-back email']
                           [1 + (hash(r) % 3)::BIGINT] AS action,
                       5.0 AS contact_cost, true AS targeted, random() < 0.3 AS control_group
                FROM range({per_list}) t(r)
            ) TO '{part / "targets.parquet"}' (FORMAT parquet)"""
        )
    rows = int(customers * purchases)
    con.execute(
        f"""COPY (
            SELECT 'c' || (hash(r) % {customers}) AS customer_id,
                   TIMESTAMP '{START}' + to_seconds((random() * 450 * 86400)::BIGINT) AS ts,
                   round(10 + 90 * random(), 2) AS amount
            FROM range({rows}) t(r)
        ) TO '{folder / "tx.parquet"}' (FORMAT parquet)"""
    )
    con.close()


def _as_of(i: int) -> str:
    return f"2025-{i % 12 + 1:02d}-01" if i < 12 else f"2026-{i % 12 + 1:02d}-01"


def reference(files: list[Path], tx: Path, memory_limit: str) -> None:
    """The plain join and group-by the read-out cannot beat."""
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    listing = ", ".join(f"'{f}'" for f in files)
    con.execute(
        f"""SELECT action, control_group, count(*) AS n, count(*) FILTER (WHERE n > 0),
                   sum(revenue)
            FROM (
                SELECT l.action, l.control_group, l.customer_id, l.as_of,
                       count(t.ts) AS n, coalesce(sum(t.amount), 0) AS revenue
                FROM read_parquet([{listing}]) l
                LEFT JOIN read_parquet('{tx}') t
                  ON t.customer_id = l.customer_id AND t.ts > l.as_of
                 AND t.ts <= l.as_of + INTERVAL 90 DAY
                WHERE l.targeted
                GROUP BY ALL
            )
            GROUP BY ALL"""
    ).fetchall()
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000_000)
    parser.add_argument("--campaigns", type=int, default=12)
    parser.add_argument("--purchases", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--memory-limit", default="4GB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="churn-bench-outcomes-") as name:
        folder = Path(name)
        started = time.perf_counter()
        make_shop(folder, args.customers, args.campaigns, args.purchases)
        print(f"shop: {args.customers:,} listed over {args.campaigns} campaigns,"
              f" {int(args.customers * args.purchases):,} purchases"
              f" ({time.perf_counter() - started:.1f}s to write)")  # fmt: skip
        files = find_list_files(folder / "none.parquet", folder / "nightly")
        tx = folder / "tx.parquet"
        ours, plain = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = read_out(files, tx, 90, 30, memory_limit=args.memory_limit)
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            reference(files, tx, args.memory_limit)
            plain.append(time.perf_counter() - t0)
            print(f"  read_out {ours[-1]:.1f}s, plain group-by {plain[-1]:.1f}s")
        pooled = out.intent_to_treat.pooled
        print(f"pooled: {pooled.n_contacted:,} contacted, {pooled.n_control:,} control")
        ratio = statistics.median(o / p for o, p in zip(ours, plain, strict=True))
        print(f"read_out / plain group-by: {ratio:.2f}x (target 2x)")


if __name__ == "__main__":
    main()
