"""`churn outcomes`: ingest what came after the lists, measure, and write every output.

The pipeline's own ingest stops at the as-of date it ran with, so the read-out
ingests the raw source itself, with the same reader, checks and accounting, into
``paths.outcomes_dir`` (transactions, quarantine, customers, ingest report), up
to the latest list's date plus the horizon. It then writes:

* ``paths.outcomes_metrics`` (metrics/outcomes.json): the pooled read-out at the top,
  ``by_campaign``, ``by_action``, ``by_band``, ``by_segment``; ``contacted_only``
  beside it when a contact log is configured;
* ``paths.save_rates``: measured and shrunk save rates per action;
* ``<plots_dir>/outcomes_by_action.csv`` and ``outcomes_by_campaign.csv`` (DVC plots);
* an MLflow run in ``outcomes.experiment`` with the metrics and both JSON files.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from churn.atomic import record_json, write_csv, write_json
from churn.config import (
    FeaturesConfig,
    IngestConfig,
    OutcomesConfig,
    RawSource,
    SnapshotConfig,
    TargetingConfig,
)
from churn.data.contacts import ingest_contacts
from churn.data.ingest_stage import IngestTargets, run_ingest_stage
from churn.outcomes.campaigns import CampaignOutcomes, read_out
from churn.outcomes.lists import find_list_files, latest_list_date
from churn.outcomes.readout import Measurement, Readout
from churn.outcomes.save_rates import measured_save_rates
from churn.outcomes.uplift_step import run_uplift

log = logging.getLogger(__name__)

ITT_NOTE = "intent to treat: every listed customer outside the control group counts as contacted"
REACHED_NOTE = (
    "contacted only: listed customers the contact log shows reached, against the whole"
    " control group; reach is not random (the reachable tend to be the engaged), so this"
    " overstates the effect of a contact, while intent to treat measures the campaign as run"
)


@dataclass(frozen=True)
class OutcomePaths:
    raw_transactions: RawSource
    targets_table: Path
    nightly_root: Path
    outcomes_dir: Path
    metrics: Path
    save_rates: Path
    plots_dir: Path


@dataclass(frozen=True)
class OutcomesResult:
    outcomes: CampaignOutcomes
    metrics: dict[str, Any]
    save_rates: dict[str, Any]


def ingest_after_lists(
    paths: OutcomePaths, ingest: IngestConfig, horizon_days: int, list_files: list[Path]
) -> tuple[Path, Path | None, dict[str, Any]]:
    """Transactions up to the latest list + horizon, and the contact log when configured."""
    until = latest_list_date(list_files) + dt.timedelta(days=horizon_days)
    folder = paths.outcomes_dir
    targets = IngestTargets(
        transactions=folder / "transactions.parquet",
        quarantine=folder / "quarantine.parquet",
        customers=folder / "customers.parquet",
        report=folder / "ingest_report.json",
    )
    # a plain dict: the outcomes report adds the contact log's counts beside ingest's
    report = record_json(run_ingest_stage(paths.raw_transactions, ingest, until, targets))
    contacts = None
    if ingest.contacts.source is not None:
        contacts = folder / "contacts.parquet"
        report["contacts_log"] = ingest_contacts(
            ingest.contacts, ingest.csv, contacts, folder / "contacts_quarantine.parquet", ingest
        )
        write_json(report, targets.report)
    return targets.transactions, contacts, report


def run_outcomes(
    paths: OutcomePaths,
    ingest: IngestConfig,
    horizon_days: int,
    config: OutcomesConfig,
    targeting: TargetingConfig,
    uplift_features: tuple[SnapshotConfig, FeaturesConfig] | None = None,
) -> OutcomesResult:
    """Measure every published list and write the outputs (see the module docstring)."""
    files = find_list_files(paths.targets_table, paths.nightly_root)
    if not files:
        # Refuses before reading any transactions (a database source is only named).
        read_out(files, Path(str(paths.raw_transactions)), horizon_days, config.campaign_days)
    transactions, contacts, report = ingest_after_lists(paths, ingest, horizon_days, files)
    outcomes = read_out(
        files, transactions, horizon_days, config.campaign_days, contacts, ingest.memory_limit
    )
    itt = outcomes.intent_to_treat
    closed = [k for k, m in itt.by_campaign.items() if m.horizon_closed]
    rates = measured_save_rates(
        itt.by_action, targeting, config.prior_strength, closed or list(itt.by_campaign)
    )
    rates["min_control"] = config.min_control
    metrics = _metrics(outcomes, report)
    if uplift_features is not None:  # issue 16 item 5: churn.outcomes.uplift
        metrics["uplift"] = run_uplift(
            files, transactions, paths.outcomes_dir, config, *uplift_features
        )
    write_json(rates, paths.save_rates)
    write_json(metrics, paths.metrics)
    write_csv(_plot_rows(itt.by_action, "action"), paths.plots_dir / "outcomes_by_action.csv")
    write_csv(_plot_rows(itt.by_campaign, "campaign"), paths.plots_dir / "outcomes_by_campaign.csv")
    return OutcomesResult(outcomes, metrics, rates)


def _metrics(outcomes: CampaignOutcomes, report: dict[str, Any]) -> dict[str, Any]:
    itt = outcomes.intent_to_treat
    metrics: dict[str, Any] = {
        **itt.as_dict(),
        "arms": ITT_NOTE,
        "list_dates": [d.isoformat() for d in outcomes.list_dates],
        "campaigns": [d.isoformat() for d in outcomes.campaigns],
        "data_end": outcomes.data_end.isoformat(),
        "pooled_over": "closed campaigns"
        if itt.pooled.horizon_closed
        else "open campaigns, so far",
        "transactions_ingested": report.get("rows_out"),
    }
    if outcomes.contacted_only is not None:
        metrics["contacted_only"] = {**outcomes.contacted_only.as_dict(), "arms": REACHED_NOTE}
        metrics["contacts_log"] = report.get("contacts_log")
    return metrics


def _plot_rows(groups: dict[str, Measurement], key: str) -> pd.DataFrame:
    columns = [
        "n_contacted", "n_control", "retention_contacted", "retention_control", "lift",
        "lift_ci_low", "lift_ci_high", "save_rate", "save_rate_ci_low", "save_rate_ci_high",
        "horizon_closed",
    ]  # fmt: skip
    rows = [{key: name, **{c: getattr(m, c) for c in columns}} for name, m in groups.items()]
    return pd.DataFrame(rows, columns=[key, *columns])


def describe(readout: Readout) -> str:
    """One log line per action: measured save rate with its interval."""
    parts = []
    for action, m in readout.by_action.items():
        if m.save_rate is None:
            parts.append(f"{action}: no estimate ({m.n_control} control)")
        else:
            parts.append(
                f"{action}: save rate {m.save_rate:.1%} (95 % {m.save_rate_ci_low:.1%} to"
                f" {m.save_rate_ci_high:.1%}; {m.n_contacted} contacted, {m.n_control} control)"
            )
    return "; ".join(parts)
