"""The nightly guards on their own: PSI against a hand-computed value, and each refusal."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from churn.data.ingest_report import IngestReport
from churn.nightly.guards import (
    DistributionShiftError,
    DriftAcceptance,
    NoNewDataError,
    PsiResult,
    QuarantineError,
    check_new_data,
    check_psi,
    check_quarantine,
    distribution_psi,
    psi,
)
from churn.nightly.new_orders import NewOrderValueError


def test_psi_matches_hand_computed_value() -> None:
    # Reference 0..99: quartile edges 24.75, 49.5, 74.25, 25 % per bin.
    reference = np.arange(100.0)
    # Current: 40 % / 30 % / 20 % / 10 % across the same four bins.
    current = np.repeat([10.0, 30.0, 60.0, 90.0], [40, 30, 20, 10])
    expected = (
        0.15 * math.log(0.40 / 0.25)
        + 0.05 * math.log(0.30 / 0.25)
        - 0.05 * math.log(0.20 / 0.25)
        - 0.15 * math.log(0.10 / 0.25)
    )
    assert expected == pytest.approx(0.2282175, abs=1e-7)
    assert psi(reference, current, bins=4) == pytest.approx(expected, rel=1e-12)


def test_psi_is_zero_for_the_same_distribution_and_floors_empty_bins() -> None:
    values = np.random.default_rng(0).gamma(2.0, 10.0, 5_000)
    assert psi(values, values) == 0.0
    # Everything in one bin of ten: finite (floored), and large.
    shifted = psi(np.arange(100.0), np.full(50, 1_000.0))
    assert math.isfinite(shifted) and shifted > 5
    # Ties merge bins: a count feature of mostly ones still works; NaN is dropped.
    counts = np.array([1] * 80 + [2] * 15 + [3] * 5, dtype=float)
    assert psi(counts, np.append(counts, np.nan)) == 0.0
    assert math.isnan(psi([], [1.0]))


def test_check_psi_names_the_worst_column_and_its_threshold() -> None:
    values = {"recency_days": 0.3, "revenue": 2.0, "churn_probability": 0.6}
    result = PsiResult(values, "x", skipped=[])
    with pytest.raises(DistributionShiftError, match=r"revenue shifted: PSI 2\.000") as info:
        check_psi(result, "churn_probability", max_feature_psi=0.5, max_score_psi=0.5)
    assert "nightly.max_feature_psi=0.5 (and 1 more)" in str(info.value)
    assert info.value.exit_code == 13
    with pytest.raises(DistributionShiftError, match=r"nightly\.max_score_psi=0\.5"):
        check_psi(result, "churn_probability", max_feature_psi=5, max_score_psi=0.5)
    check_psi(result, "churn_probability", max_feature_psi=5, max_score_psi=1)
    # A new champion since the reference run: its scores may move, the features may not.
    check_psi(result, "churn_probability", 5, 0.5, enforce_score=False)
    with pytest.raises(DistributionShiftError, match="revenue"):
        check_psi(result, "churn_probability", 0.5, 0.5, enforce_score=False)


def test_distribution_psi_uses_columns_both_sides_have() -> None:
    ref = pd.DataFrame({"a": np.arange(100.0), "s": np.arange(100.0), "only_ref": 1.0})
    cur = pd.DataFrame({"a": np.arange(100.0), "s": np.arange(100.0) + 50})
    result = distribution_psi(ref, cur, ["a", "only_ref", "missing"], "s", 10, "ref")
    assert set(result.values) == {"a", "s"}
    assert result.skipped == ["only_ref", "missing"]
    assert result.values["a"] == 0 and result.values["s"] > 1


def _ingested(rows_in: int, reasons: dict[str, int], malformed: int) -> IngestReport:
    quarantined = sum(reasons.values())
    return IngestReport(
        rows_in=rows_in,
        rows_out=rows_in - quarantined,
        rows_quarantined=quarantined,
        reasons=reasons,
        malformed_rows=malformed,
        malformed_fraction=round(malformed / rows_in, 6),
        customers=1,
        first_ts=None,
        last_ts=None,
    )


def test_quarantine_guard_reads_the_malformed_rows_ingest_counted() -> None:
    """Policy rows (guest orders, after as_of) are in the report but not malformed."""
    report = _ingested(
        1_000, {"guest_order": 300, "after_as_of": 200, "non_numeric_amount": 40}, malformed=40
    )
    check_quarantine(report, 0.05)
    with pytest.raises(QuarantineError, match=r"40 of 1,000 raw rows \(4.0%\)") as info:
        check_quarantine(report, 0.03)
    assert info.value.exit_code == 12 and "non_numeric_amount 40" in str(info.value)


def test_quarantine_guard_at_zero_refuses_one_row_the_rounded_fraction_hides() -> None:
    """The report rounds the fraction to 6 places (0.0 here); the guard must not."""
    report = _ingested(3_000_000, {"unparseable_timestamp": 1}, malformed=1)
    assert report.malformed_fraction == 0.0
    with pytest.raises(QuarantineError, match="1 of 3,000,000 raw rows"):
        check_quarantine(report, 0.0)


def test_new_data_guard() -> None:
    check_new_data(10, 10, None, None)  # first run
    check_new_data(10, 1, "2026-09-01", "2026-08-31 12:00:00")
    with pytest.raises(NoNewDataError, match="no transactions after 2026-08-31") as info:
        check_new_data(10, 0, "2026-09-01", "2026-08-31 12:00:00")
    assert info.value.exit_code == 11
    with pytest.raises(NoNewDataError, match="before the as-of date"):
        check_new_data(0, 0, None, None)


def test_drift_acceptance_lets_only_drift_through_and_keeps_every_message() -> None:
    """#18 --accept-drift: drift refusals (PSI, new order values: exit 13) are kept for the
    manifest instead of raised; any other refusal still stops the run."""
    assert DriftAcceptance().record() is None  # not given: the manifest says None
    with pytest.raises(DistributionShiftError), DriftAcceptance().guard():
        raise DistributionShiftError("revenue shifted")
    accepting = DriftAcceptance(accepted=True)
    with accepting.guard():
        raise DistributionShiftError("revenue shifted")
    with accepting.guard():
        raise NewOrderValueError("orders valued unlike")
    assert accepting.record() == ["revenue shifted", "orders valued unlike"]
    with pytest.raises(NoNewDataError), accepting.guard():
        raise NoNewDataError("no transactions")
