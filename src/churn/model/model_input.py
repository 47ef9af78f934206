"""The one check that rows carry every column a trained model reads.

A model names its inputs when it is trained; rows built under other feature
settings, or a model file whose blend names a part this code does not know,
lack some of them. Scoring such rows is the user's to fix (rebuild the features
or retrain), so it is a one-line error naming the columns, not a traceback from
deep inside a prediction.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from churn.errors import UserError


class MissingFeaturesError(UserError, ValueError):
    """The rows to score lack columns the model reads."""


def require_columns(frame: pd.DataFrame, columns: Iterable[str]) -> None:
    """Raise :class:`MissingFeaturesError` naming every column of ``columns`` not in ``frame``."""
    missing = sorted(set(columns) - set(frame.columns))
    if missing:
        raise MissingFeaturesError(
            f"the rows to score lack columns the model reads: {', '.join(missing)} (the model"
            " was trained on other features: build the features with the params it was"
            " trained with, or retrain it with `churn train`)"
        )
