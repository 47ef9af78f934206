"""Batch scoring: every active customer at the as-of date gets a churn probability.

The model comes from churn.model.loader whether it is a local model directory
or a registry URI (``models:/churn-classifier@champion``), so the nightly job
and a data scientist's notebook run the very same object.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from churn.config import AttributionConfig, ScoringConfig
from churn.errors import UserError
from churn.model.churn_model import ChurnModel
from churn.model.identity import ModelIdentity
from churn.schema import CUTOFF, REASON_COLUMNS, SCORE_COLUMNS, subset
from churn.scoring.attribution import contributions
from churn.scoring.reasons import top_reasons

# The score columns copied as they are from the snapshot (whose cutoff becomes as_of).
FROM_SNAPSHOT = subset(
    SCORE_COLUMNS, "customer_id", "recency_days", "n_orders", "revenue", "segment"
)


def risk_bands(probability: np.ndarray | pd.Series, config: ScoringConfig) -> np.ndarray:
    """low below ``medium_from``, high above ``high_above``, medium in between (inclusive)."""
    p = np.asarray(probability, dtype="float64")
    return np.where(
        p > config.high_above, "high", np.where(p < config.medium_from, "low", "medium")
    )


def score_customers(
    snapshot: pd.DataFrame,
    model: ChurnModel,
    model_uri: str | ModelIdentity,
    config: ScoringConfig | None = None,
) -> pd.DataFrame:
    """Probability, band and value for one cutoff's snapshot, riskiest first (rank 1).

    Reasons are left empty here: exact attributions for every customer cost far
    more than the scores, so they are filled in (``explain``) only for the
    customers someone will look at.
    """
    if snapshot.empty:
        raise UserError("no active customers to score at the as-of date")
    config = config or ScoringConfig()
    identity = model_uri if isinstance(model_uri, ModelIdentity) else ModelIdentity(model_uri)
    probability = model.churn_probability(snapshot)
    # Put in order once, before the columns are built, rather than sort a finished table.
    order = riskiest_first(probability, snapshot["customer_id"])
    scores = snapshot[[CUTOFF, *FROM_SNAPSHOT]].take(order).reset_index(drop=True)
    scores = scores.rename(columns={CUTOFF: "as_of"})
    scores["as_of"] = pd.to_datetime(scores["as_of"])
    scores["segment"] = scores["segment"].astype(str)
    scores["churn_probability"] = probability[order]
    scores["risk_band"] = risk_bands(scores["churn_probability"], config)
    scores["p_alive"] = _ordered(snapshot["btyd_p_alive"], order)
    scores["expected_value_12m"] = _ordered(snapshot["expected_value_12m"], order)
    scores["value_at_risk"] = scores["churn_probability"] * scores["expected_value_12m"]
    scores["clv_discounted"] = _ordered(snapshot["clv_discounted"], order)
    next_purchase = pd.to_datetime(snapshot["next_purchase_date"].take(order))
    scores["next_purchase_date"] = next_purchase.reset_index(drop=True)
    scores["risk_rank"] = np.arange(1, len(scores) + 1, dtype="int64")
    for column in REASON_COLUMNS:
        scores[column] = ""
    scores["model_name"] = identity.name
    scores["model_version"] = identity.version
    scores["model_uri"] = identity.uri
    return scores[list(SCORE_COLUMNS)]


def riskiest_first(probability: np.ndarray, customer_ids: pd.Series) -> np.ndarray:
    """The row order by churn probability, highest first, then customer id (a stable sort:
    equal pairs keep their order). One numpy lexsort on the probability and the ids' sort
    codes: what a pandas two-key sort of the whole table gives, for less (issue 20)."""
    if customer_ids.is_monotonic_increasing:
        # The snapshot comes in id order: each row's position is then as good as its
        # id's sort code (equal ids keep their order either way), and sorting 2 M text
        # ids cost more than the rest of the table (issue 20).
        codes = np.arange(len(customer_ids))
    else:
        codes, _ = pd.factorize(customer_ids, sort=True, use_na_sentinel=False)
    return np.lexsort((codes, -np.asarray(probability, dtype="float64")))


def _ordered(values: pd.Series, order: np.ndarray) -> np.ndarray:
    return values.to_numpy(dtype="float64", na_value=np.nan)[order]


def scored_by(scores: pd.DataFrame) -> ModelIdentity:
    """The model that produced ``scores``, as its first row records it."""
    first = scores.iloc[0]
    return ModelIdentity(
        str(first["model_uri"]), str(first["model_name"]), str(first["model_version"])
    )


def explain(
    snapshot: pd.DataFrame,
    model: ChurnModel,
    customer_ids: Iterable[str],
    attribution: AttributionConfig | None = None,
) -> pd.DataFrame:
    """reason_1..3 for the given customers (ids missing from the snapshot are skipped)."""
    wanted = snapshot[snapshot["customer_id"].isin(set(customer_ids))]
    contrib = contributions(model.booster, model.matrix(wanted), config=attribution)
    reasons = top_reasons(wanted, contrib, model.features)
    reasons.insert(0, "customer_id", wanted["customer_id"].to_numpy())
    return reasons.reset_index(drop=True)


def with_reasons(table: pd.DataFrame, reasons: pd.DataFrame) -> pd.DataFrame:
    """``table`` with reason_1..3 filled in from ``reasons`` where a customer has them."""
    out = table.copy()
    filled = reasons.set_index("customer_id")
    # Looked up for the rows that have reasons (the listed few hundred), not for millions.
    has = out["customer_id"].isin(filled.index).to_numpy()
    for column in REASON_COLUMNS:
        current = out[column] if column in out else pd.Series("", index=out.index)
        new = out.loc[has, "customer_id"].map(filled[column]).fillna(current[has])
        values = current.astype(str)
        values[has] = new.astype(str).to_numpy()
        out[column] = values
    return out
