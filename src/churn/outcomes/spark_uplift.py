"""Ranking by uplift on Spark (``engine: pyspark``): the uplift column added on the executors.

The pandas ranking (:func:`churn.outcomes.ranking.ranking_in_effect`) predicts every
customer's uplift from the whole scoring snapshot on the driver. Here the uplift
model (two LightGBM boosters and a few lists: it travels inside the task) predicts
each snapshot batch by ``mapInPandas`` and the column is joined onto the Spark score
table by id, so the budgeted pick's candidates (churn.scoring.spark_candidates) are
ranked by it without any table reaching the driver. The prediction is row by row,
so a batch gives each customer the number the whole frame gives.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd

from churn.outcomes.uplift_model import UPLIFT_COLUMN, UpliftModel
from churn.schema import CUSTOMER_ID


def with_spark_uplift(scores: Any, snapshot: Any, model: UpliftModel) -> Any:
    """The Spark score table ``scores`` with ``predicted_uplift`` from ``model`` on the
    Spark scoring snapshot ``snapshot`` (null, as NaN on pandas, for an id it lacks)."""

    def predict(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if not batch.empty:
                yield pd.DataFrame(
                    {
                        CUSTOMER_ID: batch[CUSTOMER_ID].astype(str).to_numpy(),
                        UPLIFT_COLUMN: model.predict(batch),
                    }
                )

    uplift = snapshot.mapInPandas(predict, f"{CUSTOMER_ID} STRING, {UPLIFT_COLUMN} DOUBLE")
    return scores.join(uplift, CUSTOMER_ID, "left")
