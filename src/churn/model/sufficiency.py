"""Refuse data that cannot support a churn model, instead of shipping a meaningless score.

A model trained on 80 customers or on a cutoff where nobody churned still
produces numbers between 0 and 1, and marketing would act on them. These
checks turn that into one clear line saying what is missing.
"""

from __future__ import annotations

import pandas as pd

from churn.config import TrainConfig
from churn.errors import UserError
from churn.model.churn_model import LABEL


def check_training_data(snapshots: pd.DataFrame, config: TrainConfig) -> None:
    """Enough customers, enough training cutoffs, and both classes at every cutoff."""
    customers = snapshots["customer_id"].nunique()
    if customers < config.min_customers:
        raise UserError(
            f"only {customers} customers have a purchase in the labelled snapshots; at least"
            f" {config.min_customers} are needed (train.min_customers)"
        )
    train_cutoffs = snapshots.loc[snapshots["split"] == "train", "cutoff"].nunique()
    if train_cutoffs < config.min_train_cutoffs:
        raise UserError(
            f"only {train_cutoffs} training cutoffs fit before the validation cutoff; at least"
            f" {config.min_train_cutoffs} are needed (train.min_train_cutoffs): provide more"
            " history, or lower snapshots.cutoff_every_days or snapshots.min_history_days"
        )
    for split in ("valid", "test"):
        if not (snapshots["split"] == split).any():
            raise UserError(f"no {split} cutoff in the snapshots (check snapshots.* in params)")
    rates = snapshots.groupby("cutoff")[LABEL].agg(["mean", "size"])
    for cutoff, row in rates.iterrows():
        day = pd.Timestamp(str(cutoff)).date()
        if row["mean"] in (0.0, 1.0):
            kind = "retained customers" if row["mean"] == 1.0 else "churners"
            raise UserError(
                f"the cutoff {day} has no {kind} among its {int(row['size'])} customers;"
                " a churn model needs both (is the data complete up to as_of?)"
            )
