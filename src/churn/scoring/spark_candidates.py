"""The budgeted pick's input on Spark (``engine: pyspark``): only who is worth contacting.

A budget pick only ever chooses a positive expected gain with an action
(:func:`churn.scoring.budget_pick.optimal_selection`), and the contact list, the
control group (a hash of each id alone) and the left-out counts are all over those
customers. So the executors compute each score row's action and gain with the
driver's own pandas code (:func:`churn.scoring.targeting.with_gains`, by
``mapInPandas``) and keep the score columns of the rows worth contacting; the driver
gets those back in rank order plus two aggregates (customers scored, the as-of
date), not the score table.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa

from churn.config import TargetingConfig
from churn.scoring.targeting import with_gains, worth_contacting

_RANK = "risk_rank"  # unique per score table: the order of the list


@dataclass(frozen=True)
class Candidates:
    """The score rows worth contacting (rank order) and what the summary needs of the rest."""

    scores: pa.Table  # Arrow, so the driver converts it as it reads Spark's parts
    scored: int  # every customer in the score table
    as_of: pd.Timestamp | None


def spark_candidates(scores: Any, config: TargetingConfig) -> Candidates:
    """The candidates of a Spark score table (a Spark DataFrame in the score schema)."""
    from pyspark.sql import functions as sf

    def keep(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if not batch.empty:
                yield batch[worth_contacting(with_gains(batch, config)).to_numpy()]

    kept = scores.mapInPandas(keep, scores.schema).toArrow().sort_by(_RANK)
    row = scores.agg(sf.count(sf.lit(1)).alias("n"), sf.min("as_of").alias("as_of")).first()
    as_of = pd.Timestamp(row["as_of"]) if row["as_of"] is not None else None
    return Candidates(kept, int(row["n"]), as_of)
