"""A small real trained model and its scoring snapshot for the scoring tests.

Real parts throughout: generated transactions, the feature code, LightGBM with
calibration. Small (2,000 customers, few trees) so every scoring test stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import pandas as pd

from churn.config import FeaturesConfig, SnapshotConfig, TrainConfig
from churn.features.tables import build_feature_tables
from churn.model.churn_model import ChurnModel
from churn.model.train import train_model
from synthetic import canonical_transactions


@dataclass(frozen=True)
class Trained:
    transactions: pd.DataFrame
    snapshots: SnapshotConfig
    features: FeaturesConfig
    model: ChurnModel
    scoring: pd.DataFrame


def build_trained() -> Trained:
    transactions = canonical_transactions(seed=11, n_customers=2_000)
    snapshots, features = SnapshotConfig(n_train_cutoffs=3), FeaturesConfig()
    tables = build_feature_tables(ibis.memtable(transactions), snapshots, features)
    config = TrainConfig(n_estimators=60, early_stopping_rounds=15, num_threads=1)
    model = train_model(tables.labelled, config).model
    return Trained(transactions, snapshots, features, model, tables.scoring)
