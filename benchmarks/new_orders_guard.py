"""Where the new-orders guard's defaults come from: healthy days against a file in cents.

Run: .venv/bin/python benchmarks/new_orders_guard.py [--customers 20000] [--every 1]

On the generated sample (the same generator and defaults as `churn generate`),
for every as-of date over the last two years, the orders new since a previous
run a day, a week or a month earlier are measured against the 365 days before
(``churn.nightly.new_orders.measure``, the nightly job's own code); then the
same with the newest day's amounts x100 (a unit change in the newest daily
file) and with 30 % of the newest day's orders x100 (one shop's file of
several). Printed: the largest healthy median ratio and PSI per gap and per
order count, how many healthy days the defaults would refuse (should be none)
and how many attacks they catch. ``--customers 1500`` is the test shop's size,
about ten orders a day.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import tempfile
from pathlib import Path

import pandas as pd

from churn.config import GenerateConfig, NightlyConfig
from churn.data.generate import generate_shop
from churn.nightly.new_orders import NewOrders, NewOrderValueError, check, measure

GAPS_DAYS = (1, 7, 30)


def _canonical(customers: int) -> pd.DataFrame:
    raw = generate_shop(GenerateConfig(n_customers=customers)).transactions
    known = raw[raw["CustomerID"] != ""]
    return pd.DataFrame(
        {
            "customer_id": known["CustomerID"].astype(str),
            "order_id": known["Invoice"].astype(str),
            "ts": known["InvoiceDate"].astype("datetime64[us]"),
            "amount": known["Amount"].astype(float),
        }
    ).sort_values("ts", kind="stable")


def _fires(result: NewOrders, config: NightlyConfig) -> bool | None:
    """True refused, False passed, None not judged (too few orders)."""
    try:
        judged = check(
            result,
            config.min_new_orders,
            config.max_new_order_median_ratio,
            config.max_new_order_psi,
        )
    except NewOrderValueError:
        return True
    return False if judged.judged else None


def main(customers: int, every: int) -> None:
    config = NightlyConfig()
    tx = _canonical(customers)
    end = tx["ts"].max().normalize()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tx.parquet"
        for as_of in pd.date_range(end - pd.Timedelta(days=730), end, freq=f"{every}D"):
            seen = tx[tx["ts"] < as_of]
            for gap in GAPS_DAYS:
                since = seen.loc[seen["ts"] < as_of - pd.Timedelta(days=gap), "ts"].max()
                newest = seen["ts"] >= as_of - pd.Timedelta(days=1)
                variants = {"healthy": seen["amount"]}
                if gap == 1:
                    variants["x100"] = seen["amount"].where(~newest, seen["amount"] * 100)
                    share = newest & (seen.groupby(newest).cumcount() % 10 < 3)
                    variants["30% x100"] = seen["amount"].where(~share, seen["amount"] * 100)
                for name, amounts in variants.items():
                    seen.assign(amount=amounts).to_parquet(path)
                    result = measure(path, str(since), config.new_order_history_days, 10)
                    ratio = result.median_ratio or math.nan
                    rows.append(
                        {
                            "variant": name,
                            "gap": gap,
                            "month": as_of.month,
                            "orders": result.orders,
                            "fold": math.exp(abs(math.log(ratio))) if ratio > 0 else math.nan,
                            "psi": result.psi,
                            "fires": _fires(result, config),
                        }
                    )
    frame = pd.DataFrame(rows)
    print(f"{customers:,} customers; defaults: {config.min_new_orders=},")
    print(f"  {config.max_new_order_median_ratio=}, {config.max_new_order_psi=}")
    healthy = frame[(frame["variant"] == "healthy") & (frame["orders"] >= config.min_new_orders)]
    bands = pd.cut(healthy["orders"], [0, 40, 80, 10**9], labels=["<40", "40-79", "80+"])
    table = healthy.groupby(["gap", bands], observed=True).agg(
        days=("fold", "size"), max_ratio=("fold", "max"), max_psi=("psi", "max")
    )
    print("healthy days with enough orders to judge, largest values:")
    print(table.round(2).to_string())
    winter = healthy[healthy["month"].isin([12, 1])]
    print(
        f"  December/January: max ratio {winter['fold'].max():.2f}, max PSI"
        f" {winter['psi'].max():.2f}"
    )
    for name, part in frame.groupby("variant"):
        counts = part["fires"].map({True: "refused", False: "passed", None: "not judged"})
        print(f"{name:>9}: {counts.value_counts().to_dict()}")
        judged = part[part["fires"].notna()]
        if name != "healthy" and len(judged):
            smallest = f"{judged['fold'].min():.1f}x, PSI {judged['psi'].min():.2f}"
            print(f"           smallest ratio {smallest}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=GenerateConfig().n_customers)
    parser.add_argument("--every", type=int, default=1, help="measure every Nth day")
    args = parser.parse_args()
    started = dt.datetime.now()
    main(args.customers, args.every)
    print(f"({(dt.datetime.now() - started).total_seconds():.0f} s)")
