"""Point-in-time snapshots agree with a slow, obvious pandas oracle and never look ahead.

The oracle below is written straight from DESIGN.md "Definitions" and the feature
docstrings, one customer and one cutoff at a time, with pandas timestamps and
timedeltas instead of epoch arithmetic, so it shares no code or tricks with
``churn.features.rfm``. Hypothesis feeds both small random shops whose timestamps
often land exactly on the boundaries that matter (the cutoff instant, cutoff +
horizon, window edges, the active-window edge, as_of).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ibis.backends import BaseBackend

from churn.config import FeaturesConfig, SnapshotConfig
from churn.errors import UserError
from churn.features.backend import connect
from churn.features.snapshots import build_calendar, default_as_of, snapshot_expr

ONE_DAY = pd.Timedelta(days=1)
ONE_SECOND = pd.Timedelta(seconds=1)
BASE = pd.Timestamp("2023-01-01")
SPAN_SECONDS = 760 * 86_400  # ~2 years, reaching a little past the latest as_of
# Peak of the Christmas season as a day of the year (rfm.py uses the same anchor).
CHRISTMAS_DOY = 359
# Line countries cycle through these (None: unknown), so lines of one order, and
# same-instant orders, often disagree.
COUNTRIES = ("FR", None, "DE", "AT", "DE")

TRANSACTION_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("order_id", pa.string()),
        ("ts", pa.timestamp("us")),
        ("amount", pa.float64()),
        ("country", pa.string()),
    ]
)

FAST = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def con() -> Iterator[BaseBackend]:
    backend = connect("duckdb")
    yield backend
    backend.disconnect()


def transactions_frame(rows: Sequence[tuple[str, str | None, pd.Timestamp, float]]) -> pd.DataFrame:
    """A canonical transactions frame (the ingest output's columns and types)."""
    frame = pd.DataFrame(
        {
            "customer_id": pd.Series([r[0] for r in rows], dtype=object),
            "order_id": pd.Series([r[1] for r in rows], dtype=object),
            "ts": pd.Series([r[2] for r in rows], dtype="datetime64[us]"),
            "amount": pd.Series([r[3] for r in rows], dtype="float64"),
        }
    )
    frame["country"] = pd.Series([COUNTRIES[i % len(COUNTRIES)] for i in range(len(rows))])
    return frame


def cutoffs_frame(cutoffs: Sequence[dt.date]) -> pd.DataFrame:
    splits = ["train"] * (len(cutoffs) - 2) + ["valid", "test"]
    return pd.DataFrame({"cutoff": list(cutoffs), "split": splits[-len(cutoffs) :]})


def run_snapshots(
    con: BaseBackend,
    transactions: pd.DataFrame,
    cutoffs: pd.DataFrame,
    as_of: dt.date,
    snapshots: SnapshotConfig,
    features: FeaturesConfig,
    *,
    with_label: bool = True,
) -> pd.DataFrame:
    """The real code, executed on the shared DuckDB connection."""
    arrow = pa.Table.from_pandas(transactions, schema=TRANSACTION_SCHEMA, preserve_index=False)
    table = ibis.memtable(arrow)
    expr = snapshot_expr(table, cutoffs, as_of, snapshots, features, with_label=with_label)
    return con.to_pandas(expr)


@dataclass(frozen=True)
class Order:
    ts: pd.Timestamp
    amount: float
    country: str | None  # the smallest known country of its lines

    @property
    def is_purchase(self) -> bool:
        return self.amount > 0


def oracle_orders(transactions: pd.DataFrame, as_of: dt.date) -> dict[str, list[Order]]:
    """Lines before as_of, grouped per customer into orders: by order_id and day, or by ts."""
    lines: dict[tuple[str, tuple[object, ...]], list[tuple[pd.Timestamp, float, object]]] = {}
    for row in transactions.itertuples(index=False):
        if pd.Timestamp(row.ts) >= pd.Timestamp(as_of):
            continue
        day = pd.Timestamp(row.ts).date()
        order_key = ("guest", row.ts) if pd.isna(row.order_id) else ("order", row.order_id, day)
        line = (row.ts, row.amount, row.country)
        lines.setdefault((row.customer_id, order_key), []).append(line)
    orders: dict[str, list[Order]] = {}
    for (customer, _), group in lines.items():
        ts = min(pd.Timestamp(t) for t, _, _ in group)
        known = [str(c) for _, _, c in group if not pd.isna(c)]
        order = Order(ts, sum(a for _, a, _ in group), min(known) if known else None)
        orders.setdefault(customer, []).append(order)
    return orders


def first_country(bought: list[Order]) -> str | None:
    """The country of the first purchase; same-instant first orders: the smallest known one."""
    first = min(o.ts for o in bought)
    known = [o.country for o in bought if o.ts == first and o.country is not None]
    return min(known) if known else None


def oracle_snapshots(
    transactions: pd.DataFrame,
    cutoffs: pd.DataFrame,
    as_of: dt.date,
    snapshots: SnapshotConfig,
    features: FeaturesConfig,
    *,
    with_label: bool = True,
) -> pd.DataFrame:
    """Every feature computed directly, one (cutoff, customer) at a time."""
    orders = oracle_orders(transactions, as_of)
    horizon = pd.Timedelta(days=snapshots.horizon_days)
    active = pd.Timedelta(days=snapshots.active_window_days)
    records: list[dict[str, object]] = []
    for cutoff_date, split in zip(cutoffs["cutoff"], cutoffs["split"], strict=True):
        c = pd.Timestamp(cutoff_date)
        for customer in sorted(orders):
            history = [o for o in orders[customer] if o.ts < c]
            bought = sorted((o for o in history if o.is_purchase), key=lambda o: o.ts)
            if not bought or not bought[-1].ts >= c - active:
                continue  # not in the population at c

            def age(o: Order, c: pd.Timestamp = c) -> pd.Timedelta:
                return c - o.ts

            def n_bought(lo_days: float, hi_days: float, bought: list[Order] = bought) -> int:
                lo, hi = pd.Timedelta(days=lo_days), pd.Timedelta(days=hi_days)
                return sum(1 for o in bought if lo < age(o) <= hi)

            n_orders = len(bought)
            revenue = sum(o.amount for o in history)
            days = np.array([(o.ts - BASE) / ONE_DAY for o in bought])
            gaps = np.diff(days)
            recency = (c - bought[-1].ts) / ONE_DAY
            mean_gap = float(gaps.mean()) if gaps.size else math.nan
            n_recent_90 = n_bought(0, 90)
            n_prev_90 = n_bought(90, 180)
            n_holiday = sum(1 for o in bought if o.ts.month in (11, 12))
            n_returns = sum(1 for o in history if not o.is_purchase)
            days_to_christmas = (CHRISTMAS_DOY - c.day_of_year) % 365
            record: dict[str, object] = {
                "customer_id": customer,
                "cutoff": c,
                "split": split,
                "n_orders": n_orders,
                "n_purchase_days": len({o.ts.date() for o in bought}),
                "revenue": revenue,
                "max_order_value": max(o.amount for o in bought),
                "n_orders_prev_90d": n_prev_90,
                "n_orders_last_year_horizon": n_bought(365 - snapshots.horizon_days, 365),
                "n_holiday_orders": n_holiday,
                "n_returns": n_returns,
            }
            for w in features.windows_days:
                window = pd.Timedelta(days=w)
                record[f"n_orders_{w}d"] = sum(1 for o in bought if age(o) <= window)
                record[f"revenue_{w}d"] = sum(o.amount for o in history if age(o) <= window)
            record |= {
                "recency_days": recency,
                "tenure_days": (c - bought[0].ts) / ONE_DAY,
                "avg_order_value": revenue / n_orders,
                "mean_gap_days": mean_gap,
                # A spread needs at least two gaps; one gap has no variability to speak of.
                "gap_sd_days": float(np.std(gaps, ddof=0)) if gaps.size >= 2 else math.nan,
                "overdue_ratio": recency / max(mean_gap, 1.0) if gaps.size else math.nan,
                "trend_90d": math.log((n_recent_90 + 1) / (n_prev_90 + 1)),
                "holiday_order_share": n_holiday / n_orders,
                "return_rate": n_returns / n_orders,
                "days_to_christmas": days_to_christmas,
                "christmas_in_horizon": int(days_to_christmas < snapshots.horizon_days),
                "country": first_country(bought),
            }
            if with_label:
                retained = any(o.is_purchase and c <= o.ts < c + horizon for o in orders[customer])
                record["churned"] = 0 if retained else 1
            records.append(record)
    return pd.DataFrame.from_records(records)


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame.reset_index(drop=True)
    keyed = frame.assign(cutoff=pd.to_datetime(frame["cutoff"]))
    return keyed.sort_values(["cutoff", "customer_id"]).reset_index(drop=True)


def assert_same_snapshots(real: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same rows, same columns, equal values (floats to 1e-6, NaN equal to NaN)."""
    real, expected = _sorted(real), _sorted(expected)
    real_keys = list(zip(real["cutoff"], real["customer_id"], strict=True))
    if expected.empty:
        assert real.empty, f"expected no rows, got {real_keys}"
        return
    assert list(real.columns) == list(expected.columns)
    expected_keys = list(zip(expected["cutoff"], expected["customer_id"], strict=True))
    assert real_keys == expected_keys
    for column in expected.columns:
        got, want = real[column], expected[column]
        if column in ("customer_id", "split"):
            assert got.astype(str).tolist() == want.astype(str).tolist(), column
        elif column == "cutoff":
            assert (pd.to_datetime(got) == want).all(), column
        elif column == "country":
            known = [[None if pd.isna(v) else str(v) for v in col] for col in (got, want)]
            assert known[0] == known[1], column
        else:
            got_f = got.to_numpy(dtype="float64")
            want_f = want.to_numpy(dtype="float64")
            close = np.isclose(got_f, want_f, rtol=1e-6, atol=1e-6, equal_nan=True)
            if not close.all():
                bad = np.flatnonzero(~close)
                detail = [(real_keys[i], got_f[i], want_f[i]) for i in bad[:5]]
                raise AssertionError(f"{column}: (key, real, oracle) {detail}")


# --------------------------------------------------------------------------- strategies


@dataclass(frozen=True)
class Shop:
    transactions: pd.DataFrame
    cutoffs: pd.DataFrame
    as_of: dt.date
    snapshots: SnapshotConfig
    features: FeaturesConfig


# Quarter units keep every sum exact in binary floating point, so whether an order's
# lines net to > 0 never depends on the order in which an engine adds them.
# A few fixed amounts make lines that cancel out (an order netting to exactly 0).
amounts = st.one_of(
    st.integers(min_value=-400, max_value=2_000).map(lambda q: q / 4),
    st.sampled_from([0.0, 10.0, -10.0]),
)
order_ids = st.one_of(st.none(), st.sampled_from(["o1", "o2", "o3", "o4"]))
# What follows a line: nothing, another line of its order, or another order within hours.
followers = st.sampled_from(["none", "same order", "soon after"])


def boundary_instants(
    cutoffs: Sequence[pd.Timestamp],
    as_of: dt.date,
    snapshots: SnapshotConfig,
    features: FeaturesConfig,
) -> list[pd.Timestamp]:
    """Instants exactly on (and one second either side of) every edge the code tests."""
    horizon = snapshots.horizon_days
    edges_days = [0, horizon, -snapshots.active_window_days, -90, -180, -365, horizon - 365]
    edges_days += [-w for w in features.windows_days]
    instants = [pd.Timestamp(as_of), pd.Timestamp(as_of) - ONE_SECOND]
    for c in cutoffs:
        for d in edges_days:
            edge = c + pd.Timedelta(days=d)
            instants += [edge, edge - ONE_SECOND, edge + ONE_SECOND]
    return [t for t in instants if t >= BASE]


@st.composite
def configs(draw: st.DrawFn) -> tuple[SnapshotConfig, FeaturesConfig]:
    snapshots = SnapshotConfig(
        horizon_days=draw(st.sampled_from([30, 90])),
        active_window_days=draw(st.sampled_from([60, 365])),
    )
    windows = draw(st.sampled_from([(30, 90, 180, 365), (7, 45, 400)]))
    return snapshots, FeaturesConfig(windows_days=windows)


@st.composite
def shops(draw: st.DrawFn, max_cutoffs: int = 3) -> Shop:
    snapshots, features = draw(configs())
    cutoff_days = draw(
        st.lists(st.integers(60, 700), min_size=1, max_size=max_cutoffs, unique=True)
    )
    cutoffs = sorted(BASE + pd.Timedelta(days=d) for d in cutoff_days)
    # as_of = c + horizon (the test cutoff's label window just closed) is the edge case.
    as_of_days = draw(st.one_of(st.just(snapshots.horizon_days), st.integers(1, 120)))
    as_of = (cutoffs[-1] + pd.Timedelta(days=as_of_days)).date()
    near = int(1.5 * snapshots.horizon_days) * 86_400
    key_instants = [t for c in cutoffs for t in (c, c + pd.Timedelta(days=snapshots.horizon_days))]
    instants = st.one_of(
        st.integers(0, SPAN_SECONDS).map(lambda s: BASE + pd.Timedelta(seconds=s)),
        st.tuples(st.sampled_from(cutoffs), st.integers(-near, near)).map(
            lambda p: p[0] + pd.Timedelta(seconds=p[1])
        ),
        st.sampled_from(key_instants),
        st.sampled_from(boundary_instants(cutoffs, as_of, snapshots, features)),
    )
    rows: list[tuple[str, str | None, pd.Timestamp, float]] = []
    horizon = pd.Timedelta(days=snapshots.horizon_days)
    active_s = snapshots.active_window_days * 86_400
    for i in range(draw(st.integers(1, 6))):
        lines = draw(st.lists(st.tuples(instants, order_ids, amounts, followers), max_size=15))
        if (c := draw(st.one_of(st.none(), st.sampled_from(cutoffs)))) is not None:
            # A customer active at c whose next purchase sits on a label-window edge.
            before = c - pd.Timedelta(seconds=draw(st.integers(1, active_s - 1)))
            lines.append((before, None, 5.0, "none"))
            edge = draw(
                st.sampled_from(
                    [c, c + horizon - ONE_DAY, c + horizon - ONE_SECOND, c + horizon, c - ONE_DAY]
                )
            )
            lines.append((edge, None, 5.0, "none"))
        for ts, order_id, amount, follower in lines:
            rows.append((f"c{i}", order_id, ts, amount))
            if follower == "same order":  # a second line of the same order, same instant
                rows.append((f"c{i}", order_id, ts, draw(amounts)))
            elif follower == "soon after":  # another order the same day: a gap under a day
                later = ts + pd.Timedelta(seconds=draw(st.integers(0, 6 * 3600)))
                rows.append((f"c{i}", draw(order_ids), later, draw(amounts)))
    return Shop(
        transactions=transactions_frame(rows),
        cutoffs=cutoffs_frame([c.date() for c in cutoffs]),
        as_of=as_of,
        snapshots=snapshots,
        features=features,
    )


# --------------------------------------------------------------------------- oracle


@FAST
@given(shop=shops())
def test_snapshots_match_the_oracle(con: BaseBackend, shop: Shop) -> None:
    args = (shop.transactions, shop.cutoffs, shop.as_of, shop.snapshots, shop.features)
    real = run_snapshots(con, *args)
    assert_same_snapshots(real, oracle_snapshots(*args))


def test_unlabelled_snapshots_are_the_labelled_ones_without_the_label(
    con: BaseBackend,
) -> None:
    rows = [
        ("a", "1", pd.Timestamp("2024-01-02 10:00"), 5.0),
        ("a", "2", pd.Timestamp("2024-02-20 10:00"), 7.0),
        ("b", None, pd.Timestamp("2023-12-24 09:00"), 3.0),
        ("b", None, pd.Timestamp("2024-03-01 09:00"), 3.0),
    ]
    args = (
        transactions_frame(rows),
        cutoffs_frame([dt.date(2024, 1, 15), dt.date(2024, 3, 1)]),
        dt.date(2024, 6, 1),
        SnapshotConfig(),
        FeaturesConfig(),
    )
    labelled = run_snapshots(con, *args, with_label=True)
    unlabelled = run_snapshots(con, *args, with_label=False)
    assert "churned" not in unlabelled.columns
    assert len(labelled) == 4
    assert_same_snapshots(unlabelled, labelled.drop(columns="churned"))


def test_counts_come_back_as_integers(con: BaseBackend) -> None:
    tx = transactions_frame([("a", "1", pd.Timestamp("2024-01-02 10:00"), 5.0)])
    cutoffs = cutoffs_frame([dt.date(2024, 2, 1)])
    real = run_snapshots(con, tx, cutoffs, dt.date(2024, 6, 1), SnapshotConfig(), FeaturesConfig())
    counts = [c for c in real.columns if c.startswith("n_")] + ["churned", "days_to_christmas"]
    assert {c: real[c].dtype.kind for c in counts} == dict.fromkeys(counts, "i")


# --------------------------------------------------------------------------- leakage


@st.composite
def shops_with_late_lines(draw: st.DrawFn) -> tuple[Shop, pd.DataFrame]:
    """A shop with one cutoff, plus extra lines at or after it and before as_of."""
    shop = draw(shops(max_cutoffs=1))
    c = pd.Timestamp(shop.cutoffs["cutoff"].iloc[0])
    last_second = int((pd.Timestamp(shop.as_of) - c) / ONE_SECOND) - 1
    late_instants = st.one_of(
        st.integers(0, last_second).map(lambda s: c + pd.Timedelta(seconds=s)),
        st.sampled_from([c, c + ONE_SECOND, pd.Timestamp(shop.as_of) - ONE_SECOND]),
    )
    # Late lines start new orders: a line joining an order begun before the cutoff is the
    # known gap documented by test_a_late_line_of_an_earlier_order_does_not_leak.
    late_orders = st.one_of(st.none(), st.sampled_from(["late1", "late2"]))
    late = draw(
        st.lists(
            st.tuples(
                st.sampled_from([f"c{i}" for i in range(8)]), late_orders, late_instants, amounts
            ),
            min_size=1,
            max_size=20,
        )
    )
    return shop, transactions_frame([(cid, oid, ts, amt) for cid, oid, ts, amt in late])


def untag(frame: pd.DataFrame, tag: str) -> pd.DataFrame:
    """The rows of customers whose id starts with ``tag``, with the tag removed."""
    ids = frame["customer_id"].astype(str)
    mine = ids.str.startswith(tag)
    return frame[mine].assign(customer_id=ids[mine].str.removeprefix(tag))


@settings(FAST, max_examples=30)
@given(case=shops_with_late_lines())
def test_features_ignore_transactions_after_the_cutoff(
    con: BaseBackend, case: tuple[Shop, pd.DataFrame]
) -> None:
    shop, late = case
    # Customers never see each other's rows, so one query holds both versions of the
    # shop side by side: "before|" without the late lines and "after|" with them.
    both = pd.concat([shop.transactions, late], ignore_index=True)
    tagged = pd.concat(
        [
            shop.transactions.assign(customer_id="before|" + shop.transactions["customer_id"]),
            both.assign(customer_id="after|" + both["customer_id"]),
        ],
        ignore_index=True,
    )
    real = run_snapshots(con, tagged, shop.cutoffs, shop.as_of, shop.snapshots, shop.features)
    real = real.drop(columns="churned")
    assert_same_snapshots(untag(real, "after|"), untag(real, "before|"))


def test_a_late_line_of_an_earlier_order_does_not_leak(con: BaseBackend) -> None:
    cutoff = dt.date(2024, 3, 1)
    early = [("a", "o1", pd.Timestamp("2024-02-20 10:00"), 30.0)]
    late = [("a", "o1", pd.Timestamp("2024-03-05 10:00"), -30.0)]  # cancelled after c
    config = (cutoffs_frame([cutoff]), dt.date(2024, 9, 1), SnapshotConfig(), FeaturesConfig())
    before = run_snapshots(con, transactions_frame(early), *config).drop(columns="churned")
    after = run_snapshots(con, transactions_frame(early + late), *config).drop(columns="churned")
    assert_same_snapshots(after, before)


# --------------------------------------------------------------------------- label edges

CUTOFF = dt.date(2024, 3, 1)
C = pd.Timestamp(CUTOFF)
HORIZON = SnapshotConfig().horizon_days
AS_OF = dt.date(2024, 12, 1)


def snapshot_of(
    con: BaseBackend,
    rows: Sequence[tuple[str, str | None, pd.Timestamp, float]],
    cutoff: dt.date = CUTOFF,
    as_of: dt.date = AS_OF,
) -> pd.DataFrame:
    """Snapshots at one cutoff with default configs, indexed by customer."""
    cutoffs = cutoffs_frame([cutoff])
    real = run_snapshots(
        con, transactions_frame(rows), cutoffs, as_of, SnapshotConfig(), FeaturesConfig()
    )
    return real.set_index("customer_id")


def test_a_purchase_at_the_cutoff_instant_is_future_not_history(con: BaseBackend) -> None:
    """A cutoff is a midnight and windows are [start, end): day c belongs to the label."""
    out = snapshot_of(con, [("a", "1", C - ONE_DAY, 10.0), ("a", "2", C, 10.0)])
    assert out.loc["a", "n_orders"] == 1
    assert out.loc["a", "recency_days"] == 1.0
    assert out.loc["a", "churned"] == 0  # it retains the customer
    assert snapshot_of(con, [("b", "1", C, 10.0)]).empty  # nothing before c: not active


def test_a_purchase_one_second_before_cutoff_plus_horizon_retains(con: BaseBackend) -> None:
    late = C + pd.Timedelta(days=HORIZON) - ONE_SECOND
    rows = [("a", "1", C - ONE_DAY, 10.0), ("a", "2", late, 10.0)]
    assert snapshot_of(con, rows).loc["a", "churned"] == 0


def test_a_purchase_at_cutoff_plus_horizon_does_not_retain(con: BaseBackend) -> None:
    rows = [("a", "1", C - ONE_DAY, 10.0), ("a", "2", C + pd.Timedelta(days=HORIZON), 10.0)]
    assert snapshot_of(con, rows).loc["a", "churned"] == 1


@pytest.mark.parametrize("time_of_day", ["00:00:00", "00:00:01", "10:30:00", "23:59:59"])
def test_date_only_and_timestamped_logs_agree_on_every_edge(
    con: BaseBackend, time_of_day: str
) -> None:
    """With as_of = c + horizon (the test cutoff), a purchase dated on the label window's
    last day retains the customer, whatever its time of day (midnight = a date-only log);
    one dated as_of is ignored, and one dated c is in the label window, not the history."""
    as_of = (C + pd.Timedelta(days=HORIZON)).date()
    last_day = pd.Timestamp(as_of) - ONE_DAY
    at = pd.Timedelta(time_of_day)
    rows = [
        ("last_day", "1", C - ONE_DAY + at, 10.0),
        ("last_day", "2", last_day + at, 10.0),
        ("as_of_day", "3", C - ONE_DAY + at, 10.0),
        ("as_of_day", "4", pd.Timestamp(as_of) + at, 10.0),
        ("cutoff_day", "5", C - 2 * ONE_DAY + at, 10.0),
        ("cutoff_day", "6", C + at, 10.0),
    ]
    out = snapshot_of(con, rows, as_of=as_of)
    assert out["churned"].to_dict() == {"as_of_day": 1, "cutoff_day": 0, "last_day": 0}
    assert out["n_orders"].to_dict() == {"as_of_day": 1, "cutoff_day": 1, "last_day": 1}
    assert out.loc["cutoff_day", "recency_days"] == pytest.approx((2 * ONE_DAY - at) / ONE_DAY)


def test_a_return_in_the_label_window_does_not_retain(con: BaseBackend) -> None:
    rows = [("a", "1", C - ONE_DAY, 10.0), ("a", "2", C + ONE_DAY, -10.0)]
    assert snapshot_of(con, rows).loc["a", "churned"] == 1


def test_transactions_at_or_after_as_of_are_ignored(con: BaseBackend) -> None:
    as_of = (C + pd.Timedelta(days=30)).date()  # inside the label window
    rows = [
        ("a", "1", C - ONE_DAY, 10.0),
        ("a", "2", pd.Timestamp(as_of), 10.0),  # exactly at as_of: ignored
        ("b", "3", C - ONE_DAY, 10.0),
        ("b", "4", pd.Timestamp(as_of) - ONE_SECOND, 10.0),  # just before: counts
    ]
    out = snapshot_of(con, rows, as_of=as_of)
    assert out.loc["a", "churned"] == 1
    assert out.loc["b", "churned"] == 0
    # Scoring (cutoff = as_of): a customer whose only purchase is at as_of does not exist yet.
    scoring = snapshot_of(con, [("a", "2", pd.Timestamp(as_of), 10.0)], cutoff=as_of, as_of=as_of)
    assert scoring.empty


def test_the_population_edge_is_inclusive_at_its_start(con: BaseBackend) -> None:
    active = pd.Timedelta(days=SnapshotConfig().active_window_days)
    rows = [("a", "1", C - active - ONE_SECOND, 10.0), ("b", "2", C - active, 10.0)]
    assert list(snapshot_of(con, rows).index) == ["b"]


def test_purchase_days_count_days_not_orders(con: BaseBackend) -> None:
    """Three orders on one day and one on another are two purchase days (BG/NBD's x + 1)."""
    day = C - 10 * ONE_DAY
    rows = [
        ("a", "1", day + pd.Timedelta(hours=9), 10.0),
        ("a", "2", day + pd.Timedelta(hours=12), 10.0),
        ("a", None, day + pd.Timedelta(hours=18), 10.0),
        ("a", "3", day + ONE_DAY, 10.0),
        ("a", "4", day + 2 * ONE_DAY, -10.0),  # a return is not a purchase day
    ]
    out = snapshot_of(con, rows)
    assert (out.loc["a", "n_orders"], out.loc["a", "n_purchase_days"]) == (4, 2)


def test_sub_second_timestamps_before_the_cutoff_are_history(con: BaseBackend) -> None:
    """ts = c - 0.4 s is before c: history; c + 0.4 s is in [c, c + horizon)."""
    eps = pd.Timedelta(milliseconds=400)
    horizon_end = C + pd.Timedelta(days=HORIZON)
    rows = [
        ("a", "1", C - ONE_DAY, 10.0),
        ("a", "2", C + eps, 99.0),
        ("b", "3", C - eps, 10.0),
        ("b", "4", horizon_end - eps, 99.0),  # just inside the label window
        ("c", "5", C + eps, 99.0),  # nothing before c: not in the population
    ]
    out = snapshot_of(con, rows)
    assert sorted(out.index) == ["a", "b"]
    assert out.loc["a", "n_orders"] == 1
    assert out.loc["a", "revenue"] == 10.0
    assert out.loc["a", "churned"] == 0
    assert out.loc["b", "churned"] == 0
    assert out.loc["b", "recency_days"] == pytest.approx(0.4 / 86_400, abs=1.5e-5)


# --------------------------------------------------------------------------- feature edges


@pytest.mark.parametrize(
    ("cutoff", "days_to_christmas", "in_horizon"),
    [
        (dt.date(2023, 12, 25), 0, 1),
        (dt.date(2023, 12, 26), 364, 0),
        (dt.date(2023, 9, 26), 90, 0),  # exactly one default horizon away: outside
        (dt.date(2023, 9, 27), 89, 1),
    ],
)
def test_christmas_distance_and_horizon_edge(
    con: BaseBackend, cutoff: dt.date, days_to_christmas: int, in_horizon: int
) -> None:
    out = snapshot_of(con, [("a", "1", pd.Timestamp("2023-09-01 12:00"), 10.0)], cutoff=cutoff)
    assert out.loc["a", "days_to_christmas"] == days_to_christmas
    assert out.loc["a", "christmas_in_horizon"] == in_horizon


def test_orders_placed_minutes_apart_use_a_one_day_floor_for_overdue(con: BaseBackend) -> None:
    t = C - pd.Timedelta(days=10)
    rows = [("a", "1", t, 10.0), ("a", "2", t + pd.Timedelta(minutes=30), 10.0)]
    out = snapshot_of(con, rows)
    recency = (C - t - pd.Timedelta(minutes=30)) / ONE_DAY
    assert out.loc["a", "mean_gap_days"] == pytest.approx(30 / 1440)
    assert out.loc["a", "overdue_ratio"] == pytest.approx(recency / 1.0)


# --------------------------------------------------------------------------- calendar

FIRST = dt.datetime(2022, 1, 10, 8, 30)
LAST = dt.datetime(2024, 11, 30, 17, 45)


@FAST
@given(
    horizon=st.integers(1, 120),
    every=st.integers(1, 60),
    n_train=st.integers(1, 15),
    min_history=st.integers(0, 200),
    as_of_offset=st.integers(-200, 10),
)
def test_calendar_places_cutoffs_out_of_time(
    horizon: int, every: int, n_train: int, min_history: int, as_of_offset: int
) -> None:
    as_of = LAST.date() + dt.timedelta(days=as_of_offset)
    config = SnapshotConfig(
        as_of=as_of,
        horizon_days=horizon,
        cutoff_every_days=every,
        n_train_cutoffs=n_train,
        min_history_days=min_history,
    )
    h = dt.timedelta(days=horizon)
    earliest = FIRST.date() + dt.timedelta(days=min_history)
    try:
        cal = build_calendar(config, FIRST, LAST)
    except UserError:
        assert as_of - 3 * h < earliest  # not even the latest training cutoff fits
        return
    assert cal.as_of == as_of
    assert cal.test_cutoff == as_of - h
    assert cal.valid_cutoff == cal.test_cutoff - h
    train = sorted(cal.train_cutoffs)
    assert train[-1] + h == cal.valid_cutoff
    assert all(c + h <= cal.valid_cutoff for c in train)
    assert all(b - a == dt.timedelta(days=every) for a, b in itertools.pairwise(train))
    assert all(c >= earliest for c in train)
    expected_n = min(n_train, (train[-1] - earliest).days // every + 1)
    assert len(train) == expected_n
    assert list(cal.labelled()["split"]) == ["train"] * len(train) + ["valid", "test"]
    assert list(cal.labelled()["cutoff"]) == [*train, cal.valid_cutoff, cal.test_cutoff]


def test_calendar_with_defaults() -> None:
    cal = build_calendar(SnapshotConfig(), FIRST, LAST)
    assert cal.as_of == dt.date(2024, 12, 1)
    assert cal.test_cutoff == dt.date(2024, 12, 1) - dt.timedelta(days=90)
    assert cal.valid_cutoff == cal.test_cutoff - dt.timedelta(days=90)
    assert len(cal.train_cutoffs) == 12
    assert max(cal.train_cutoffs) == cal.valid_cutoff - dt.timedelta(days=90)


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        (dt.datetime(2024, 11, 30, 0, 0, 0), dt.date(2024, 12, 1)),
        (dt.datetime(2024, 11, 30, 23, 59, 59), dt.date(2024, 12, 1)),
        (dt.datetime(2024, 12, 31, 12, 0), dt.date(2025, 1, 1)),
    ],
)
def test_default_as_of_is_the_day_after_the_last_transaction(
    last: dt.datetime, expected: dt.date
) -> None:
    assert default_as_of(last) == expected
    assert build_calendar(SnapshotConfig(), FIRST, last).as_of == expected


def test_too_short_a_history_is_a_user_error_naming_the_snapshot_keys() -> None:
    first = dt.datetime(2024, 6, 1)
    with pytest.raises(UserError, match="snapshots"):
        build_calendar(SnapshotConfig(), first, dt.datetime(2024, 11, 30))
