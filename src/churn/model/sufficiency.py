"""Refuse data that cannot support a churn model, instead of shipping a meaningless score.

A model trained on 80 customers or on a cutoff where nobody churned still
produces numbers between 0 and 1, and marketing would act on them. These
checks turn that into one clear line saying what is missing.
"""

from __future__ import annotations

import pandas as pd

from churn.config import TrainConfig
from churn.errors import UserError
from churn.schema import (
    CUTOFF,
    LABEL,
    SNAPSHOT_ID_COLUMNS,
    SPLIT,
    TEST_SPLIT,
    TRAIN_SPLIT,
    VALID_SPLIT,
)


def check_training_data(snapshots: pd.DataFrame, config: TrainConfig) -> None:
    """Rows at all, enough customers, enough training cutoffs, both classes at every cutoff."""
    if snapshots.empty:  # `churn features` writes a table without rows or columns then
        raise UserError(
            "the labelled snapshots are empty: no customer has a purchase before any training"
            " cutoff (check the ingested transactions and snapshots.as_of, then rerun"
            " `churn features`)"
        )
    missing = sorted({*SNAPSHOT_ID_COLUMNS, LABEL} - set(snapshots.columns))
    if missing:
        raise UserError(
            f"the labelled snapshots lack the column(s) {', '.join(missing)}"
            " (they are not from `churn features`; rerun it)"
        )
    customers = snapshots["customer_id"].nunique()
    if customers < config.min_customers:
        raise UserError(
            f"only {customers} customers have a purchase in the labelled snapshots; at least"
            f" {config.min_customers} are needed (train.min_customers)"
        )
    train_cutoffs = snapshots.loc[snapshots[SPLIT] == TRAIN_SPLIT, CUTOFF].nunique()
    if train_cutoffs < config.min_train_cutoffs:
        raise UserError(
            f"only {train_cutoffs} training cutoffs fit before the validation cutoff; at least"
            f" {config.min_train_cutoffs} are needed (train.min_train_cutoffs): provide more"
            " history, or lower snapshots.cutoff_every_days or snapshots.min_history_days"
        )
    for split in (VALID_SPLIT, TEST_SPLIT):
        if not (snapshots[SPLIT] == split).any():
            raise UserError(f"no {split} cutoff in the snapshots (check snapshots.* in params)")
    rates = snapshots.groupby(CUTOFF)[LABEL].agg(["mean", "size"])
    for cutoff, row in rates.iterrows():
        day = pd.Timestamp(str(cutoff)).date()
        if row["mean"] in (0.0, 1.0):
            kind = "retained customers" if row["mean"] == 1.0 else "churners"
            raise UserError(
                f"the cutoff {day} has no {kind} among its {int(row['size'])} customers;"
                " a churn model needs both (is the data complete up to as_of?)"
            )
