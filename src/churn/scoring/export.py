"""The retention target list marketing loads into its CRM.

Column names are for a marketer, not a data scientist: what each column means
must be obvious without this code.
"""

from __future__ import annotations

import pandas as pd

EXPORT_COLUMNS = {
    "risk_rank": "Rank",
    "customer_id": "Customer ID",
    "churn_probability": "Churn risk (%)",
    "recency_days": "Days since last order",
    "n_orders": "Orders to date",
    "revenue": "Revenue to date",
}


def retention_targets(scores: pd.DataFrame, top_n: int) -> pd.DataFrame:
    """The ``top_n`` customers most likely to churn, in marketing's words."""
    top = scores.nsmallest(top_n, "risk_rank").copy()
    top["churn_probability"] = (100 * top["churn_probability"]).round(1)
    top["recency_days"] = top["recency_days"].round().astype("int64")
    top["revenue"] = top["revenue"].round(2)
    return top[list(EXPORT_COLUMNS)].rename(columns=EXPORT_COLUMNS).reset_index(drop=True)
