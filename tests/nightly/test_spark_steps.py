"""The Spark nightly's driver-side pieces that need no Spark: the manifest's counts from the
score table's parts, and which PSI reference it takes, against the pandas path's answers.
(The whole Spark nightly against DuckDB's: tests/stages/test_spark_path.py.)"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from churn.config import Params, PathsConfig
from churn.nightly import spark_steps, steps
from churn.nightly.manifest import PreviousRun

AS_OF = dt.date(2026, 6, 1)


def test_counts_from_the_parts_are_the_frames(tmp_path: Path) -> None:
    """Scored from the parts' metadata, contactable by a join with the consenting ids:
    the counts ``consent_status`` gives on the whole frame, duplicates, unknown consent
    and customers missing from the table included."""
    scores = pd.DataFrame({"customer_id": [f"c{i}" for i in range(12)], "churn_probability": 0.5})
    folder = tmp_path / "scores.parquet"
    folder.mkdir()
    scores.iloc[:5].to_parquet(folder / "part-00000.parquet", index=False)
    scores.iloc[5:].to_parquet(folder / "part-00001.parquet", index=False)
    consent = pd.array([True, False, None, True, False, False, True, None], dtype="boolean")
    customers = pd.DataFrame(
        {
            # c3 twice: the first row counts (True, not False); c8..c11 are not in the table
            "customer_id": ["c0", "c1", "c2", "c3", "c3", "c4", "c5", "c6"],
            "marketing_consent": consent,
        }
    )
    expected = steps.ScoreCounts.of(scores, customers)
    assert expected.contactable == 3  # c0, c3, c5
    assert spark_steps.score_counts(folder, customers) == expected
    no_table = customers.iloc[:0]
    assert spark_steps.score_counts(folder, no_table) == steps.ScoreCounts.of(scores, no_table)


def _run(tmp_path: Path, snapshot: Path, previous: PreviousRun | None) -> spark_steps.SparkRun:
    params = Params(paths=PathsConfig(score_features=snapshot))
    ingested: Any = None  # not read before a reference is chosen
    loaded: Any = None  # no scoring: every case here returns before it
    return spark_steps.SparkRun(AS_OF, params, ingested, previous, loaded, tmp_path, tmp_path)


@pytest.mark.parametrize("case", ["missing", "empty", "later"])
def test_no_reference_is_said_as_on_the_pandas_path(tmp_path: Path, case: str) -> None:
    snapshot = tmp_path / "score.parquet"
    if case == "empty":
        pd.DataFrame({"cutoff": pd.Series(dtype="datetime64[ns]")}).to_parquet(snapshot)
    elif case == "later":
        later = pd.Timestamp(AS_OF + dt.timedelta(days=1))
        pd.DataFrame({"cutoff": [later], "customer_id": ["c0"]}).to_parquet(snapshot)
    run = _run(tmp_path, snapshot, None)
    reference, name = spark_steps.psi_reference(run, AS_OF)
    assert reference is None
    assert (None, name) == steps.psi_reference(None, run.loaded, run.params, AS_OF)


def test_the_previous_run_is_the_reference_file_or_folder(tmp_path: Path) -> None:
    previous = PreviousRun(AS_OF - dt.timedelta(days=1), None, "models:/churn/1", tmp_path / "s")
    reference, name = spark_steps.psi_reference(_run(tmp_path, tmp_path / "x", previous), AS_OF)
    assert reference == previous.scores
    assert name == f"the run of {previous.as_of.isoformat()}"
