"""The linear part's design matrix, built in place (issue 20: the nightly's memory peak)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churn.model.linear_part import _CLIP, LinearPart
from churn.portable_math import log1p


def test_design_in_place_is_the_plain_expression_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "revenue": rng.lognormal(3, 2, 5_000),
            "n_orders": rng.integers(1, 40, 5_000),
            "recency_days": rng.uniform(0, 365, 5_000),
        }
    )
    frame.loc[rng.random(5_000) < 0.1, "recency_days"] = np.nan
    frame.loc[rng.random(5_000) < 0.1, "revenue"] = np.nan
    part = LinearPart(
        features=["revenue", "n_orders", "recency_days"],
        log_columns=["revenue"],
        medians=[3.1, 4.0, 90.5],
        means=[3.3, 6.2, 120.25],
        scales=[1.7, 0.5, 80.0],
        coef=[0.1, -0.2, 0.3],
        intercept=0.0,
        c=1.0,
    )
    x = frame[part.features].to_numpy(dtype="float64", na_value=np.nan)
    x[:, 0] = np.sign(x[:, 0]) * log1p(np.abs(x[:, 0]))
    x = np.where(np.isnan(x), np.asarray(part.medians), x)
    want = np.clip((x - np.asarray(part.means)) / np.asarray(part.scales), -_CLIP, _CLIP)
    got = part.design(frame)
    assert got.tobytes() == want.tobytes()
    assert (np.abs(got) == _CLIP).any()  # the clip is exercised
