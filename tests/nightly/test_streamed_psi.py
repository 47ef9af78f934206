"""PSI from DuckDB's bin counts over Parquet parts equals the in-memory PSI, to the last digit."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from churn.nightly.guards import distribution_psi
from churn.nightly.streamed_psi import parquet_psi

FEATURES = ["recency_days", "n_orders", "revenue", "not_a_column"]
SCORE = "churn_probability"


def _frame(rng: np.random.Generator, n: int, shift: int) -> pd.DataFrame:
    """Integer ties (recency, a count), a money column with missing values, a score."""
    frame = pd.DataFrame(
        {
            "recency_days": rng.integers(0, 400, n) + shift,
            "n_orders": rng.poisson(1.3, n) + 1,
            "revenue": np.round(rng.lognormal(3, 1, n), 2),
            SCORE: rng.random(n) ** (1 + shift / 50),
        }
    )
    frame.loc[frame.sample(frac=0.1, random_state=1).index, "revenue"] = np.nan
    return frame


def _parts(frame: pd.DataFrame, folder: Path) -> Path:
    """``frame`` as a folder of parts, as Spark writes a score table."""
    folder.mkdir()
    cut = len(frame) // 3
    frame.iloc[:cut].to_parquet(folder / "part-00000.parquet", index=False)
    frame.iloc[cut:].to_parquet(folder / "part-00001.parquet", index=False)
    (folder / "_SUCCESS").touch()
    return folder


def test_same_values_as_the_in_memory_psi(tmp_path: Path) -> None:
    """Random sizes and bin counts: edges between order statistics (where DuckDB's own
    quantile_cont lands an ulp away from NumPy's and moves a value on an edge into the
    next bin), merged edges of tied counts, missing values, a column on one side only."""
    rng = np.random.default_rng(0)
    for trial in range(25):
        n_ref, n_cur = (int(n) for n in rng.integers(5, 2_500, 2))
        bins = int(rng.integers(2, 30))
        reference = _frame(rng, n_ref, 0)
        current = _frame(rng, n_cur, int(rng.integers(0, 60)))
        reference.to_parquet(tmp_path / f"ref{trial}.parquet", index=False)
        parts = _parts(current, tmp_path / f"cur{trial}")
        expected = distribution_psi(reference, current, FEATURES, SCORE, bins, "the run")
        measured = parquet_psi(
            tmp_path / f"ref{trial}.parquet", parts, FEATURES, SCORE, bins, "the run"
        )
        assert measured == expected, (trial, n_ref, bins)
    assert measured.skipped == ["not_a_column"]


def test_no_values_on_a_side_is_not_a_number(tmp_path: Path) -> None:
    empty = pd.DataFrame({"revenue": [np.nan, np.nan], SCORE: [0.1, 0.2]})
    full = pd.DataFrame({"revenue": [1.0, 2.0], SCORE: [0.1, 0.9]})
    empty.to_parquet(tmp_path / "empty.parquet", index=False)
    full.to_parquet(tmp_path / "full.parquet", index=False)
    for ref, cur in (("empty", "full"), ("full", "empty")):
        result = parquet_psi(
            tmp_path / f"{ref}.parquet", tmp_path / f"{cur}.parquet", ["revenue"], SCORE, 10, "x"
        )
        assert math.isnan(result.values["revenue"])
        assert not math.isnan(result.values[SCORE])
