"""Batch scoring on the executors (``engine: pyspark``): the score table without the driver.

:func:`churn.scoring.score.score_customers` on pandas, applied by ``mapInPandas`` to
each batch of the scoring snapshot: the model (a LightGBM booster held as text,
a calibrator and a few arrays, no pickle file) travels inside the task, so every
executor scores its own rows. The rank is global, so it comes from Spark's own
sort (riskiest first, ties by customer id, as on pandas) and a row number that
needs no single-partition window (``churn.data.spark_sources.numbered``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pyarrow as pa

from churn.config import ScoringConfig
from churn.data.spark_rows import numbered
from churn.model.churn_model import ChurnModel
from churn.model.identity import ModelIdentity
from churn.schema import CUSTOMER_ID, SCORE_COLUMNS
from churn.scoring.score import score_customers

_RANK = "risk_rank"
_PROBABILITY = "churn_probability"


def spark_scores(
    snapshot: Any, model: ChurnModel, identity: ModelIdentity, config: ScoringConfig
) -> Any:
    """The score table of a Spark scoring snapshot, as a Spark DataFrame in rank order."""
    from pyspark.sql import functions as sf
    from pyspark.sql.pandas.types import from_arrow_schema

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if not batch.empty:
                yield score_customers(batch, model, identity, config)

    head = snapshot.limit(20).toPandas()
    example = score_customers(head, model, identity, config)
    schema = from_arrow_schema(pa.Schema.from_pandas(example, preserve_index=False))
    scored = snapshot.mapInPandas(run, schema)  # computed twice: once to count, once to write
    ordered = scored.orderBy(sf.col(_PROBABILITY).desc(), sf.col(CUSTOMER_ID).asc())
    ranked = numbered(ordered.drop(_RANK), "__row").withColumn(_RANK, sf.col("__row") + 1)
    return ranked.select(*SCORE_COLUMNS).orderBy(_RANK)
