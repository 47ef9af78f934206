"""Do the orders that arrived since the previous published run look like the history?

The whole-history guards (PSI of features and score) cannot see a broken newest
daily file: one day of amounts in cents is a sliver of a customer's revenue
history (revenue PSI 0.003), yet it makes every customer who ordered that day
look a hundred times more valuable, and they crowd the retention list. So the
rows *new* since the previous run (``ts`` later than its ``last_ts``) are held to
the history on their own: the value of each new order (lines summed per order,
cancellations netted) against the orders of the ``history_days`` before, by the
ratio of medians (a unit change moves it by 50-100x, a healthy day by under
2x) and by PSI over the history's quantile bins (a change of shape, such as one
shop's file of several in cents). Quantile bins make the PSI the same on a log
scale as on the raw one. The bins are the history's 1 % and 99 % tails plus as
many equal-count bins (up to ``bins``) as give about ``ORDERS_PER_BIN`` new
orders each, just the one between the tails on a day of under 40 orders: on
small days ten bins are mostly noise (an empty bin alone adds 0.69; a healthy
week of 23 orders in a small shop reached PSI 1.0 on a median split, which the
median ratio judges anyway), while a tail bin turns a share of orders x100
into a large PSI at any count.

A day can bring only a handful of orders, and a handful proves nothing, so below
``min_orders`` new orders (or history orders) the values are recorded but not
judged. All counting runs in DuckDB on the transactions file, so a year of
history never lands in pandas.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from churn.data.session import parquet_files
from churn.nightly.guards import DistributionShiftError, psi_from_counts

# New orders expected per equal-count bin (fewer bins on a small day; see above).
ORDERS_PER_BIN = 20
# Quantiles of the history that always bound a bin: a few orders beyond them matter.
TAIL = 0.01


class NewOrderValueError(DistributionShiftError):
    """The orders new since the previous run are valued unlike the history (exit 13)."""


@dataclass(frozen=True)
class NewOrders:
    """What the guard measured; recorded in the manifest whether or not it judged."""

    since: str | None  # the previous published run's last_ts; None on a first run
    history_days: int
    orders: int  # new orders with a positive value
    history_orders: int
    median: float | None
    history_median: float | None
    median_ratio: float | None
    psi: float | None
    min_orders: int = 0
    judged: bool = False
    # Why the guard did not judge ("" when it did).
    skipped: str = ""

    def as_manifest(self) -> dict[str, Any]:
        return asdict(self)


_ORDERS_SQL = """
    CREATE TEMP TABLE sided AS
    SELECT ts > CAST($since AS TIMESTAMP) AS is_new, value
    FROM (
        SELECT min(ts) AS ts, sum(amount) AS value
        FROM read_parquet($path)
        GROUP BY customer_id, coalesce(order_id, CAST(ts AS VARCHAR))
    )
    WHERE value > 0
      AND ts > CAST($since AS TIMESTAMP) - to_days(CAST($days AS INTEGER))
"""


def measure(transactions: Path, since: str | None, history_days: int, bins: int) -> NewOrders:
    """Order values after ``since`` against the ``history_days`` up to it.

    An order is one (customer, order id) pair, or one (customer, timestamp) when
    the export has no order ids; its value is the sum of its lines, so a
    cancellation line nets out and an order with nothing left is not counted.
    """
    if since is None:
        return NewOrders(None, history_days, 0, 0, None, None, None, None, skipped="first run")
    con = duckdb.connect()
    try:
        values = {"since": since, "path": parquet_files(transactions), "days": history_days}
        con.execute(_ORDERS_SQL, values)
        stats = {
            bool(is_new): (int(n), float(med))
            for is_new, n, med in con.execute(
                "SELECT is_new, count(*), median(value) FROM sided GROUP BY is_new"
            ).fetchall()
        }
        n_new, median = stats.get(True, (0, math.nan))
        n_hist, hist_median = stats.get(False, (0, math.nan))
        value_psi = math.nan
        if n_new and n_hist:
            value_psi = _psi(con, bins, n_new)
    finally:
        con.close()
    ratio = median / hist_median if n_new and n_hist and hist_median > 0 else math.nan
    return NewOrders(
        since=since,
        history_days=history_days,
        orders=n_new,
        history_orders=n_hist,
        median=_rounded(median, 2),
        history_median=_rounded(hist_median, 2),
        median_ratio=_rounded(ratio, 4),
        psi=_rounded(value_psi, 4),
    )


def _psi(con: duckdb.DuckDBPyConnection, bins: int, n_new: int) -> float:
    """PSI of the new orders' values over the history's quantile bins, counted in SQL
    (ties merged and the outer bins open, as in ``churn.nightly.guards.psi``)."""
    cuts = sorted({TAIL, *quantile_cuts(bins, n_new), 1 - TAIL})
    row = con.execute(
        "SELECT quantile_cont(value, $cuts) FROM sided WHERE NOT is_new", {"cuts": cuts}
    ).fetchone()
    assert row is not None
    edges = [float(e) for e in np.unique(np.asarray(row[0], dtype=float))]
    bin_sql = " + ".join(f"(value >= $e{i})::INTEGER" for i in range(len(edges))) or "0"
    counts = {False: np.zeros(len(edges) + 1), True: np.zeros(len(edges) + 1)}
    for is_new, index, n in con.execute(
        f"SELECT is_new, {bin_sql} AS bin, count(*) FROM sided GROUP BY ALL",
        {f"e{i}": e for i, e in enumerate(edges)},
    ).fetchall():
        counts[bool(is_new)][int(index)] = n
    return psi_from_counts(counts[False], counts[True])


def quantile_cuts(bins: int, n_new: int) -> list[float]:
    """Inner cut points of at most ``bins`` equal-count bins, fewer on a small day so each
    expects about ``ORDERS_PER_BIN`` new orders (none below two bins' worth)."""
    k = min(bins, max(1, n_new // ORDERS_PER_BIN))
    return [i / k for i in range(1, k)]


def _rounded(value: float, digits: int) -> float | None:
    """JSON-safe and stable across runs (float sums in parallel may differ in the last bit)."""
    return None if math.isnan(value) else round(value, digits)


def check(result: NewOrders, min_orders: int, max_median_ratio: float, max_psi: float) -> NewOrders:
    """Judge ``result`` (returned with ``judged`` set) or raise ``NewOrderValueError``.

    The median ratio is held both ways (x100 and /100 are the same mistake); the
    message names every threshold that broke, with the values measured.
    """
    judged = dict(asdict(result), min_orders=min_orders)
    if result.since is None:
        return NewOrders(**judged)
    if result.orders < min_orders or result.history_orders < min_orders:
        few = "new" if result.orders < min_orders else "history"
        judged["skipped"] = f"fewer than nightly.min_new_orders={min_orders} {few} orders"
        return NewOrders(**judged)
    judged.update(judged=True, skipped="")
    ratio, value_psi = result.median_ratio, result.psi
    breaches = []
    if ratio is not None and max(ratio, 1 / ratio if ratio else math.inf) > max_median_ratio:
        breaches.append(
            f"median order value {result.median:,.2f} against {result.history_median:,.2f}"
            f" ({ratio:.3g}x, beyond nightly.max_new_order_median_ratio={max_median_ratio})"
        )
    if value_psi is not None and value_psi > max_psi:
        breaches.append(
            f"order value PSI {value_psi:.2f} (above nightly.max_new_order_psi={max_psi})"
        )
    if breaches:
        raise NewOrderValueError(
            f"the {result.orders:,} orders after {result.since} are valued unlike the"
            f" {result.history_orders:,} of the {result.history_days} days before: "
            + " and ".join(breaches)
            + "; check the amounts in the newest files (if the change is real, rerun with"
            " --accept-drift); previous list left in place"
        )
    return NewOrders(**judged)
