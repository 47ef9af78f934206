"""The `features` stage: point-in-time snapshots for training and for scoring."""

from __future__ import annotations

from churn.atomic import write_json
from churn.config import Params
from churn.features import backend
from churn.features.tables import FeatureSummary, write_feature_tables
from churn.stages.inputs import input_file


def features(params: Params) -> FeatureSummary:
    """Labelled cutoffs and the as-of cutoff, with the calendar and RFM edges beside them."""
    con = backend.connect(params.engine, spark_master=params.spark_master)
    transactions = backend.read_transactions(con, input_file(params.paths.transactions, "ingest"))
    write = write_feature_tables
    if params.engine == "pyspark":
        from churn.stages.spark_features import write_spark_feature_tables as write
    summary = write(
        transactions,
        params.snapshots,
        params.features,
        params.paths.train_features,
        params.paths.score_features,
    )
    write_json(summary.calendar.to_dict(), params.paths.calendar)
    write_json(summary.rfm_edges, params.paths.rfm_edges)
    return summary
