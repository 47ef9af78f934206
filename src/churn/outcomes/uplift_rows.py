"""One row per listed customer of a closed campaign: their outcome and their features then.

An uplift model learns who a contact changes, so it needs, for every customer on a
past list, what happened to them (``retained`` within the horizon, contacted or
control) and what the churn model saw about them on that list's date. The outcomes
come from the same DuckDB read-out as ``churn outcomes`` (churn.outcomes.lists and
churn.outcomes.measure); the features are the scoring snapshot at each list's
as-of date, built by the very feature code the churn model trains and scores with
from the transactions the read-out ingested. Features use only purchases up to
that date, so the later outcomes cannot leak into them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from churn.config import FeaturesConfig, SnapshotConfig
from churn.data import session
from churn.outcomes.lists import load_lists
from churn.outcomes.measure import customer_outcomes, data_end

OUTCOME_COLUMNS = (
    "campaign",
    "as_of",
    "customer_id",
    "treated",
    "retained",
    "contact_cost",
    "churn_probability",
    "expected_value_12m",
)


def closed_outcomes(
    list_files: Sequence[Path], transactions: Path, horizon_days: int, campaign_days: int
) -> pd.DataFrame:
    """Listed customers of the campaigns whose horizon has closed, with their outcome."""
    con = session.connect()
    try:
        load_lists(con, list_files, campaign_days)
        end = data_end(con, transactions) or dt.date.min
        customer_outcomes(con, transactions, horizon_days, end, None, campaign_days)
        columns = ", ".join(OUTCOME_COLUMNS)
        rows = con.execute(
            f"SELECT {columns} FROM outcomes WHERE closed ORDER BY campaign, customer_id"
        ).df()
    finally:
        con.close()
    rows["customer_id"] = rows["customer_id"].astype(str)
    return rows


def with_features(
    rows: pd.DataFrame, transactions: Path, snapshots: SnapshotConfig, features: FeaturesConfig
) -> pd.DataFrame:
    """``rows`` joined with the scoring snapshot at each row's list date (inner join:
    a listed customer the snapshot does not know has no features to learn from)."""
    from churn.features import backend
    from churn.features.tables import build_scoring_snapshot

    con = backend.connect("duckdb")
    table = backend.read_transactions(con, transactions)
    parts = []
    for as_of in sorted(rows["as_of"].unique()):
        group = rows[rows["as_of"] == as_of]
        day = pd.Timestamp(as_of).date()
        snapshot = build_scoring_snapshot(table, day, snapshots, features)
        snapshot = snapshot.assign(customer_id=snapshot["customer_id"].astype(str))
        overlap = [c for c in snapshot.columns if c in group.columns and c != "customer_id"]
        parts.append(group.merge(snapshot.drop(columns=overlap), on="customer_id", how="inner"))
    return pd.concat(parts, ignore_index=True) if parts else rows.iloc[0:0]
