"""The one call that measures every published list: :func:`read_out`.

Lists (churn.outcomes.lists) + transactions after them (churn.outcomes.measure) ->
per-group sums in DuckDB -> typed measurements (churn.outcomes.readout). The
report's "Did it work?" section and an uplift model start from its result.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from churn.data import session
from churn.errors import UserError
from churn.outcomes.lists import load_lists
from churn.outcomes.measure import customer_outcomes, data_end, group_sums
from churn.outcomes.readout import Readout, measurements


@dataclass(frozen=True)
class CampaignOutcomes:
    intent_to_treat: Readout  # every listed non-control customer counts as contacted
    contacted_only: Readout | None  # with a contact log: reached customers vs control
    list_dates: tuple[dt.date, ...]
    campaigns: tuple[dt.date, ...]  # each campaign's first list date
    data_end: dt.date  # the first day the transactions have not seen


def read_out(
    list_files: Sequence[Path],
    transactions: Path,
    horizon_days: int,
    campaign_days: int,
    contacts: Path | None = None,
    memory_limit: str = "2GB",
) -> CampaignOutcomes:
    """Contacted versus control for every published list, pooled and per group."""
    con = session.connect()
    try:
        con.execute(f"SET memory_limit = '{memory_limit}'")
        lists = load_lists(con, list_files, campaign_days)
        end = data_end(con, transactions)
        if end is None or end <= lists.dates[0]:
            raise UserError(
                f"no transaction after the first list ({lists.dates[0]}) in {transactions}:"
                " nothing to measure yet (outcomes need the purchases that came after a list)"
            )
        customer_outcomes(con, transactions, horizon_days, end, contacts, campaign_days)
        itt = measurements(group_sums(con))
        reached = measurements(group_sums(con, contacted_only=True)) if contacts else None
    finally:
        con.close()
    return CampaignOutcomes(
        intent_to_treat=itt,
        contacted_only=reached,
        list_dates=lists.dates,
        campaigns=tuple(sorted(set(lists.campaigns.values()))),
        data_end=end,
    )
