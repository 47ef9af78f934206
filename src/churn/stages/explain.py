"""`churn explain`: one customer's risk, value and top reasons, for anyone to read."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from churn.config import Params
from churn.errors import UserError
from churn.schema import REASON_COLUMNS
from churn.scoring.score import explain as explain_customers
from churn.scoring.score import score_customers
from churn.stages.model import scoring_model
from churn.stages.snapshot import scoring_snapshot


@dataclass(frozen=True)
class Explanation:
    """The customer's score row and the reasons that apply (none: nothing points to churn)."""

    scored: pd.Series
    reasons: list[str]


def explain(
    params: Params, customer_id: str, model_uri: str | None, as_of: dt.date | None
) -> Explanation:
    """Score and explain ``customer_id`` at ``as_of``; refuse an inactive or unknown id."""
    snapshot = scoring_snapshot(params, as_of)
    row = snapshot[snapshot["customer_id"].astype(str) == customer_id]
    if row.empty:
        raise UserError(
            f"customer {customer_id!r} is not an active customer at the as-of date"
            f" (no purchase in the last {params.snapshots.active_window_days} days, or unknown id)"
        )
    loaded = scoring_model(params, model_uri)
    scored = score_customers(row, loaded.model, loaded.identity, params.scoring).iloc[0]
    reasons = explain_customers(row, loaded.model, [customer_id], params.attribution).iloc[0]
    return Explanation(scored, [str(reasons[c]) for c in REASON_COLUMNS if reasons[c]])
