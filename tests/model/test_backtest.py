"""Backtest replays earlier as-of dates with only the data that existed then."""

from __future__ import annotations

import datetime as dt
import json
import logging

import ibis
import pandas as pd
import pytest

from churn.config import FeaturesConfig, SnapshotConfig, TrainConfig
from churn.model.backtest import backtest, summarize
from synthetic import canonical_transactions


def test_each_step_moves_the_test_cutoff_back_one_cutoff_step(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERM", "dumb")  # plain progress lines, even under `pytest -s`
    caplog.set_level(logging.INFO, logger="churn.progress")
    transactions = canonical_transactions(seed=4, n_customers=2_000)
    snapshots = SnapshotConfig(n_train_cutoffs=4)
    table = backtest(
        ibis.memtable(transactions),
        dt.date(2026, 9, 1),
        2,
        snapshots,
        FeaturesConfig(),
        TrainConfig(n_estimators=100, early_stopping_rounds=20, min_customers=100),
    )
    assert table["as_of"].tolist() == ["2026-09-01", "2026-08-02"]
    assert table["step"].tolist() == [0, -1]  # the DVC plot's x axis
    cutoffs = pd.to_datetime(table["test_cutoff"])
    assert (cutoffs.diff().dropna() == pd.Timedelta(days=-snapshots.cutoff_every_days)).all()
    assert (cutoffs == pd.to_datetime(table["as_of"]) - pd.Timedelta(days=90)).all()
    for column in ("roc_auc", "brier", "bgnbd_roc_auc", "recency_brier", "logistic_roc_auc"):
        assert table[column].between(0, 1).all()
    assert (table["roc_auc"] > 0.55).all()
    # One progress line per replayed date; the features and training inside stay quiet
    progress = [r.getMessage() for r in caplog.records if r.name == "churn.progress"]
    assert [line.split(" (")[0] for line in progress] == [
        "backtest: 1/2 as-of dates",
        "backtest: 2/2 as-of dates",
    ]


def test_the_summary_spreads_the_metrics_and_margins_over_the_replays() -> None:
    table = pd.DataFrame(
        {
            "roc_auc": [0.70, 0.74],
            "brier": [0.14, 0.12],
            "ece": [0.01, 0.03],
            "recency_roc_auc": [0.65, 0.76],  # beats the model at the second date
            "recency_brier": [0.15, 0.15],
        }
    )
    summary = summarize(table)
    assert summary["replays"] == 2
    assert summary["roc_auc"] == {"mean": 0.72, "min": 0.70, "max": 0.74}
    assert summary["brier"]["max"] == 0.14 and summary["ece"]["mean"] == 0.02
    assert summary["roc_auc_margin"] == {"recency": {"mean": 0.015, "min": -0.02}}
    assert json.loads(json.dumps(summary)) == summary  # plain JSON for metrics/backtest.json
