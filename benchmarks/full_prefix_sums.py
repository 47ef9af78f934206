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
    """Dictionary codes whose order is the values' order (nulls get -1), and the values."""
    encoded = pc.dictionary_encode(column).combine_chunks()
    values = encoded.dictionary
    rank = np.empty(len(values), dtype=np.int64)
    rank[pc.sort_indices(values).to_numpy()] = np.arange(len(values))
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    valid = pc.is_valid(encoded.indices).to_numpy(zero_copy_only=False)
    codes = np.where(valid, rank[np.where(valid, indices, 0).astype(np.int64)], -1)
    return codes, values.take(pa.array(pc.sort_indices(values)))


def _orders(path: Path, as_of_us: int) -> dict[str, np.ndarray | pa.Array]:
    """Lines merged into orders, as ``rfm.order_events`` merges them."""
    table = pq.read_table(path, columns=["customer_id", "order_id", "ts", "amount", "country"])
    table = table.filter(pc.less(table["ts"], pa.scalar(as_of_us, pa.timestamp("us"))))
    customer, names = _codes(table["customer_id"])
    order, _ = _codes(table["order_id"])
    country, countries = _codes(table["country"])
    ts_us = pc.cast(table["ts"], pa.int64()).to_numpy()
    micros = np.round(table["amount"].to_numpy() * MICROS).astype(np.int64)
    del table
    guest = np.where(order < 0, ts_us, 0)
    day = ts_us // (DAY * MICROS)
    by_order = np.lexsort((guest, day, order, customer))
    keys = [a[by_order] for a in (customer, order, day, guest)]
    starts = np.flatnonzero(
        np.concatenate([[True], np.any([k[1:] != k[:-1] for k in keys], axis=0)])
    )
    ts_sorted = ts_us[by_order]
    # Min of non-null country codes per order: nulls (-1) sort out as the largest.
    country_sorted = np.where(country < 0, np.iinfo(np.int64).max, country)[by_order]
    order_country = np.minimum.reduceat(country_sorted, starts)
    order_country = np.where(order_country == np.iinfo(np.int64).max, -1, order_country)
    return {
        "customer": keys[0][starts],
        "ts_us": np.minimum.reduceat(ts_sorted, starts),
        "micros": np.add.reduceat(micros[by_order], starts),
        "country": order_country,
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
    lap("read + encode + merge lines into orders")

    customer, ts_us, micros = o["customer"], o["ts_us"], o["micros"]
    ts_s = -(-ts_us // MICROS)
    bought = micros > 0
    month = pd.DatetimeIndex(ts_us.astype("datetime64[us]")).month.to_numpy()
    holiday = bought & ((month == 11) | (month == 12))
    # Gaps between a customer's consecutive purchases, in (ts, country) order.
    country_key = np.where(o["country"] < 0, np.iinfo(np.int64).max, o["country"])
    p = np.flatnonzero(bought)
    p = p[np.lexsort((country_key[p], ts_us[p], customer[p]))]
    same = customer[p][1:] == customer[p][:-1]
    gap = np.zeros(len(p), dtype=np.int64)
    gap[1:] = np.where(same, ts_s[p][1:] - ts_s[p][:-1], 0)
    gap_sq = np.zeros(len(customer), dtype=np.int64)
    gap_sq[p] = gap * gap
    first_of_customer = p[np.concatenate([[True], ~same])]
    n_cust = len(o["names"])
    first_s = np.full(n_cust, np.iinfo(np.int64).max)
    first_s[customer[first_of_customer]] = ts_s[first_of_customer]
    first_country = np.full(n_cust, -1)
    first_country[customer[first_of_customer]] = o["country"][first_of_customer]
    lap("gaps + first purchase")

    cut_s = np.array([int((pd.Timestamp(c) - pd.Timestamp(0)).total_seconds())
                      for c in cutoffs["cutoff"]], dtype=np.int64)  # fmt: skip
    lengths = sorted({*windows, 90, 180, 365, 365 - horizon, active})
    edges = [cut_s, cut_s + horizon * DAY, *[cut_s - w * DAY for w in lengths]]
    bounds = np.unique(np.concatenate(edges))
    col = {int(b): i for i, b in enumerate(bounds)}
    width = len(bounds) + 1
    cell = customer * width + np.searchsorted(bounds, ts_s, side="left")
    n_cells = n_cust * width

    def cumulative(values: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
        cells = cell if where is None else cell[where]
        vals = values if where is None else values[where]
        total = np.bincount(cells, weights=vals, minlength=n_cells)
        return np.cumsum(np.rint(total).astype(np.int64).reshape(n_cust, width), axis=1)

    ones = np.ones(len(cell), dtype=np.int64)
    n = cumulative(ones, bought)
    revenue = cumulative(micros)  # exact: sums of integer millionths stay below 2^53
    square = np.zeros(n_cells, dtype=np.int64)  # squared gaps can pass 2^53: integer adds
    np.add.at(square, cell, gap_sq)
    square = np.cumsum(square.reshape(n_cust, width), axis=1)
    holidays = cumulative(ones, holiday)
    returns = cumulative(ones, ~bought)
    low = np.iinfo(np.int64).min
    largest = np.full(n_cells, low)
    np.maximum.at(largest, cell[bought], micros[bought])
    largest = np.maximum.accumulate(largest.reshape(n_cust, width), axis=1)
    last = np.full(n_cells, low)
    np.maximum.at(last, cell[bought], ts_s[bought])
    last = np.maximum.accumulate(last.reshape(n_cust, width), axis=1)
    lap("bucket aggregation + prefix sums")

    writer: pq.ParquetWriter | None = None
    rows = 0
    for cutoff, c in zip(cutoffs["cutoff"], cut_s, strict=True):
        at = col[int(c)]
        who = np.flatnonzero(last[:, at] > c - active * DAY)
        n_at = n[who, at]
        lo = {w: col[int(c) - w * DAY] for w in lengths}
        inside = {w: n_at - n[who, k] for w, k in lo.items()}
        rev = revenue[who, at] / MICROS
        last_s, first = last[who, at], first_s[who]
        recency = (c - last_s) / DAY
        n_gaps = n_at - 1
        with np.errstate(all="ignore"):
            mean_gap = np.where(n_gaps > 0, (last_s - first) / DAY / n_gaps, np.nan)
            variance = square[who, at] / (DAY * DAY) / n_gaps - mean_gap * mean_gap
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
            "max_order_value": largest[who, at] / MICROS,
            "n_orders_prev_90d": previous,
            "n_orders_last_year_horizon": inside[365] - inside[365 - horizon],
            "n_holiday_orders": holidays[who, at],
            "n_returns": returns[who, at],
        }
        for w in windows:
            columns[f"n_orders_{w}d"] = inside[w]
            columns[f"revenue_{w}d"] = (revenue[who, at] - revenue[who, lo[w]]) / MICROS
        columns |= {
            "recency_days": recency,
            "tenure_days": (c - first) / DAY,
            "avg_order_value": rev / n_at,
            "mean_gap_days": mean_gap,
            "gap_sd_days": gap_sd,
            "overdue_ratio": np.where(np.isnan(mean_gap), np.nan, recency / safe_gap),
            "trend_90d": np.log((recent + 1) / (previous + 1)),
            "holiday_order_share": holidays[who, at] / n_at,
            "return_rate": returns[who, at] / n_at,
            "days_to_christmas": np.full(len(who), to_christmas, dtype=np.int64),
            "christmas_in_horizon": np.full(len(who), int(to_christmas < horizon), np.int8),
            "country": o["countries"].take(pa.array(first_country_of, mask=no_country)),
            "churned": (n[who, col[int(c) + horizon * DAY]] == n_at).astype(np.int8),
        }
        table = pa.table(columns)
        if writer is None:
            writer = pq.ParquetWriter(out, table.schema)
        writer.write_table(table)
        rows += table.num_rows
    if writer is not None:
        writer.close()
    lap("per-cutoff gather + derived features + write")
    return rows, phases
