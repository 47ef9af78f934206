"""Training refuses data that cannot support a model, with one line naming the knob."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.config import TrainConfig
from churn.errors import UserError
from churn.model.sufficiency import check_training_data


def _snapshots(n_customers: int, cutoffs: dict[str, str], rate: float = 0.7) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frames = []
    for cutoff, split in cutoffs.items():
        churned = (rng.random(n_customers) < rate).astype("int8")
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": [str(i) for i in range(n_customers)],
                    "cutoff": pd.Timestamp(cutoff),
                    "split": split,
                    "churned": churned,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


CUTOFFS = {
    "2025-01-01": "train",
    "2025-02-01": "train",
    "2025-03-01": "train",
    "2025-06-01": "valid",
    "2025-09-01": "test",
}


def test_enough_data_passes() -> None:
    check_training_data(_snapshots(600, CUTOFFS), TrainConfig())


def test_too_few_customers() -> None:
    with pytest.raises(UserError, match=r"only 100 customers.*train.min_customers"):
        check_training_data(_snapshots(100, CUTOFFS), TrainConfig())


def test_too_few_training_cutoffs() -> None:
    short = {k: v for k, v in CUTOFFS.items() if k != "2025-01-01"}
    with pytest.raises(UserError, match=r"only 2 training cutoffs.*train.min_train_cutoffs"):
        check_training_data(_snapshots(600, short), TrainConfig())


@pytest.mark.parametrize(("rate", "missing"), [(1.0, "retained customers"), (0.0, "churners")])
def test_a_cutoff_without_both_classes(rate: float, missing: str) -> None:
    frame = _snapshots(600, CUTOFFS)
    frame.loc[frame["cutoff"] == pd.Timestamp("2025-02-01"), "churned"] = int(rate)
    with pytest.raises(UserError, match=rf"cutoff 2025-02-01 has no {missing}"):
        check_training_data(frame, TrainConfig())
