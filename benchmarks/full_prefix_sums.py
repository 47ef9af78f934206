"""Method (c) of benchmarks/features.py, computing every feature the stage computes.

Issue 4 compares our stage with the prefix-sum method computing "the same features and
label". The narrow (c) in features.py computes 13 of them on events it reads as orders;
this one does what our definition does (``churn.features.rfm``), in NumPy, so the ratio
compares equal work:

- lines are merged into orders per (customer, order id, calendar day, guest instant), the
  generator's one line per order notwithstanding: real exports have many;
- purchases are sorted per customer for the inter-purchase gaps and the first country;
- one aggregation per (customer, bucket between boundaries) for counts, revenue (integer
  millionths), squared gaps, holiday orders, returns, maximum order value and last purchase;
- prefix sums and running maxima along the buckets, so each cutoff gathers every feature of
  its population from a few columns, and every window is a difference of two prefix sums.

It keeps dense (customer x bucket) arrays, ~2 GB at 860 k customers: a reference for speed,
not a design for 100 M rows. BTYD fits and RFM segments are not part of it (the stage adds
them on top).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

DAY = 86_400
MICROS = 1_000_000
CHRISTMAS_DOY = 359


def _codes(column: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """Dictionary codes (nulls -1) and the dictionary."""
    encoded = pc.dictionary_encode(column).combine_chunks()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    if encoded.null_count:
        valid = pc.is_valid(encoded.indices).to_numpy(zero_copy_only=False)
        codes = np.where(valid, np.nan_to_num(codes), -1)
    return codes.astype(np.int64), encoded.dictionary


def _ranked(column: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """Codes whose order is the values' order (for "min of a text"; nulls -1), and values."""
    codes, values = _codes(column)
    order = pc.sort_indices(values).to_numpy()
    rank = np.empty(len(values), dtype=np.int64)
    rank[order] = np.arange(len(values))
    return np.where(codes < 0, -1, rank[np.maximum(codes, 0)]), values.take(pa.array(order))


def _runs(*keys: np.ndarray) -> np.ndarray:
    """Start index of every run of equal keys (rows already sorted by them)."""
    change = np.zeros(len(keys[0]), dtype=bool)
    change[0] = True
    for key in keys:
        change[1:] |= key[1:] != key[:-1]
    return np.flatnonzero(change)


_NO_COUNTRY = np.iinfo(np.int64).max  # nulls sort last, as in DuckDB


def _orders(path: Path, as_of_us: int) -> dict[str, Any]:
    """Lines merged into orders, as ``rfm.order_events`` merges them, sorted by
    (customer, time, country): the order every later step wants."""
    table = pq.read_table(path, columns=["customer_id", "order_id", "ts", "amount", "country"])
    table = table.filter(pc.less(table["ts"], pa.scalar(as_of_us, pa.timestamp("us"))))
    customer, names = _codes(table["customer_id"])
    order, _ = _codes(table["order_id"])
    country, countries = _ranked(table["country"])
    ts_us = pc.cast(table["ts"], pa.int64()).to_numpy()
    micros = np.round(table["amount"].to_numpy() * MICROS).astype(np.int64)
    del table
    day = ts_us // (DAY * MICROS)
    keys = [day, order, customer]
    if (order < 0).any():  # guest lines: one order per instant
        keys.insert(0, np.where(order < 0, ts_us, 0))
    lines = np.lexsort(keys)
    starts = _runs(*(k[lines] for k in keys))
    country = np.where(country < 0, _NO_COUNTRY, country)
    customer = customer[lines][starts]
    ts_us = np.minimum.reduceat(ts_us[lines], starts)
    micros = np.add.reduceat(micros[lines], starts)
    country = np.minimum.reduceat(country[lines], starts)
    by_time = np.lexsort((country, ts_us, customer))
    return {
        "customer": customer[by_time],
        "ts_us": ts_us[by_time],
        "micros": micros[by_time],
        "country": country[by_time],
        "names": names,
        "countries": countries,
    }


def compute(path: Path, cutoffs: pd.DataFrame, as_of: Any, horizon: int, active: int,
            windows: tuple[int, ...], out: Path) -> tuple[int, dict[str, float]]:  # fmt: skip
    """Write the full feature table for ``cutoffs``; (rows, phase seconds)."""
    phases: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        phases[name] = now - clock
        clock = now

    as_of_us = int((pd.Timestamp(as_of) - pd.Timestamp(0)).total_seconds()) * MICROS
    o = _orders(path, as_of_us)
    lap("read + encode + merge lines into orders + sort by customer, time")

    customer, ts_us, micros = o["customer"], o["ts_us"], o["micros"]
    ts_s = -(-ts_us // MICROS)
    bought = micros > 0
    month = pd.DatetimeIndex(ts_us.astype("datetime64[us]")).month.to_numpy()
    holiday = bought & ((month == 11) | (month == 12))
    # Gaps between a customer's consecutive purchases (orders are in time order already).
    p = np.flatnonzero(bought)
    same = customer[p][1:] == customer[p][:-1]
    gap_sq = np.zeros(len(customer), dtype=np.int64)
    gap = ts_s[p][1:] - ts_s[p][:-1]
    gap_sq[p[1:]] = np.where(same, gap * gap, 0)
    first_of_customer = p[np.concatenate([[True], ~same])]
    n_cust = len(o["names"])
    first_s = np.zeros(n_cust, dtype=np.int64)
    first_s[customer[first_of_customer]] = ts_s[first_of_customer]
    first_country = np.full(n_cust, -1)
    first_country[customer[first_of_customer]] = o["country"][first_of_customer]
    first_country[first_country == _NO_COUNTRY] = -1
    lap("gaps + first purchase")

    cut_s = np.array([int((pd.Timestamp(c) - pd.Timestamp(0)).total_seconds())
                      for c in cutoffs["cutoff"]], dtype=np.int64)  # fmt: skip
    lengths = sorted({*windows, 90, 180, 365, 365 - horizon, active})
    edges = [cut_s, cut_s + horizon * DAY, *[cut_s - w * DAY for w in lengths]]
    bounds = np.unique(np.concatenate(edges))
    col = {int(b): i for i, b in enumerate(bounds)}
    width = len(bounds) + 1
    bucket = np.searchsorted(bounds, ts_s, side="left")
    # Orders are sorted by (customer, time), so each (customer, bucket) cell is one run.
    runs = _runs(customer, bucket)
    flat = bucket[runs] * n_cust + customer[runs]  # (bucket, customer) cells, row-major
    base = int(ts_s.min()) - 1  # last purchase as seconds after base: 0 = none yet

    def along_buckets(values: np.ndarray, how: np.ufunc, dtype: type = np.int64) -> np.ndarray:
        """(bucket, customer) prefix sums (or running maxima) of the per-cell totals.

        0 is the identity of both (maxima are taken of positive values only), so
        the arrays start as zeros; counts fit int32, halving the memory to touch."""
        dense = np.zeros(width * n_cust, dtype=dtype)
        dense[flat] = how.reduceat(values, runs)
        grid = dense.reshape(width, n_cust)
        return how.accumulate(grid, axis=0, out=grid)

    n = along_buckets(bought.astype(np.int32), np.add, np.int32)
    revenue = along_buckets(micros, np.add)
    square = along_buckets(gap_sq, np.add)
    holidays = along_buckets(holiday.astype(np.int32), np.add, np.int32)
    returns = along_buckets((~bought).astype(np.int32), np.add, np.int32)
    largest = along_buckets(np.where(bought, micros, 0), np.maximum)
    last = along_buckets(np.where(bought, ts_s - base, 0).astype(np.int32), np.maximum, np.int32)
    lap("bucket aggregation + prefix sums")

    writer: pq.ParquetWriter | None = None
    rows = 0
    for cutoff, c in zip(cutoffs["cutoff"], cut_s, strict=True):
        at = col[int(c)]
        bought_by = last[at]
        who = np.flatnonzero((bought_by > 0) & (bought_by > c - active * DAY - base))
        n_at = n[at][who]
        lo = {w: col[int(c) - w * DAY] for w in lengths}
        inside = {w: n_at - n[k][who] for w, k in lo.items()}
        rev = revenue[at][who] / MICROS
        last_s, first = last[at][who].astype(np.int64) + base, first_s[who]
        recency = (c - last_s) / DAY
        n_gaps = n_at - 1
        with np.errstate(all="ignore"):
            mean_gap = np.where(n_gaps > 0, (last_s - first) / DAY / n_gaps, np.nan)
            variance = square[at][who] / (DAY * DAY) / n_gaps - mean_gap * mean_gap
            gap_sd = np.where(n_gaps > 1, np.sqrt(np.maximum(variance, 0.0)), np.nan)
        safe_gap = np.maximum(np.nan_to_num(mean_gap), 1.0)
        first_country_of = first_country[who]
        no_country = first_country_of < 0
        doy = pd.Timestamp(cutoff).dayofyear
        to_christmas = ((CHRISTMAS_DOY - doy) % 365 + 365) % 365
        recent, previous = inside[90], inside[180] - inside[90]
        columns: dict[str, Any] = {
            "customer_id": o["names"].take(pa.array(who)),
            "cutoff": pa.array([pd.Timestamp(cutoff)] * len(who), pa.timestamp("us")),
            "n_orders": n_at,
            "revenue": rev,
            "max_order_value": largest[at][who] / MICROS,
            "n_orders_prev_90d": previous,
            "n_orders_last_year_horizon": inside[365] - inside[365 - horizon],
            "n_holiday_orders": holidays[at][who],
            "n_returns": returns[at][who],
        }
        for w in windows:
            columns[f"n_orders_{w}d"] = inside[w]
            columns[f"revenue_{w}d"] = (revenue[at][who] - revenue[lo[w]][who]) / MICROS
        columns |= {
            "recency_days": recency,
            "tenure_days": (c - first) / DAY,
            "avg_order_value": rev / n_at,
            "mean_gap_days": mean_gap,
            "gap_sd_days": gap_sd,
            "overdue_ratio": np.where(np.isnan(mean_gap), np.nan, recency / safe_gap),
            "trend_90d": np.log((recent + 1) / (previous + 1)),
            "holiday_order_share": holidays[at][who] / n_at,
            "return_rate": returns[at][who] / n_at,
            "days_to_christmas": np.full(len(who), to_christmas, dtype=np.int64),
            "christmas_in_horizon": np.full(len(who), int(to_christmas < horizon), np.int8),
            "country": o["countries"].take(pa.array(first_country_of, mask=no_country)),
            "churned": (n[col[int(c) + horizon * DAY]][who] == n_at).astype(np.int8),
        }
        table = pa.table(columns)
        if writer is None:
            # Dictionary pages only for the country, as our stage's writer does.
            writer = pq.ParquetWriter(out, table.schema, use_dictionary=["country"])
        writer.write_table(table)
        rows += table.num_rows
    if writer is not None:
        writer.close()
    lap("per-cutoff gather + derived features + write")
    return rows, phases
