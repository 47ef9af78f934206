"""`churn train` reads at most ``train.max_rows`` labelled rows: a hashed sample of customers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churn.config import TrainConfig
from churn.stages.training_rows import training_snapshots

N_CUSTOMERS, CUTOFFS = 4_000, ["2025-01-01", "2025-02-01", "2025-03-01"]


def _labelled() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "customer_id": np.tile([f"C{i:05d}" for i in range(N_CUSTOMERS)], len(CUTOFFS)),
            "cutoff": np.repeat(pd.to_datetime(CUTOFFS), N_CUSTOMERS),
            "recency_days": rng.random(N_CUSTOMERS * len(CUTOFFS)),
        }
    )
    return frame.sort_values(["cutoff", "customer_id"]).reset_index(drop=True)


@pytest.fixture
def file_and_folder(tmp_path: Path) -> tuple[Path, Path]:
    """The same table as DuckDB's single file and as Spark's partitioned folder."""
    frame = _labelled()
    file = tmp_path / "train.parquet"
    frame.to_parquet(file, index=False)
    folder = tmp_path / "spark" / "train.parquet"
    for day, part in frame.groupby("cutoff"):
        where = folder / f"cutoff_date={pd.Timestamp(day).date()}"
        where.mkdir(parents=True)
        part.iloc[::-1].to_parquet(where / "part-0.parquet", index=False)  # any order
    (folder / "_SUCCESS").touch()
    return file, folder


def test_without_a_cap_everything_is_read(file_and_folder: tuple[Path, Path]) -> None:
    file, folder = file_and_folder
    whole = training_snapshots(file, None)
    pd.testing.assert_frame_equal(whole, _labelled())
    pd.testing.assert_frame_equal(training_snapshots(folder, len(whole)), whole)


def test_a_cap_keeps_whole_customers_near_the_cap(file_and_folder: tuple[Path, Path]) -> None:
    file, folder = file_and_folder
    cap = 6_000  # half of the 12,000 rows
    sample = training_snapshots(file, cap)
    assert abs(len(sample) - cap) < 0.1 * cap
    per_customer = sample.groupby("customer_id")["cutoff"].nunique()
    assert (per_customer == len(CUTOFFS)).all()  # every cutoff of each kept customer
    assert sample[["cutoff", "customer_id"]].equals(
        sample[["cutoff", "customer_id"]].sort_values(["cutoff", "customer_id"])
    )
    # The same customers from Spark's folder, and in every run.
    pd.testing.assert_frame_equal(training_snapshots(folder, cap), sample)
    pd.testing.assert_frame_equal(training_snapshots(file, cap), sample)


def test_the_knob_defaults_to_everything_and_has_bounds() -> None:
    assert TrainConfig().max_rows is None
    with pytest.raises(ValueError, match="max_rows"):
        TrainConfig(max_rows=10)
