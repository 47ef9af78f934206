"""The `export` stage: the retention list under the budget, its summary and targets table.

`churn export` and the nightly job both build the list with :func:`retention` and
write it with :func:`write_list`, so the list a marketer exports by hand and the one
the job publishes cannot differ.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from churn.adhoc import ExportFiles, export_files, export_output, export_parts
from churn.atomic import atomic_path, write_csv, write_json, write_parquet
from churn.config import ExportConfig, Params
from churn.data.countries import latest_countries
from churn.errors import UserError
from churn.model.churn_model import ChurnModel
from churn.outcomes.in_effect import rates_in_effect
from churn.outcomes.ranking import ranking_in_effect
from churn.scoring.export import Contacts, ExportFilters, write_xlsx
from churn.scoring.retention import ReasonsFor, RetentionList, retention_list
from churn.scoring.score import explain, scored_by
from churn.stages.inputs import read_parquet, run_name
from churn.stages.model import scoring_model
from churn.stages.snapshot import scoring_snapshot
from churn.stages.spark_export import PickInput, over_all_scored, spark_pick_input

log = logging.getLogger(__name__)

FORMATS = ("csv", "xlsx")
FILTER_FIELDS = ("segments", "bands", "min_value", "actions", "top_n")


@dataclass(frozen=True)
class ExportRequest:
    """What `churn export` was asked for: the filters given as options (by ExportFilters
    field name), the formats, another score table and an output file; all optional."""

    options: Mapping[str, Any]
    formats: list[str] | None = None
    scores: Path | None = None
    output: Path | None = None

    @property
    def given(self) -> set[str]:
        return {f for f, value in self.options.items() if value not in (None, [])}

    @property
    def ad_hoc(self) -> bool:
        """Any option makes a one-off list, written beside the tracked files."""
        return bool(self.given or self.formats or self.scores or self.output)


@dataclass(frozen=True)
class Exported:
    """The list built and where it went (``written``: the list files, summary last)."""

    chosen: RetentionList
    files: ExportFiles
    written: list[str]


def param_filters(
    settings: ExportConfig, options: Mapping[str, Any] | None = None
) -> ExportFilters:
    """The export filters: each option given, else its ``export.*`` default from params."""
    given = {f: v for f, v in (options or {}).items() if v not in (None, [])}
    values = {f: given.get(f, getattr(settings, f)) for f in FILTER_FIELDS}
    return ExportFilters(**values, from_params=frozenset(set(FILTER_FIELDS) - set(given)))


def retention(
    scores: pd.DataFrame,
    customers: pd.DataFrame | None,
    params: Params,
    filters: ExportFilters,
    reasons_for: ReasonsFor,
    snapshot_for: Callable[[], pd.DataFrame],
    contacts: Contacts | None = None,
) -> RetentionList:
    """Consent, the budgeted pick, reasons for the picked and the filtered contact list,
    under the save rates in effect (assumed, or measured from campaign outcomes), which
    the summary records."""
    targeting, rates = rates_in_effect(
        params.targeting, params.paths.save_rates, params.outcomes.min_control
    )
    paths = params.paths
    scores, ranking = ranking_in_effect(  # by churn risk, or by a measured uplift model
        params.targeting, scores, paths.outcomes_dir, paths.outcomes_metrics, snapshot_for
    )
    chosen = retention_list(
        scores, customers, targeting, filters, reasons_for, params.report.currency, contacts
    )
    chosen.summary["save_rates"] = rates
    chosen.summary["ranking"] = ranking
    return chosen


def reasons_from(snapshot: pd.DataFrame, model: ChurnModel, params: Params) -> ReasonsFor:
    """Reasons for the picked customers from the model and snapshot that scored them."""
    return lambda wanted: explain(snapshot, model, wanted, params.attribution)


def write_list(
    chosen: RetentionList,
    files: ExportFiles,
    name_files: bool = True,
    currency: str = "£",
    horizon_days: int = 90,
) -> list[str]:
    """Write the targets table, the list in each format and, last, the summary (naming the
    list files it describes when ``name_files``); returns the paths written. The XLSX
    shows money in ``currency`` (report.currency) and says the risk is over
    ``horizon_days`` (snapshots.horizon_days)."""
    if files.table is not None:
        write_parquet(chosen.targets, files.table)
    written = []
    if "csv" in files.lists:
        write_csv(chosen.contact_list, files.lists["csv"])
        written.append(str(files.lists["csv"]))
    if "xlsx" in files.lists:
        with atomic_path(files.lists["xlsx"]) as tmp:
            write_xlsx(chosen.contact_list, tmp, currency=currency, horizon_days=horizon_days)
        written.append(str(files.lists["xlsx"]))
    summary = {**chosen.summary, "files": written} if name_files else chosen.summary
    write_json(summary, files.summary)
    return [*written, str(files.summary)]


def contacts_from_transactions(
    params: Params, customers: pd.DataFrame | None, as_of: dt.date | None
) -> pd.DataFrame | None:
    """The country of each customer's latest order, when the customers table gives none
    (no table, or no country in it) and the transactions carry one."""
    known = customers is not None and customers["country"].replace("", None).notna().any()
    if known or not params.paths.transactions.exists():
        return None
    return latest_countries(params.paths.transactions, as_of)


@dataclass(frozen=True)
class ExportPlan:
    """An export checked and its inputs read: nothing left that a typo can break."""

    filters: ExportFilters
    scores: pd.DataFrame
    customers: pd.DataFrame | None
    files: ExportFiles
    contacts: pd.DataFrame | None = None  # contact details the customers table lacks
    pushed: PickInput | None = None  # engine: pyspark: scores holds only the targeted


def plan(params: Params, request: ExportRequest) -> ExportPlan:
    """Check the request (filters, formats, --output) before reading anything, then read
    the score table and the customers table and settle where the list goes."""
    filters = param_filters(params.export, request.options)
    filters.check(list(params.targeting.actions))
    # --output sets the one format by its suffix; a --format given with it must agree
    formats = request.formats or ([] if request.output else list(params.export.formats))
    for name in formats:
        if name not in FORMATS:
            raise UserError(f"--format {name!r} is not one of: 'csv', 'xlsx'")
    if request.output is not None:  # before any reading, so a wrong --output fails at once
        export_output(params, formats, request.output)
    if request.scores is not None and not request.scores.exists():
        raise UserError(f"score table not found: {request.scores} (check --scores)")
    customers = None
    if params.paths.customers.exists():
        customers = read_parquet(params.paths.customers, "ingest")
    pushed = None if request.scores is not None else spark_pick_input(params, customers)
    if pushed is not None:  # engine: pyspark: only the targeted rows come back
        scores = pushed.scores
    else:
        scores = read_parquet(request.scores or params.paths.scores, "score")
    parts = None
    if request.ad_hoc:
        as_of = run_name(scores, request.scores) if request.scores is not None else None
        parts = export_parts({f: request.options[f] for f in request.given}, as_of)
    files = export_files(params, formats, request.output, parts)
    scored_at = pd.Timestamp(scores["as_of"].iloc[0]).date() if len(scores) else None
    if pushed is not None and pushed.as_of is not None:
        scored_at = pushed.as_of.date()
    contacts = contacts_from_transactions(params, customers, scored_at)
    return ExportPlan(filters, scores, customers, files, contacts, pushed)


def export(params: Params, planned: ExportPlan) -> Exported:
    """The DVC stage (no options) or a one-off list (any option): pick, explain, write."""
    scores = planned.scores
    rows_of = planned.pushed.snapshot_rows if planned.pushed is not None else None
    reasons = _reasons_of_scorer(scores, params, rows_of)

    def snapshot_for() -> pd.DataFrame:
        if rows_of is not None:  # engine: pyspark: the targeted customers' rows only
            return rows_of(scores["customer_id"])
        return scoring_snapshot(params, pd.Timestamp(scores["as_of"].iloc[0]).date())

    chosen = retention(
        scores, planned.customers, params, planned.filters, reasons, snapshot_for, planned.contacts
    )
    if planned.pushed is not None:
        chosen = over_all_scored(chosen, planned.pushed, planned.filters, planned.customers)
    refuse_filtered_empty(chosen)
    currency, horizon = params.report.currency, params.snapshots.horizon_days
    return Exported(
        chosen, planned.files, write_list(chosen, planned.files, True, currency, horizon)
    )


class EmptyListError(UserError):
    """A filter left nobody of the customers the budget picked: nothing is written."""


def refuse_filtered_empty(chosen: RetentionList) -> None:
    """Refuse, before anything is written, a list that a filter emptied.

    A header-only file with exit 0 reads as "nobody to call", and written over the
    tracked list it would replace a full list with an empty one. A list the budget,
    consent or the data left empty is still written (with a warning): that is an answer,
    not a typo.
    """
    summary = chosen.summary
    if chosen.empty_reason is None or not summary["selected"] or summary["exported"]:
        return
    raise EmptyListError(
        f"the list is empty: {chosen.empty_reason}; nothing written (loosen or drop that"
        " filter; `churn export` with no option lists every selected customer)"
    )


def _reasons_of_scorer(
    scores: pd.DataFrame,
    params: Params,
    rows_of: Callable[[pd.Series], pd.DataFrame] | None = None,
) -> ReasonsFor:
    """Reasons from the very model that scored (an alias may have moved since), at the
    scores' as-of date; loaded only when someone was picked. ``rows_of``: the snapshot
    rows of the wanted ids (Spark's), instead of reading the whole snapshot."""

    def reasons_for(wanted: pd.Series) -> pd.DataFrame:
        as_of = pd.Timestamp(scores["as_of"].iloc[0]).date()
        loaded = scoring_model(params, scored_by(scores).pinned_uri)
        snapshot = rows_of(wanted) if rows_of is not None else scoring_snapshot(params, as_of)
        return reasons_from(snapshot, loaded.model, params)(wanted)

    return reasons_for
