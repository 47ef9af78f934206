"""The report's aggregates of a score table: DuckDB on the Parquet parts gives pandas' numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churn.scoring.score_digest import ALL, EDGES, ScoreDigest, digest_frame, digest_parquet


def _scores(n: int = 3_000) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    p = rng.random(n)
    p[: len(EDGES)] = EDGES  # every bin edge exactly: which bin is np.histogram's rule
    p[-2:] = [-0.1, 1.2]  # outside [0, 1]: clipped into the end bins
    band = np.where(p >= 0.6, "high", np.where(p >= 0.3, "medium", "low"))
    clv = rng.gamma(2.0, 50.0, n)
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(n)],
            "as_of": pd.Timestamp("2026-10-01"),
            "churn_probability": p,
            "risk_band": band,
            "risk_rank": pd.Series(-p).rank(method="first").astype("int64"),
            "expected_value_12m": clv,
            "value_at_risk": p * clv,
            "segment": rng.choice(["Champions", "At risk", "Hibernating"], n),
            "model_name": "churn-classifier",
            "model_version": "3",
            "model_uri": "models:/churn-classifier/3",
        }
    )
    return frame.sort_values("risk_rank").reset_index(drop=True)


def _same(a: ScoreDigest, b: ScoreDigest) -> None:
    assert (a.rows, a.columns, a.as_of, a.high_risk, a.model) == (
        b.rows,
        b.columns,
        b.as_of,
        b.high_risk,
        b.model,
    )
    assert a.value_at_risk == pytest.approx(b.value_at_risk, rel=1e-12)
    assert a.value_at_risk_high == pytest.approx(b.value_at_risk_high, rel=1e-12)
    assert a.mean_clv == pytest.approx(b.mean_clv, rel=1e-12)
    assert a.bands == b.bands
    assert a.histogram.keys() == b.histogram.keys()
    for band, counts in a.histogram.items():
        np.testing.assert_array_equal(counts, b.histogram[band])
    pd.testing.assert_frame_equal(a.segments, b.segments, check_dtype=False, rtol=1e-12)


def test_parts_and_file_give_the_frames_numbers(tmp_path: Path) -> None:
    frame = _scores()
    file = tmp_path / "scores.parquet"
    frame.to_parquet(file, index=False)
    folder = tmp_path / "spark" / "scores.parquet"
    folder.mkdir(parents=True)
    shuffled = frame.sample(frac=1, random_state=1)
    for i, rows in enumerate(np.array_split(np.arange(len(shuffled)), 3)):
        shuffled.iloc[rows].to_parquet(folder / f"part-{i:05d}.parquet", index=False)  # any order
    (folder / "_SUCCESS").touch()
    expected = digest_frame(frame)
    assert expected.histogram[ALL].sum() == len(frame)
    _same(digest_parquet(file), expected)
    _same(digest_parquet(folder), expected)
