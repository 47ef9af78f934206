"""The Qini coefficient of a ranking, measured on a campaign's contacted and control customers.

scikit-uplift's ``qini_auc_score`` does the work: the area between the Qini curve
of the ranking and that of a random ranking, divided by the same area of the
best possible ranking (so 0 is random, 1 perfect; a ranking worse than random is
negative). The library calls a scikit-learn helper that warns it is deprecated;
the warning is silenced here, in the one place we call it, and the metric is
checked against a slow textbook computation in tests/outcomes/test_qini.py, so a
library update that changes the number fails a test instead of drifting.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklift.metrics import qini_auc_score


def qini(outcome: np.ndarray, score: np.ndarray, treated: np.ndarray) -> float:
    """Normalised Qini coefficient of ranking customers by ``score`` (high first).

    ``outcome`` is 1 for the good outcome (retained), ``treated`` 1 for contacted
    and 0 for control. Needs both arms; ties in ``score`` are broken as the library does.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return float(
            qini_auc_score(
                np.asarray(outcome, dtype="int64"),
                np.asarray(score, dtype="float64"),
                np.asarray(treated, dtype="int64"),
            )
        )
