"""The scoring snapshot at any as-of date, through the same feature code as training."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from churn.config import Params
from churn.stages.inputs import input_file, read_parquet

if TYPE_CHECKING:
    import ibis.expr.types as ir

log = logging.getLogger(__name__)


def build_snapshot(
    transactions: Path,
    as_of: dt.date,
    params: Params,
    on_events: Callable[[ir.Table], None] | None = None,
) -> pd.DataFrame:
    """Every active customer's features at ``as_of``, computed from ``transactions`` now
    (``on_events``: see churn.features.as_of_snapshot.as_of_pieces)."""
    from churn.features import backend
    from churn.features.tables import build_scoring_snapshot

    con = backend.connect(params.engine, spark_master=params.spark_master)
    table = backend.read_transactions(con, transactions)
    return build_scoring_snapshot(table, as_of, params.snapshots, params.features, on_events)


def scoring_snapshot(params: Params, as_of: dt.date | None) -> pd.DataFrame:
    """The features stage's scoring snapshot when it is for ``as_of`` (None: whatever date
    it holds), else one built now from the pipeline's transactions."""
    path = params.paths.score_features
    if as_of is None:
        return read_parquet(path, "features")
    if path.exists():
        snapshot = pd.read_parquet(path)
        if not snapshot.empty and set(pd.to_datetime(snapshot["cutoff"]).dt.date) == {as_of}:
            return snapshot
    transactions = input_file(params.paths.transactions, "ingest")
    log.info("score: building the scoring snapshot for %s from %s", as_of, transactions)
    return build_snapshot(transactions, as_of, params)
