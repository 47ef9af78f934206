"""Row weights that decay with the age of a row's cutoff: recent behaviour counts more.

Stacked training cutoffs span a year or more, and customers' behaviour drifts
across it (a cohort ages, a catalogue or a price changes), so the oldest
cutoffs describe a business that has moved on. A weight of ``0.5 ** (age /
half_life)``, with ``age`` counted in cutoffs before the newest one in the
rows, keeps every cutoff (the old ones still teach the shape of churn) but lets
the recent ones decide where they disagree. Counting in cutoffs, not days,
keeps the knob's meaning when ``snapshots.cutoff_every_days`` changes.

The weights are scaled to mean 1, so a penalty chosen per row (the logistic
part's C, LightGBM's ``min_child_samples`` hessian sums) keeps its strength.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churn.schema import CUTOFF


def cutoff_weights(rows: pd.DataFrame, half_life: float | None) -> np.ndarray | None:
    """One weight per row of ``rows`` (None: every row the same, no half-life set)."""
    if half_life is None:
        return None
    cutoffs = pd.to_datetime(rows[CUTOFF])
    newest_first = np.sort(cutoffs.unique())[::-1]
    age = pd.Series(np.arange(len(newest_first), dtype=float), index=newest_first)
    weight = np.power(0.5, cutoffs.map(age).to_numpy(dtype=float) / half_life)
    return np.asarray(weight / weight.mean(), dtype=float)
