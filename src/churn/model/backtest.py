"""Replay the whole train-and-evaluate loop at earlier as-of dates.

One test cutoff is one season: a model that wins in July may lose in
December. Moving ``as_of`` back one cutoff step at a time and retraining from
scratch shows how stable the metrics are, using only data that existed at
each replayed date.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import ibis.expr.types as ir
import pandas as pd

from churn.config import FeaturesConfig, SnapshotConfig, TrainConfig
from churn.features.tables import build_feature_tables
from churn.model.baselines import baseline_probabilities
from churn.model.evaluate import classification_metrics
from churn.model.train import train_model
from churn.progress import tracked
from churn.schema import LABEL, SPLIT, TEST_SPLIT

log = logging.getLogger(__name__)


def backtest(
    transactions: ir.Table,
    as_of: dt.date,
    n_steps: int,
    snapshots: SnapshotConfig,
    features: FeaturesConfig,
    train: TrainConfig,
) -> pd.DataFrame:
    """One row per replayed as-of date: the model's and each baseline's test metrics.

    ``step`` is 0 for ``as_of`` itself and -1, -2, ... for each cutoff step back, a
    number line the DVC plot can draw (its templates need a numeric x axis).
    """
    rows = []
    for step in tracked(range(n_steps), "backtest", "as-of dates", n_steps):
        replay = as_of - dt.timedelta(days=step * snapshots.cutoff_every_days)
        log.info("backtest %d/%d: as_of %s", step + 1, n_steps, replay)
        config = snapshots.model_copy(update={"as_of": replay})
        tables = build_feature_tables(transactions, config, features)
        result = train_model(tables.labelled, train)
        test = tables.labelled[tables.labelled[SPLIT] == TEST_SPLIT]
        y = test[LABEL].to_numpy()
        row: dict[str, object] = {
            "step": -step,
            "as_of": replay.isoformat(),
            "test_cutoff": tables.calendar.test_cutoff.isoformat(),
        }
        metrics = classification_metrics(y, result.model.churn_probability(test))
        row.update({k: metrics[k] for k in ("roc_auc", "brier", "ece", "base_rate", "n")})
        for name, probability in baseline_probabilities(tables.labelled).items():
            baseline = classification_metrics(y, probability)
            row[f"{name}_roc_auc"] = baseline["roc_auc"]
            row[f"{name}_brier"] = baseline["brier"]
        rows.append(row)
    return pd.DataFrame(rows)


def summarize(table: pd.DataFrame) -> dict[str, Any]:
    """The backtest in a few numbers (metrics/backtest.json, for `dvc metrics` and `dvc exp show`).

    How the model's test metrics spread over the replayed cutoffs, and its mean and
    smallest ROC-AUC margin over each baseline: a negative ``min`` means the model lost
    to that baseline at some replayed date, which one test cutoff alone cannot show.
    """

    def spread(values: pd.Series) -> dict[str, float]:
        return {"mean": values.mean(), "min": values.min(), "max": values.max()}

    margins = {
        column.removesuffix("_roc_auc"): table["roc_auc"] - table[column]
        for column in table.columns
        if column.endswith("_roc_auc")
    }
    summary: dict[str, Any] = {
        "replays": len(table),
        "roc_auc": spread(table["roc_auc"]),
        "brier": spread(table["brier"]),
        "ece": spread(table["ece"]),
        "roc_auc_margin": {
            name: {"mean": margin.mean(), "min": margin.min()} for name, margin in margins.items()
        },
    }
    return _rounded(summary)


def _rounded(node: Any) -> Any:
    """Plain floats rounded to 6 digits, as in the CSV (NumPy scalars are not JSON)."""
    if isinstance(node, dict):
        return {key: _rounded(value) for key, value in node.items()}
    if isinstance(node, int):
        return node
    return round(float(node), 6)
