"""A small labelled snapshot table (train, valid and test cutoffs), built once per session.

Building snapshots costs seconds; the tuning tests in tests/model and tests/stages share
one copy (callers must not modify it: copy before planting anything).
"""

from __future__ import annotations

from functools import cache

import ibis
import pandas as pd

from churn.config import FeaturesConfig, SnapshotConfig
from churn.features.tables import build_feature_tables
from synthetic import canonical_transactions


@cache
def labelled_snapshots() -> pd.DataFrame:
    transactions = canonical_transactions(seed=11, n_customers=1_200)
    return build_feature_tables(
        ibis.memtable(transactions), SnapshotConfig(n_train_cutoffs=4), FeaturesConfig()
    ).labelled
