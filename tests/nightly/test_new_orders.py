"""The new-orders guard on its own: real Parquet files, DuckDB counting, hand-computed values."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from churn.nightly.guards import PSI_FLOOR
from churn.nightly.new_orders import (
    NewOrders,
    NewOrderValueError,
    check,
    measure,
    quantile_cuts,
)

SINCE = "2026-08-31 20:00:00"


def _write(path: Path, rows: list[tuple[str, str | None, str, float]]) -> Path:
    frame = pd.DataFrame(rows, columns=["customer_id", "order_id", "ts", "amount"])
    frame["ts"] = pd.to_datetime(frame["ts"]).astype("datetime64[us]")
    frame.to_parquet(path)
    return path


def _history(n: int = 100) -> list[tuple[str, str | None, str, float]]:
    """Orders worth 1..n, one a day before SINCE (each day in August, then July...)."""
    day = pd.Timestamp("2026-08-31 10:00")
    return [(f"c{i}", f"h{i}", str(day - pd.Timedelta(days=i)), float(i)) for i in range(1, n + 1)]


def _psi(p: list[float], q: list[float]) -> float:
    terms = [(max(b, PSI_FLOOR) - max(a, PSI_FLOOR)) for a, b in zip(p, q, strict=True)]
    logs = [math.log(max(b, PSI_FLOOR) / max(a, PSI_FLOOR)) for a, b in zip(p, q, strict=True)]
    return sum(t * lg for t, lg in zip(terms, logs, strict=True))


def test_measure_matches_hand_computed_median_ratio_and_psi(tmp_path: Path) -> None:
    # 40 new orders worth 1,000 each (a newest file in cents, say). With 40 new orders the
    # bins are the history's median plus its 1 % tails: edges 1.99, 50.5, 99.01 on 1..100,
    # so the history's shares are 1, 49, 49 and 1 % and every new order is in the last bin.
    new = [(f"n{i}", f"o{i}", "2026-09-01 12:00:00", 1_000.0) for i in range(40)]
    result = measure(_write(tmp_path / "tx.parquet", _history() + new), SINCE, 365, 10)
    assert (result.orders, result.history_orders) == (40, 100)
    assert result.median == 1_000.0 and result.history_median == 50.5
    assert result.median_ratio == pytest.approx(1_000 / 50.5, abs=1e-4)
    expected = _psi([0.01, 0.49, 0.49, 0.01], [0, 0, 0, 1])
    assert expected > 10
    assert result.psi == pytest.approx(expected, abs=1e-4)


def test_orders_are_summed_over_their_lines_and_cancellations_net_out(tmp_path: Path) -> None:
    new = [
        # one order of three lines: worth 60, not three orders of 20
        ("a", "o1", "2026-09-01 09:00:00", 20.0),
        ("a", "o1", "2026-09-01 09:00:00", 20.0),
        ("a", "o1", "2026-09-01 09:00:00", 20.0),
        # an order and its cancellation line under the same order id: nothing left
        ("b", "o2", "2026-09-01 10:00:00", 500.0),
        ("b", "o2", "2026-09-01 11:00:00", -500.0),
        # no order id: one order per customer and timestamp
        ("c", None, "2026-09-01 12:00:00", 30.0),
        ("c", None, "2026-09-01 12:00:00", 10.0),
    ]
    old = [("z", "old", "2024-01-01 10:00:00", 1e6)]  # outside the 365-day history window
    result = measure(_write(tmp_path / "tx.parquet", _history(9) + new + old), SINCE, 365, 10)
    assert (result.orders, result.history_orders) == (2, 9)
    assert result.median == 50.0 and result.history_median == 5.0  # median of 60 and 40


def test_first_run_and_small_days_are_recorded_not_judged(tmp_path: Path) -> None:
    path = _write(tmp_path / "tx.parquet", _history())
    first = check(measure(path, None, 365, 10), 20, 3.0, 1.0)
    assert not first.judged and first.skipped == "first run" and first.orders == 0

    few = [(f"n{i}", f"o{i}", "2026-09-01 12:00:00", 1_000.0) for i in range(5)]
    path = _write(tmp_path / "few.parquet", _history() + few)
    small = check(measure(path, SINCE, 365, 10), 20, 3.0, 1.0)  # x20 the median: not judged
    assert not small.judged and small.median_ratio and small.median_ratio > 3
    assert small.skipped == "fewer than nightly.min_new_orders=20 new orders"
    assert small.as_manifest()["min_orders"] == 20
    with pytest.raises(NewOrderValueError):
        check(measure(path, SINCE, 365, 10), 5, 3.0, 1.0)


def _result(ratio: float, value_psi: float) -> NewOrders:
    return NewOrders(SINCE, 365, 40, 9_000, 40.0 * ratio, 40.0, ratio, value_psi)


def test_check_holds_the_median_both_ways_and_the_psi() -> None:
    healthy = check(_result(1.3, 0.4), 20, 3.0, 1.0)
    assert healthy.judged and healthy.skipped == ""
    with pytest.raises(NewOrderValueError) as info:
        check(_result(100.0, 11.2), 20, 3.0, 1.0)
    message = str(info.value)
    assert info.value.exit_code == 13 and "\n" not in message
    assert message.startswith(f"the 40 orders after {SINCE} are valued unlike the 9,000 of")
    assert "median order value 4,000.00 against 40.00 (100x" in message
    assert "nightly.max_new_order_median_ratio=3.0" in message
    assert "order value PSI 11.20 (above nightly.max_new_order_psi=1.0)" in message
    assert "if the change is real, rerun with --accept-drift" in message  # not a params copy
    with pytest.raises(NewOrderValueError, match=r"\(0\.01x, beyond"):  # /100: also wrong
        check(_result(0.01, 0.2), 20, 3.0, 1.0)
    with pytest.raises(NewOrderValueError, match=r"PSI 1\.50") as info:  # shape, not median
        check(_result(1.2, 1.5), 20, 3.0, 1.0)
    assert "median order value" not in str(info.value)


def test_bins_shrink_on_small_days(tmp_path: Path) -> None:
    assert quantile_cuts(10, 5) == quantile_cuts(10, 39) == []  # only the 1 % tails
    assert quantile_cuts(10, 40) == [0.5]
    assert quantile_cuts(10, 80) == [0.25, 0.5, 0.75]
    assert len(quantile_cuts(10, 5_000)) == 9
    # 20 new orders: one bin between the tails (1.99 and 99.01), shares 1, 98 and 1 %.
    new = [(f"n{i}", f"o{i}", "2026-09-01 12:00:00", 1_000.0) for i in range(20)]
    result = measure(_write(tmp_path / "tx.parquet", _history() + new), SINCE, 365, 10)
    assert result.psi == pytest.approx(_psi([0.01, 0.98, 0.01], [0, 0, 1]), abs=1e-4)
