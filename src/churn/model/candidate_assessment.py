"""Every trained candidate judged on the test cutoff, beside its validation numbers.

The model folder carries all candidates (churn.model.ensemble), so evaluate can
show what the served one beat, and by how much, from the files that were saved:
``candidates.<name>.valid`` is what the choice was made on (the validation
cutoff), ``candidates.<name>.test`` the test cutoff's metrics with the paired
margins of the served model over that candidate (positive: served is better).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from churn.model import evaluate as ev
from churn.model.churn_model import ChurnModel
from churn.progress import SILENT, Progress


def n_candidates(model: ChurnModel) -> int:
    return 0 if model.ensemble is None else len(model.ensemble.candidates)


def assess_candidates(
    model: ChurnModel,
    test: pd.DataFrame,
    served: np.ndarray,
    n_bootstrap: int,
    seed: int,
    shown: Progress = SILENT,
) -> dict[str, Any]:
    """``{name: {"valid": ..., "test": ...}}`` for every candidate; {} for a booster alone."""
    if model.ensemble is None:
        return {}
    y = test["churned"].to_numpy()
    out: dict[str, Any] = {}
    for name, p in model.candidate_probabilities(test).items():
        out[name] = {
            "valid": model.ensemble.candidates[name].valid,
            "test": {
                **ev.classification_metrics(y, p),
                **ev.paired_margins(y, served, p, n_bootstrap, seed, shown),
            },
        }
    return out
