"""The measure-and-adjust stages: a simulated campaign on the sample, and the read-out
of every published list against the control group (README: "Outcomes")."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

from churn.atomic import write_json
from churn.config import Params, raw_file
from churn.data.campaign import published_list, run_campaign
from churn.outcomes.publish import OutcomePaths, OutcomesResult, run_outcomes
from churn.outcomes.tracking import log_readout


@dataclass(frozen=True)
class Simulated:
    """What `churn simulate-campaign` did: the list it acted on, the rows it appended
    to the raw sample and the truth it wrote."""

    listed: pd.DataFrame
    appended_rows: int
    truth: dict[str, Any]


def simulate_campaign(params: Params, as_of: dt.date) -> Simulated:
    """Act on the list published at ``as_of`` with the true per-type effects, append the
    horizon's purchases to the raw sample and write the true save rates."""
    paths = params.paths
    listed = published_list(as_of, paths.targets_table, params.nightly.output_root)
    result = run_campaign(
        as_of, raw_file(paths.raw_transactions, "simulate-campaign"), paths.truth, listed,
        params.snapshots.horizon_days, params.generate, params.simulate,
    )  # fmt: skip
    write_json(result.truth, paths.campaign_truth)
    return Simulated(listed, len(result.transactions), result.truth)


@dataclass(frozen=True)
class ReadOut:
    """The read-out of every published list and the MLflow run it was logged to."""

    result: OutcomesResult
    run_id: str


def outcomes(params: Params) -> ReadOut:
    """Contacted against control for every published list; writes the metrics, the
    measured save rates and the plots, and logs them to MLflow."""
    result = measure(params)
    run_id = log_readout(
        result.metrics, result.save_rates, params.tracking, params.outcomes.experiment
    )
    return ReadOut(result, str(run_id))


def measure(params: Params) -> OutcomesResult:
    """The read-out written to ``paths.*`` (metrics, save rates, plots), not yet logged."""
    paths = params.paths
    where = OutcomePaths(
        raw_transactions=paths.raw_transactions,
        targets_table=paths.targets_table,
        nightly_root=params.nightly.output_root,
        outcomes_dir=paths.outcomes_dir,
        metrics=paths.outcomes_metrics,
        save_rates=paths.save_rates,
        plots_dir=paths.plots_dir,
    )
    return run_outcomes(
        where,
        params.ingest,
        params.snapshots.horizon_days,
        params.outcomes,
        params.targeting,
        (params.snapshots, params.features),
    )
