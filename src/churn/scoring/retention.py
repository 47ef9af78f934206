"""The retention list: who gets contacted, why, and who was left out.

`churn export` and `churn nightly` both run these steps, in this order, so the
list a marketer loads by hand and the one the nightly job publishes cannot
differ: consent first (no budget spent on people who cannot be contacted),
then the budgeted pick, then reasons for the picked customers only (reasons
cost model time), then the marketing view with its filters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from churn.config import TargetingConfig
from churn.schema import REASON_COLUMNS
from churn.scoring.export import (
    CONSENT_OK,
    Contacts,
    ExportFilters,
    build_export,
    consent_status,
    why_empty,
)
from churn.scoring.reasons import with_value_reason
from churn.scoring.score import with_reasons
from churn.scoring.targeting import select_targets

# Given the ids of the picked customers, their reason_1..3 (with a customer_id column).
ReasonsFor = Callable[[pd.Series], pd.DataFrame]


@dataclass(frozen=True)
class RetentionList:
    targets: pd.DataFrame  # every scored customer + action, gain, targeted/selected/control
    contact_list: pd.DataFrame  # what marketing loads (consented, selected, filtered)
    summary: dict[str, Any]  # who was left out and why
    empty_reason: str | None = None  # when the contact list is empty: which step emptied it


def retention_list(
    scores: pd.DataFrame,
    customers: pd.DataFrame | None,
    targeting: TargetingConfig,
    filters: ExportFilters,
    reasons_for: ReasonsFor,
    currency: str = "£",
    contacts: Contacts | None = None,
) -> RetentionList:
    """``currency`` (report.currency) words the value of customers picked for it;
    ``contacts`` fills what the customers table does not (the country of the latest order)."""
    consent = consent_status(scores["customer_id"], customers)
    targets, pick = select_targets(scores, targeting, contactable=consent == CONSENT_OK)
    wanted = targets.loc[targets["selected"], "customer_id"]
    if len(wanted):
        targets = with_reasons(targets, reasons_for(wanted))
        picked = targets["selected"].to_numpy()
        worded = with_value_reason(targets.loc[picked], currency)
        targets.loc[picked, list(REASON_COLUMNS)] = worded[list(REASON_COLUMNS)]
    contact_list, summary = build_export(targets, consent, customers, filters, pick, contacts)
    empty = why_empty(targets, consent, summary, filters) if contact_list.empty else None
    return RetentionList(targets, contact_list, summary, empty)
