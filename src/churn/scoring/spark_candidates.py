"""The budgeted pick's input on Spark (``engine: pyspark``): narrow rows, then the picked.

A budget pick only ever chooses a positive expected gain with an action
(:func:`churn.scoring.budget_pick.optimal_selection`), and the left-out counts are
over those customers. So the executors compute each score row's action and gain
with the driver's own pandas code (:func:`churn.scoring.targeting.with_gains`, by
``mapInPandas``) and send back, for the rows worth contacting, only what the pick
needs (:data:`PICK_COLUMNS`: id, rank, gain, cost, action; about 40 bytes a row
instead of every score column), plus two aggregates (customers scored, the as-of
date). The driver picks; :func:`spark_rows_of` then fetches the full score rows of
the picked customers alone (a broadcast of their ids, a filter on the executors).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa

from churn.config import TargetingConfig
from churn.schema import CUSTOMER_ID
from churn.scoring.targeting import with_gains, worth_contacting

_RANK = "risk_rank"  # unique per score table: the order of the list
PICK_COLUMNS = (CUSTOMER_ID, _RANK, "expected_gain", "contact_cost", "action")


@dataclass(frozen=True)
class Candidates:
    """The rows worth contacting (:data:`PICK_COLUMNS`, rank order) and what the summary
    needs of the rest."""

    pick: pa.Table  # Arrow, so the driver converts it as it reads Spark's parts
    scored: int  # every customer in the score table
    as_of: pd.Timestamp | None


def spark_candidates(scores: Any, config: TargetingConfig) -> Candidates:
    """The candidates of a Spark score table (a Spark DataFrame in the score schema)."""
    from pyspark.sql import functions as sf
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    schema = StructType(
        [
            scores.schema[CUSTOMER_ID],
            scores.schema[_RANK],
            StructField("expected_gain", DoubleType()),
            StructField("contact_cost", DoubleType()),
            StructField("action", StringType()),
        ]
    )

    def keep(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if not batch.empty:
                gains = with_gains(batch, config)
                yield gains.loc[worth_contacting(gains).to_numpy(), list(PICK_COLUMNS)]

    kept = scores.mapInPandas(keep, schema).toArrow().sort_by(_RANK)
    row = scores.agg(sf.count(sf.lit(1)).alias("n"), sf.min("as_of").alias("as_of")).first()
    as_of = pd.Timestamp(row["as_of"]) if row["as_of"] is not None else None
    return Candidates(kept, int(row["n"]), as_of)


def spark_rows_of(scores: Any, customer_ids: pd.Series) -> pa.Table:
    """The full score rows of ``customer_ids`` (a few: the pick), in rank order."""
    return rows_with_ids(scores, customer_ids).sort_by(_RANK)


def rows_with_ids(table: Any, customer_ids: pd.Series) -> pa.Table:
    """The rows of the Spark DataFrame ``table`` whose id is in ``customer_ids`` (a few: the
    pick), by a broadcast of the ids and a filter on the executors, in no set order."""
    from pyspark.sql import functions as sf

    if customer_ids.empty:  # nobody wanted: the schema, no rows, no join
        return table.limit(0).toArrow()
    wanted = table.sparkSession.createDataFrame(
        pd.DataFrame({CUSTOMER_ID: customer_ids.astype(str).to_numpy()}),
        f"{CUSTOMER_ID} STRING",
    )
    return table.join(sf.broadcast(wanted), CUSTOMER_ID, "left_semi").toArrow()
