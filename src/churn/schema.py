"""The canonical column names of every table the pipeline writes, in the order written.

Writers select these columns in this order, readers require them by these names
and tests compare with them, so each table's contract is written down once. A
module that reads only part of a table names that part with :func:`subset` (for
example ``REPORT_SCORE_COLUMNS`` in src/churn/scoring/report.py): the subset is
checked against the table when the module is imported, so a renamed or dropped
column fails there, not as a KeyError halfway through a nightly run.

This module sits at the bottom of the import order (ARCHITECTURE.md): it imports
nothing from churn, so every layer can use it. The one exception it cannot cover
is the served model's code, which MLflow copies byte for byte into the model
folder: churn.model.churn_model keeps its own ``ID_COLUMNS`` and ``LABEL``, and
tests/test_schema.py pins them to the ones here.
"""

from __future__ import annotations

from collections.abc import Collection
from types import MappingProxyType
from typing import Final

# The key every table shares.
CUSTOMER_ID: Final = "customer_id"

# --- data/interim/transactions.parquet: one row per order line (churn.data.ingest) ---
TRANSACTION_COLUMNS: Final = (CUSTOMER_ID, "order_id", "ts", "amount", "country")
# Appended after TRANSACTION_COLUMNS, in this order, when the raw source has them.
OPTIONAL_TRANSACTION_COLUMNS: Final = ("quantity", "unit_price", "product_id", "channel")

# --- data/interim/quarantine.parquet: every rejected raw row, where it was and why ---
QUARANTINE_COLUMNS: Final = (
    "source_file",
    "source_row",
    "reason",
    CUSTOMER_ID,
    "order_id",
    "raw_timestamp",
    "raw_amount",
    "raw_line",  # the text of a line the CSV reader could not split (malformed_line)
)

# --- data/interim/customers.parquet: the optional customer master (churn.data.customers) ---
# What a retention list shows about a customer, from the master.
CONTACT_COLUMNS: Final = ("email", "name", "country")
# True, False or missing (unknown): only True may be contacted (churn.scoring.export).
MARKETING_CONSENT: Final = "marketing_consent"
CUSTOMER_COLUMNS: Final = (CUSTOMER_ID, *CONTACT_COLUMNS, MARKETING_CONSENT)

# --- data/features/train.parquet and score.parquet: one row per (customer, cutoff) ---
# The features themselves are whatever churn.features computes; these columns identify
# a row and label it, and are never a feature.
CUTOFF: Final = "cutoff"
SPLIT: Final = "split"
SNAPSHOT_ID_COLUMNS: Final = (CUSTOMER_ID, CUTOFF, SPLIT)
# 1 = no purchase in (cutoff, cutoff + horizon]; only train.parquet has it.
LABEL: Final = "churned"
# Values of SPLIT: the labelled cutoffs (train.parquet, oldest first) and the scoring one.
TRAIN_SPLIT: Final = "train"
VALID_SPLIT: Final = "valid"
TEST_SPLIT: Final = "test"
LABELLED_SPLITS: Final = (TRAIN_SPLIT, VALID_SPLIT, TEST_SPLIT)
SCORE_SPLIT: Final = "score"

# --- data/scores/scores.parquet: every active customer at the as-of date, riskiest first ---
# Plain-word reasons, strongest first; empty until filled for the customers someone reads.
REASON_COLUMNS: Final = ("reason_1", "reason_2", "reason_3")
SCORE_COLUMNS: Final = (
    CUSTOMER_ID,
    "as_of",
    "churn_probability",
    "risk_band",
    "risk_rank",
    "p_alive",
    "expected_value_12m",
    "clv_discounted",  # discounted lifetime value (features.clv_months, discount_rate_annual)
    "next_purchase_date",  # the expected (median) date of the next purchase; NaT: not expected
    "value_at_risk",
    "segment",
    "recency_days",
    "n_orders",
    "revenue",
    *REASON_COLUMNS,
    "model_name",
    "model_version",
    "model_uri",
)

# --- data/scores/targets.parquet: the scores, then what targeting adds ---
TARGETING_COLUMNS: Final = (
    "expected_gain",
    "action",
    "contact_cost",
    "save_rate",
    "targeted",
    "selected",
    "control_group",
)
TARGET_COLUMNS: Final = (*SCORE_COLUMNS, *TARGETING_COLUMNS)

# --- the optional contact log (ingest.contacts.source), as `churn outcomes` reads it ---
CONTACT_LOG_COLUMNS: Final = (CUSTOMER_ID, "date", "action", "channel", "reached")

# --- data/exports/retention_targets.csv and .xlsx: column -> the header marketing reads ---
# In the order of the file. The customers table supplies name, email and country (else
# country from the transactions). One risk number: P(alive) stays out (#18).
EXPORT_HEADERS: Final = MappingProxyType(
    {
        "priority": "Priority",
        "customer_id": "Customer ID",
        "name": "Name",
        "email": "Email",
        "country": "Country",
        "churn_probability": "Churn risk (%)",
        "risk_band": "Risk band",
        "segment": "Segment",
        "expected_value_12m": "Expected value, next 12 months",
        "clv_discounted": "Lifetime value (discounted)",
        "next_purchase_date": "Next purchase expected",
        "value_at_risk": "Value at risk",
        "action": "Recommended action",
        "contact_cost": "Contact cost",
        "save_rate": "Save rate (%)",
        "expected_gain": "Expected gain",
        "reason_1": "Why (1)",
        "reason_2": "Why (2)",
        "reason_3": "Why (3)",
        "recency_days": "Days since last order",
        "n_orders": "Orders to date",
        "revenue": "Revenue to date",
        "risk_rank": "Risk rank",
    }
)


def subset(table: Collection[str], *names: str) -> tuple[str, ...]:
    """``names`` in the order given, each checked to be a column of ``table``.

    For a reader that needs part of a table: it names the part where it reads it
    and still has the table's contract behind every name.
    """
    missing = [name for name in names if name not in table]
    if missing:
        raise ValueError(f"not columns of the table: {', '.join(missing)}")
    if len(set(names)) != len(names):
        raise ValueError(f"a column named twice: {', '.join(names)}")
    return names
