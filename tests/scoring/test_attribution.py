"""The cheap attribution must name the same top churn reason as exact TreeSHAP.

The model is the project's own: features built from the generated shop and trained
by train_model, so the test sees real feature correlations and early-stopped trees,
not a toy model whose trees are all alike.
"""

from __future__ import annotations

import datetime as dt

import ibis
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from churn.config import AttributionConfig, FeaturesConfig, SnapshotConfig, TrainConfig
from churn.features.tables import build_feature_tables
from churn.model.train import train_model
from churn.scoring.attribution import (
    LeafAttribution,
    contributions,
    exact_contributions,
    top_reason,
    top_reason_agreement,
)
from synthetic import canonical_transactions


@pytest.fixture(scope="module")
def model_and_matrix() -> tuple[lgb.Booster, pd.DataFrame]:
    transactions = canonical_transactions(seed=11, n_customers=2_000)
    tables = build_feature_tables(
        ibis.memtable(transactions),
        SnapshotConfig(as_of=dt.date(2026, 7, 1), n_train_cutoffs=4),
        FeaturesConfig(),
    )
    result = train_model(
        tables.labelled, TrainConfig(n_estimators=400, early_stopping_rounds=50, min_customers=100)
    )
    matrix = result.model.matrix(tables.labelled)
    assert result.model.booster.num_trees() >= 20  # a real ensemble, not a stump
    return result.model.booster, matrix.sample(frac=1.0, random_state=0)  # random row order


def _raw(booster: lgb.Booster, matrix: pd.DataFrame) -> np.ndarray:
    return np.asarray(booster.predict(matrix, raw_score=True))


def test_cheap_top_reason_matches_exact_treeshap(
    model_and_matrix: tuple[lgb.Booster, pd.DataFrame],
) -> None:
    booster, matrix = model_and_matrix
    fit_rows, new_rows = matrix.iloc[:2_000], matrix.iloc[2_000:]  # disjoint, random
    assert len(new_rows) >= 1_000
    explainer = LeafAttribution(n_sample=1_000).fit(booster, fit_rows)
    exact = exact_contributions(booster, new_rows)
    approx = explainer.approximate(new_rows)
    cheap = explainer.transform(new_rows)

    agreement = top_reason_agreement(cheap, exact)
    print(
        f"top churn reason agreement: leaf table {top_reason_agreement(approx, exact):.3f},"
        f" with exact for near ties {agreement:.3f}"
        f" ({len(explainer.exact_rows(approx)) / len(new_rows):.1%} rows exact);"
        f" largest |contribution|: {top_reason_agreement(cheap, exact, 'abs'):.3f}"
    )
    assert agreement >= 0.90
    assert top_reason_agreement(approx, exact) >= 0.80  # the table itself, not only the fallback
    assert len(explainer.exact_rows(approx)) <= explainer.max_exact_share * len(new_rows)
    np.testing.assert_allclose(cheap.sum(axis=1), _raw(booster, new_rows), atol=1e-9)
    np.testing.assert_allclose(approx.sum(axis=1), _raw(booster, new_rows), atol=1e-9)


def test_fitted_state_describes_the_fit(
    model_and_matrix: tuple[lgb.Booster, pd.DataFrame],
) -> None:
    booster, matrix = model_and_matrix
    explainer = LeafAttribution(n_sample=100, target_agreement=0.97, max_exact_share=0.1)
    assert explainer.fit(booster, matrix) is explainer
    assert explainer.n_sample_ == 100
    assert explainer.table_.shape == (
        booster.num_trees() * explainer.max_leaves_,
        booster.num_feature() + 2,
    )
    assert 0 < explainer.unseen_leaf_share_ < 1  # 100 rows cannot reach every leaf
    assert explainer.sample_exact_share_ <= 0.1
    assert explainer.expected_agreement_ >= explainer.approx_agreement_


def test_rarely_reached_leaves_still_sum_to_the_raw_score(
    model_and_matrix: tuple[lgb.Booster, pd.DataFrame],
) -> None:
    booster, matrix = model_and_matrix
    explainer = LeafAttribution(n_sample=20).fit(booster, matrix.iloc[:20])
    out = explainer.transform(matrix.iloc[20:])
    np.testing.assert_allclose(out.sum(axis=1), _raw(booster, matrix.iloc[20:]), atol=1e-9)


def test_small_inputs_are_exact_and_large_ones_use_the_leaf_table(
    model_and_matrix: tuple[lgb.Booster, pd.DataFrame],
) -> None:
    booster, matrix = model_and_matrix
    config = AttributionConfig(exact_max_rows=500, n_sample=400)
    small = matrix.iloc[:500]
    np.testing.assert_array_equal(
        contributions(booster, small, config=config), exact_contributions(booster, small)
    )

    large = matrix.iloc[:3_000]
    exact = exact_contributions(booster, large)
    out = contributions(booster, large, config=config)
    np.testing.assert_allclose(out.sum(axis=1), _raw(booster, large), atol=1e-9)
    same = np.all(np.isclose(out, exact, rtol=0, atol=1e-12), axis=1)
    assert same.sum() >= 400  # the fit sample comes out exact
    assert not same.all()  # and the rest from the table
    assert top_reason_agreement(out, exact) >= 0.90

    fitted = LeafAttribution.from_config(config).fit(booster, matrix)
    reused = contributions(booster, large, config=config, explainer=fitted)
    np.testing.assert_array_equal(reused, fitted.transform(large))
    assert contributions(booster, matrix.iloc[:0]).shape == (0, booster.num_feature() + 1)


def test_stumps_are_explained_exactly_even_from_a_tiny_sample() -> None:
    """With one split per tree, TreeSHAP is the Saabas credit, so every leaf entry is exact."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3_000, 4))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(size=3_000) > 0).astype(int)
    params = {"objective": "binary", "num_leaves": 2, "verbosity": -1, "num_threads": 1}
    booster = lgb.train(params, lgb.Dataset(x, label=y), num_boost_round=30)
    explainer = LeafAttribution(n_sample=3, max_exact_share=0.0).fit(booster, x)
    assert explainer.unseen_leaf_share_ > 0  # some leaves come from Saabas credits alone
    exact = exact_contributions(booster, x)
    np.testing.assert_allclose(explainer.transform(x), exact, atol=1e-9)
    assert (top_reason(exact) == top_reason(explainer.transform(x))).all()


def test_top_reason_is_the_strongest_push_towards_churn() -> None:
    contrib = np.array([[0.3, -0.9, 0.1, 2.0], [-0.2, -0.1, -0.5, 0.0]])  # last = bias
    assert top_reason(contrib).tolist() == [0, 1]
    assert top_reason(contrib, "abs").tolist() == [1, 2]
