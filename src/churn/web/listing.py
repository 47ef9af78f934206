"""The list as the page shows it: the export's own filters and marketing view, server-side.

The query string carries the same filters as `churn export` (``segment``, ``band``,
``action`` repeatable; ``min_value``; ``top``), and an unset one falls back to its
``export.*`` default from params, exactly as on the command line. The rows come from
:func:`churn.scoring.export.build_export`, so the page, its downloads and a `churn
export` with the same options hold the same customers in the same order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from churn.config import Params
from churn.errors import UserError
from churn.scoring.export import ExportFilters, build_export, consent_status, why_empty
from churn.stages.export import param_filters

# Query field -> ExportFilters field; the repeatable ones take every value given.
MULTI = {"segment": "segments", "band": "bands", "action": "actions"}
SINGLE = {"min_value": "min_value", "top": "top_n"}


@dataclass(frozen=True)
class Shown:
    """What one page view shows: the rows (marketing headers), the export summary, and
    why the list is empty when it is."""

    rows: pd.DataFrame
    summary: dict[str, Any]
    empty_reason: str | None
    filters: ExportFilters


def query_filters(params: Params, query: Mapping[str, Sequence[str]]) -> ExportFilters:
    """The filters a query asks for (blank fields unset), checked as `churn export` checks
    them; a value that can only be a typo is a UserError the page shows."""
    options: dict[str, Any] = {}
    for name, field in MULTI.items():
        options[field] = [v for v in query.get(name, ()) if v.strip()] or None
    for name, field in SINGLE.items():
        text = next((v.strip() for v in reversed(query.get(name, ())) if v.strip()), "")
        options[field] = _number(name, text, int if field == "top_n" else float)
    filters = param_filters(params.export, options)
    filters.check(list(params.targeting.actions))
    return filters


def _number(name: str, text: str, kind: type[int] | type[float]) -> int | float | None:
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise UserError(f"{name} {text!r} is not {what}") from None
    if not math.isfinite(value):
        raise UserError(f"{name} must be a finite number")
    return value


def shown_list(
    targets: pd.DataFrame,
    customers: pd.DataFrame | None,
    filters: ExportFilters,
    contacts: pd.DataFrame | None = None,
) -> Shown:
    """The filtered contact list from a published targets table (no new pick: the budget
    and the control group stay as the run decided them). ``contacts`` fills what the
    customers table lacks, as in `churn export` (the country of the latest order)."""
    consent = consent_status(targets["customer_id"], customers)
    rows, summary = build_export(targets, consent, customers, filters, contacts=contacts)
    empty = why_empty(targets, consent, summary, filters) if rows.empty else None
    return Shown(rows, summary, empty, filters)
