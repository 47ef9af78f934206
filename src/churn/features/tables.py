"""Assemble the two snapshot tables the pipeline trains and scores on.

The labelled table stacks every training, validation and test cutoff; the
scoring table is the single as-of cutoff. Both go through exactly the same
feature and segment code, so training and serving cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import ibis.expr.types as ir
import pandas as pd

from churn.config import FeaturesConfig, SnapshotConfig
from churn.errors import UserError
from churn.features.btyd_features import btyd_features
from churn.features.segments import RFMScorer
from churn.features.snapshots import Calendar, build_calendar, snapshot_expr


@dataclass(frozen=True)
class FeatureTables:
    labelled: pd.DataFrame
    scoring: pd.DataFrame
    calendar: Calendar
    rfm_edges: dict[str, Any]
    n_transactions: int


def _date_range(transactions: ir.Table) -> tuple[dt.datetime, dt.datetime, int]:
    bounds = transactions.aggregate(
        first=transactions.ts.min(), last=transactions.ts.max(), n=transactions.count()
    ).to_pandas()
    n = int(bounds["n"].iloc[0])
    if n == 0:
        raise UserError("the transactions table is empty (check the ingest report)")
    first = pd.Timestamp(bounds["first"].iloc[0]).to_pydatetime()
    last = pd.Timestamp(bounds["last"].iloc[0]).to_pydatetime()
    return first, last, n


def _population_with_btyd(history: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """Fit BTYD on the whole history per cutoff, then keep the active population only."""
    history = history.sort_values(["cutoff", "customer_id"]).reset_index(drop=True)
    enriched = pd.concat([history, btyd_features(history, horizon_days)], axis=1)
    population = enriched[enriched["in_population"].astype(bool)]
    return population.drop(columns="in_population").reset_index(drop=True)


def build_feature_tables(
    transactions: ir.Table, snapshots: SnapshotConfig, features: FeaturesConfig
) -> FeatureTables:
    first, last, n = _date_range(transactions)
    calendar = build_calendar(snapshots, first, last)
    labelled = _population_with_btyd(
        snapshot_expr(
            transactions,
            calendar.labelled(),
            calendar.as_of,
            snapshots,
            features,
            with_label=True,
            population_only=False,
        ).to_pandas(),
        snapshots.horizon_days,
    )
    scorer = RFMScorer(fixed_edges={str(k): v for k, v in features.rfm_edges.items()})
    labelled = scorer.fit(labelled).transform(labelled)
    edges = dict(scorer.edges_)
    scoring, scoring_edges = _scoring_table(transactions, calendar.as_of, snapshots, features)
    edges.update(scoring_edges)
    return FeatureTables(
        labelled=labelled, scoring=scoring, calendar=calendar, rfm_edges=edges, n_transactions=n
    )


def _scoring_table(
    transactions: ir.Table, as_of: dt.date, snapshots: SnapshotConfig, features: FeaturesConfig
) -> tuple[pd.DataFrame, dict[str, Any]]:
    scoring_cutoff = pd.DataFrame({"cutoff": [as_of], "split": ["score"]})
    scoring = _population_with_btyd(
        snapshot_expr(
            transactions,
            scoring_cutoff,
            as_of,
            snapshots,
            features,
            with_label=False,
            population_only=False,
        ).to_pandas(),
        snapshots.horizon_days,
    )
    if scoring.empty:
        return scoring, {}
    scorer = RFMScorer(fixed_edges={str(k): v for k, v in features.rfm_edges.items()})
    return scorer.fit(scoring).transform(scoring), dict(scorer.edges_)


def build_scoring_snapshot(
    transactions: ir.Table, as_of: dt.date, snapshots: SnapshotConfig, features: FeaturesConfig
) -> pd.DataFrame:
    """The scoring snapshot for any as-of date, through the very code `features` runs.

    `churn score --as-of` replays a past (or later) date without rebuilding the
    labelled training table, which costs far more than one cutoff.
    """
    return _scoring_table(transactions, as_of, snapshots, features)[0]
