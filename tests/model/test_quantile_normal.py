"""churn.model.quantile_normal: scikit-learn's quantile-normal pipeline as plain numbers, the
one transform of the logistic baseline and the logistic candidate."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import QuantileTransformer, StandardScaler

from churn.model.baselines import BASELINES
from churn.model.linear_part import LinearPart, choose_linear_part
from churn.model.quantile_normal import (
    N_QUANTILES,
    QuantileNormal,
    _few_distinct,
    _normal_scores,
)


def _columns(n: int, seed: int) -> np.ndarray:
    """Heavy-tailed money with gaps, counts with ties and whales, a normal, a constant."""
    rng = np.random.default_rng(seed)
    money = rng.lognormal(3, 2, n)
    money[rng.random(n) < 0.05] = np.nan
    counts = rng.poisson(2, n).astype(float)
    counts[:10] = 1e6
    return np.column_stack([money, counts, rng.normal(size=n), np.zeros(n)])


def test_it_is_scikit_learns_median_quantile_normal_standardise_pipeline() -> None:
    x, later = _columns(3_000, 0), _columns(500, 1) * 3  # later rows reach past the range
    reference = make_pipeline(
        SimpleImputer(strategy="median"),
        QuantileTransformer(
            n_quantiles=N_QUANTILES, output_distribution="normal", subsample=len(x)
        ),
        StandardScaler(),
    ).fit(x)
    ours = QuantileNormal.fit(x)
    assert np.allclose(ours.transform(x), reference.transform(x), atol=1e-9)
    assert np.allclose(ours.transform(later), reference.transform(later), atol=1e-9)
    assert np.abs(ours.transform(later)).max() < 6  # bounded: whales cannot saturate


def test_it_round_trips_through_json_and_refuses_a_broken_one() -> None:
    x = _columns(800, 2)
    fitted = QuantileNormal.fit(x)
    loaded = QuantileNormal.from_dict(json.loads(json.dumps(fitted.to_dict())), x.shape[1])
    assert np.array_equal(loaded.transform(x), fitted.transform(x))
    broken = fitted.to_dict()
    broken["quantiles"][0] = broken["quantiles"][0][::-1]
    with pytest.raises(ValueError, match="non-decreasing"):
        QuantileNormal.from_dict(broken, x.shape[1])
    with pytest.raises(ValueError, match="one median"):
        QuantileNormal.from_dict(fitted.to_dict(), x.shape[1] + 1)


def _snapshots(n: int, seed: int, split: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    recency = rng.exponential(60, n)
    revenue = rng.lognormal(3.5, 1.5, n)
    churned = (rng.random(n) < 1 / (1 + np.exp(-0.02 * (recency - 60)))).astype("int8")
    return pd.DataFrame(
        {
            "customer_id": [f"{split}{i}" for i in range(n)],
            "split": split,
            "recency_days": recency,
            "revenue": revenue,
            "segment": rng.choice(["Champions", "At risk"], n),
            "churned": churned,
        }
    )


def test_the_logistic_baseline_is_the_logistic_candidates_code_on_the_training_rows() -> None:
    train, valid, test = (_snapshots(1_500, s, n) for s, n in enumerate(("train", "valid", "test")))
    candidate = choose_linear_part(train, valid)
    assert isinstance(candidate.transform, QuantileNormal)
    assert np.array_equal(BASELINES["logistic"](train, valid, test), candidate.probability(test))
    # And the served copy of the candidate (its JSON) scores the same.
    loaded = LinearPart.from_dict(json.loads(json.dumps(candidate.to_dict())))
    assert np.array_equal(loaded.probability(test), candidate.probability(test))


def test_a_logistic_part_saved_with_the_old_log_scaling_asks_for_a_retrain() -> None:
    old = {
        "features": ["revenue"],
        "log_columns": ["revenue"],
        "medians": [1.0],
        "means": [0.0],
        "scales": [1.0],
        "coef": [0.5],
        "intercept": 0.0,
        "c": 0.1,
    }
    with pytest.raises(ValueError, match=r"older churn .*retrain"):
        LinearPart.from_dict(old)


def test_the_in_place_transform_is_the_plain_expression_bit_for_bit() -> None:
    """The nightly's memory peak (issue 20) is the transform of every scored customer: it
    works in place on one copy, and must give exactly what the plain expression gives,
    without touching its input."""
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.lognormal(3, 2, 5_000), rng.uniform(0, 365, 5_000)])
    x[rng.random(5_000) < 0.1, 1] = np.nan
    fitted = QuantileNormal.fit(x)
    before = x.copy()
    filled = np.where(np.isnan(x), np.asarray(fitted.medians), x)
    want = (_normal_scores(filled, fitted.quantiles) - np.asarray(fitted.means)) / np.asarray(
        fitted.scales
    )
    got = fitted.transform(x)
    assert got.tobytes() == want.tobytes()
    assert np.array_equal(x, before, equal_nan=True)


def test_columns_of_repeated_values_are_transformed_once_per_value_with_the_same_bits() -> None:
    """At the nightly's size (issue 20) a column of few distinct values (counts, scores,
    -0.0 beside 0.0, missing cells) is transformed per distinct value and spread back, and
    the columns run on threads: the result must be the plain expression's, bit for bit."""
    rng = np.random.default_rng(1)
    n = 60_000
    counts = rng.poisson(3, n).astype(float)
    counts[rng.random(n) < 0.05] = np.nan
    signed_zero = np.where(rng.random(n) < 0.5, -0.0, 0.0) + rng.integers(0, 3, n)
    x = np.column_stack([counts, rng.lognormal(3, 2, n), signed_zero])
    fitted = QuantileNormal.fit(x[:5_000])
    assert [_few_distinct(x[:, i]) for i in range(3)] == [True, False, True]
    filled = np.where(np.isnan(x), np.asarray(fitted.medians), x)
    want = (_normal_scores(filled, fitted.quantiles) - np.asarray(fitted.means)) / np.asarray(
        fitted.scales
    )
    assert fitted.transform(x).tobytes() == want.tobytes()
    assert fitted.transform(np.asfortranarray(x)).tobytes() == want.tobytes()


def test_a_point_mass_gives_the_same_score_to_a_value_a_last_bit_away() -> None:
    """A run of equal quantiles (a third of the customers with a trend of exactly 1) is a
    jump in the transform. DuckDB and Spark compute such ratios a last bit apart, and the
    same customer scored 0.002 apart on the two engines: a value within 1e-9 of a quantile
    is that quantile; a value clearly beside it keeps its own score."""
    rng = np.random.default_rng(3)
    trend = rng.uniform(0, 2, 3_000)
    trend[:1_000] = 1.0
    fitted = QuantileNormal.fit(trend[:, None])
    at, hair_below, hair_above = 1.0, float(np.nextafter(1.0, 0)), float(np.nextafter(1.0, 2))
    scores = fitted.transform(np.array([[at], [hair_below], [hair_above], [1 - 1e-6], [1 + 1e-6]]))
    assert scores[0, 0] == scores[1, 0] == scores[2, 0]
    # Clearly beside the point mass, a value is scored where it is: the run's two ends.
    assert scores[3, 0] < scores[0, 0] - 0.3 and scores[4, 0] > scores[0, 0] + 0.3
