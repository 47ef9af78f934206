"""The optional `backtest` stage: retrain and evaluate at earlier as-of dates."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from churn.atomic import write_csv, write_json
from churn.config import Params
from churn.errors import UserError
from churn.features import backend
from churn.features.snapshots import default_as_of
from churn.model.backtest import backtest as run_backtest
from churn.model.backtest import summarize
from churn.stages.inputs import input_file


def backtest(params: Params, steps: int | None) -> pd.DataFrame:
    """``steps`` as-of dates (default ``backtest.steps``) one cutoff step apart; writes the
    stability table (a DVC plot) and its summary (DVC metrics); returns the table."""
    steps = params.backtest.steps if steps is None else steps
    if steps < 1:
        raise UserError("--steps must be at least 1")
    con = backend.connect(params.engine, spark_master=params.spark_master)
    transactions = backend.read_transactions(con, input_file(params.paths.transactions, "ingest"))
    last = transactions.ts.max().to_pandas()
    as_of = params.snapshots.as_of or default_as_of(dt.datetime.fromisoformat(str(last)))
    table = run_backtest(
        transactions, as_of, steps, params.snapshots, params.features, params.train
    )
    write_csv(table.round(6), params.paths.backtest)
    write_json(summarize(table), params.paths.backtest_metrics)
    return table
