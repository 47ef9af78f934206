"""The report KPIs as pandas computed them before issue 20, kept only as a test oracle.

``churn.scoring.kpis`` now computes them in the engine (``churn.scoring.kpi_engine``);
these row-by-row definitions are the reference its numbers are held to. One change
since: a purchase is the feature stage's purchase event (an order's lines on one day,
summed in integer millionths, netting positive, at its first line's whole second), as
the model's label counts them; the sample has no order spanning two days and no
sub-second time, so its numbers did not move.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_DAY = pd.Timedelta(days=1)


def purchases(transactions: pd.DataFrame) -> pd.DataFrame:
    tx = transactions[transactions["customer_id"].notna()]
    key = tx["order_id"].astype("string").fillna(tx["ts"].astype("string"))  # exact time
    tx = tx.assign(ts=tx["ts"].dt.floor("s"))  # the features count whole seconds
    scaled = tx["amount"].to_numpy(dtype=float) * 1e6
    micros = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)  # SQL ROUND: half away from 0
    orders = (
        tx.assign(order_key=key, day=tx["ts"].dt.normalize(), micros=micros)
        .groupby(["customer_id", "order_key", "day"], as_index=False, sort=False)
        .agg(ts=("ts", "min"), amount=("amount", "sum"), micros=("micros", "sum"))
    )
    bought = orders[orders["micros"] > 0]
    return bought.sort_values(["customer_id", "ts"], kind="stable")[
        ["customer_id", "ts", "amount"]
    ].reset_index(drop=True)


def _month_number(ts: pd.Series) -> pd.Series:
    return ts.dt.year * 12 + ts.dt.month - 1


def _to_period(month_numbers: pd.Index) -> pd.PeriodIndex:
    periods = [pd.Period(year=m // 12, month=m % 12 + 1, freq="M") for m in month_numbers]
    return pd.PeriodIndex(periods, freq="M")


def repeat_purchase_rate(transactions: pd.DataFrame) -> float:
    counts = purchases(transactions).groupby("customer_id").size()
    return float((counts >= 2).mean()) if len(counts) else float("nan")


def monthly_kpis(
    transactions: pd.DataFrame, *, lookback_days: int = 90, horizon_days: int = 90
) -> pd.DataFrame:
    bought = purchases(transactions)
    bought["month"] = _month_number(bought["ts"])
    rank = bought.groupby("customer_id").cumcount()
    tx_month = _month_number(transactions["ts"])
    months = pd.RangeIndex(int(tx_month.min()), int(tx_month.max()) + 1, name="month")
    per_buyer = bought.assign(rank=rank).groupby(["month", "customer_id"])["rank"].max()
    per_month = per_buyer.groupby(level="month")
    out = pd.DataFrame(
        {
            "active_customers": per_month.size(),
            "new_customers": bought[rank == 0].groupby("month").size(),
            "orders": bought.groupby("month").size(),
            "revenue": transactions.groupby(tx_month)["amount"].sum(),
        }
    ).reindex(months, fill_value=0)
    out = out.fillna(0).astype({c: "int64" for c in out.columns if c != "revenue"})
    out["repeat_rate"] = (per_buyer >= 1).groupby(level="month").mean().reindex(months)
    periods = _to_period(months).rename("month")
    out["churn_rate"] = [
        _churn_rate(bought, start, lookback_days, horizon_days, transactions["ts"].max())
        for start in periods.to_timestamp()
    ]
    out.index = periods
    return out


def _churn_rate(
    bought: pd.DataFrame, cutoff: pd.Timestamp, lookback: int, horizon: int, last: pd.Timestamp
) -> float:
    if cutoff + horizon * _DAY > last:
        return float("nan")
    ts = bought["ts"]
    base = set(bought.loc[(ts > cutoff - lookback * _DAY) & (ts <= cutoff), "customer_id"])
    if not base:
        return float("nan")
    back = set(bought.loc[(ts > cutoff) & (ts <= cutoff + horizon * _DAY), "customer_id"])
    return len(base - back) / len(base)


def cohort_retention(transactions: pd.DataFrame) -> pd.DataFrame:
    bought = purchases(transactions)
    bought["month"] = _month_number(bought["ts"])
    bought["cohort"] = bought.groupby("customer_id")["month"].transform("min")
    bought["k"] = bought["month"] - bought["cohort"]
    active = bought.drop_duplicates(["customer_id", "k"])
    sizes = active[active["k"] == 0].groupby("cohort").size()
    if sizes.empty:
        return pd.DataFrame(index=pd.PeriodIndex([], freq="M", name="cohort"), dtype=float)
    last = int(_month_number(transactions["ts"]).max())
    counts = active.groupby(["cohort", "k"]).size().unstack("k", fill_value=0)
    counts = counts.reindex(columns=range(last - int(sizes.index.min()) + 1), fill_value=0)
    table = counts.div(sizes, axis=0).astype(float)
    unobserved = (table.index.to_numpy()[:, None] + table.columns.to_numpy()[None, :]) > last
    table = table.mask(unobserved)
    table.index = _to_period(table.index).rename("cohort")
    table.columns.name = "months_since_first"
    return table
