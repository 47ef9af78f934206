"""BTYD features count purchase days, not orders (the standard BG/NBD and Pareto/NBD setup)."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churn.features.btyd_features import (
    BTYD_FEATURES,
    CutoffFitter,
    _threshold,
    fit_samples,
    sampled_ids,
)


def _histories(n: int, seed: int) -> pd.DataFrame:
    """Snapshot rows of one cutoff for n customers with day-level purchase histories."""
    rng = np.random.default_rng(seed)
    first = rng.integers(30, 700, n)  # days from the first purchase day to the cutoff
    lifetime = np.minimum(rng.exponential(rng.gamma(0.7, 300, n)), first)  # Pareto/NBD
    days = 1 + rng.poisson(rng.gamma(0.6, 1 / 40, n) * lifetime)
    bought = np.floor(lifetime * rng.beta(np.maximum(days - 1, 1), 1)).astype(int)
    last = np.where(days > 1, first - bought, first)  # days since the last purchase day
    return pd.DataFrame(
        {
            "customer_id": [f"c{seed}_{i}" for i in range(n)],
            "cutoff": pd.Timestamp("2025-01-01"),
            "n_purchase_days": days,
            "n_orders": days,
            "revenue": days * rng.lognormal(3.5, 0.5, n),
            "tenure_days": first.astype(float),
            "recency_days": last.astype(float),
        }
    )


def test_several_orders_on_one_day_are_one_purchase() -> None:
    """A shop whose customers place five orders on each purchase day gets the BTYD fits and
    features of the same shop with one order a day: only purchase days count."""
    one = _histories(800, seed=1)
    busy = one.assign(n_orders=one["n_orders"] * 5)
    features = [CutoffFitter(90).features(shop) for shop in (one, busy)]
    pd.testing.assert_frame_equal(features[0], features[1])
    fitted = CutoffFitter(90).fit(one)
    assert fitted.bg is not None and fitted.pnbd is not None
    assert features[0][list(BTYD_FEATURES)].notna().all().all()


def test_timestamps_within_a_day_do_not_change_the_histories() -> None:
    """t_x and T are whole days from the first purchase day: a purchase at 18:00 rather than
    at midnight (tenure and recency a fraction of a day shorter) is the same history."""
    dated = _histories(800, seed=2)
    timed = dated.assign(
        tenure_days=dated["tenure_days"] - 0.75, recency_days=dated["recency_days"] - 0.25
    )
    features = [CutoffFitter(90).features(shop) for shop in (dated, timed)]
    pd.testing.assert_frame_equal(features[0], features[1])


def _threshold_by_unique(hashes: np.ndarray, n: int) -> int | None:
    """The definition: the n-th smallest of the distinct hashes (None: n or fewer)."""
    distinct = pd.unique(hashes)
    return None if len(distinct) <= n else int(np.partition(distinct, n - 1)[n - 1])


@settings(max_examples=200, deadline=None)
@given(
    hashes=st.lists(st.integers(0, 30), max_size=40).map(lambda v: np.array(v, dtype=np.uint64)),
    n=st.integers(1, 30),
)
def test_the_sample_threshold_is_the_nth_smallest_distinct_hash(hashes: np.ndarray, n: int) -> None:
    """The partition shortcut gives the definition's answer, ties among the smallest too
    (small hash values make ties common here; real 64-bit hashes of distinct ids rarely tie)."""
    assert _threshold(hashes, n) == _threshold_by_unique(hashes, n)


@pytest.mark.parametrize(("n_fit", "n_pnbd"), [(50, 7), (50, 80), (500, 7), (None, 7)])
def test_both_fit_samples_from_one_hashing_are_the_sampled_ids(
    n_fit: int | None, n_pnbd: int
) -> None:
    ids = pd.Series([f"C{i:05d}" for i in range(300)])
    sample, pnbd = fit_samples(ids, n_fit, n_pnbd)
    expected_pnbd = sampled_ids(ids, n_pnbd if n_fit is None else min(n_pnbd, n_fit))
    for got, expected in ((sample, sampled_ids(ids, n_fit)), (pnbd, expected_pnbd)):
        assert (got is None) == (expected is None)
        if got is not None and expected is not None:
            assert got.equals(expected)


def test_pareto_nbd_is_predicted_beside_bg_nbd_with_the_same_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """predict evaluates Pareto/NBD on a second thread while BG/NBD runs on the caller's
    (issue 20: the second core idled), and every column is the models' own answer."""
    rows = _histories(800, seed=3)
    fitted = CutoffFitter(90).fit(rows)
    assert fitted.bg is not None and fitted.pnbd is not None
    threads: dict[str, int] = {}
    for name, model in (("bg", fitted.bg), ("pnbd", fitted.pnbd)):
        p_alive = model.p_alive

        def spy(*args: object, _name: str = name, _f: object = p_alive) -> object:
            threads[_name] = threading.get_ident()
            return _f(*args)  # type: ignore[operator]

        monkeypatch.setattr(model, "p_alive", spy)
    predicted = fitted.predict(rows)
    assert threads["bg"] == threading.get_ident() != threads["pnbd"]
    monkeypatch.undo()
    x = rows["n_purchase_days"].to_numpy(float) - 1
    age_days = np.ceil(rows["tenure_days"].to_numpy())
    age = age_days / 7
    t_x = np.clip((age_days - np.ceil(rows["recency_days"].to_numpy())) / 7, 0, age)
    # One evaluation per distinct history, as predict does (Pareto/NBD's series length
    # follows the batch, so per-row calls may differ in the last bit).
    distinct, index = np.unique(np.column_stack([x, t_x, age]), axis=0, return_inverse=True)
    history, h = tuple(distinct.T), 90 / 7
    for column, want in (
        ("btyd_p_alive", fitted.bg.p_alive(*history)),
        ("btyd_p_no_purchase", fitted.bg.p_no_purchase(h, *history)),
        ("pnbd_p_alive", fitted.pnbd.p_alive(*history)),
        ("pnbd_p_no_purchase", fitted.pnbd.p_no_purchase(h, *history)),
    ):
        np.testing.assert_array_equal(predicted[column].to_numpy(), want[index.ravel()])
