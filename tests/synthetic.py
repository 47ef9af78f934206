"""Canonical transactions straight from the generator, for tests that are not about ingest.

Going through the generator's raw export and renaming columns keeps these tests
independent of ingest's parsing rules (tested on their own in tests/data).
"""

from __future__ import annotations

import pandas as pd

from churn.config import GenerateConfig
from churn.data.generate import generate_shop


def canonical_transactions(seed: int, n_customers: int, **config: object) -> pd.DataFrame:
    """``config`` overrides other GenerateConfig fields (e.g. a shorter ``start``)."""
    settings = GenerateConfig(seed=seed, n_customers=n_customers).model_copy(update=config)
    raw = generate_shop(settings).transactions
    raw = raw[raw["CustomerID"] != ""]
    return pd.DataFrame(
        {
            "customer_id": raw["CustomerID"].astype(str),
            "order_id": raw["Invoice"].astype(str),
            "ts": raw["InvoiceDate"].astype("datetime64[us]"),
            "amount": raw["Amount"].astype(float),
            "country": raw["Country"].astype(str),
        }
    ).reset_index(drop=True)
