"""The optional `backtest` stage: retrain and evaluate at earlier as-of dates."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis.expr.types as ir
import pandas as pd

from churn.atomic import write_csv, write_json
from churn.config import Params
from churn.errors import UserError
from churn.features import backend
from churn.features.snapshots import default_as_of
from churn.model.backtest import backtest as run_backtest
from churn.model.backtest import summarize
from churn.stages.inputs import input_file


@dataclass(frozen=True)
class BacktestInputs:
    """The transactions, the latest as-of date to replay from and how many steps back."""

    transactions: ir.Table
    as_of: dt.date
    steps: int


def backtest_inputs(params: Params, steps: int | None) -> BacktestInputs:
    """``steps`` (default ``backtest.steps``) checked, then the ingested transactions and
    the as-of date (``snapshots.as_of``, else the default for the latest transaction)."""
    steps = params.backtest.steps if steps is None else steps
    if steps < 1:
        raise UserError("--steps must be at least 1")
    con = backend.connect(params.engine, spark_master=params.spark_master)
    transactions = backend.read_transactions(con, input_file(params.paths.transactions, "ingest"))
    last = transactions.ts.max().to_pandas()
    as_of = params.snapshots.as_of or default_as_of(dt.datetime.fromisoformat(str(last)))
    return BacktestInputs(transactions, as_of, steps)


def backtest(params: Params, inputs: BacktestInputs) -> pd.DataFrame:
    """Retrain and evaluate at each as-of date one cutoff step apart; write the stability
    table (a DVC plot) and its summary (DVC metrics); return the table."""
    table = run_backtest(
        inputs.transactions,
        inputs.as_of,
        inputs.steps,
        params.snapshots,
        params.features,
        params.train,
    )
    write_csv(table.round(6), params.paths.backtest)
    write_json(summarize(table), params.paths.backtest_metrics)
    return table
