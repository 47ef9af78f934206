"""The `features` stage on Spark (``engine: pyspark``): snapshot tables written by the executors.

The same features as :mod:`churn.features.tables`, from the same Ibis
expressions, but nothing the size of the tables reaches the driver:

1. One Spark query computes every cutoff's rows (``history_expr`` over all
   cutoffs' window edges), kept on the executors (``persist``).
2. The driver fits each cutoff's BTYD models, in order and warm-started as on
   DuckDB, on the rows of the hashed fit sample only (``features.btyd_fit_customers``
   customers: the ones whose pandas hash is smallest, found with a top-k on
   the executors), and takes each cutoff's RFM quintile edges from an exact
   ``percentile`` aggregate.
3. ``mapInPandas`` ships the fitted models (a few floats each) to the
   executors, which add the BTYD columns and RFM segments to their rows.
4. Spark writes both tables as Parquet folders partitioned by
   ``cutoff_date=YYYY-MM-DD`` (:data:`PARTITION`; the ``cutoff`` column stays in
   the files too).

Driver memory is the fit sample (about 9 numbers per sampled customer and
cutoff) and the edges, whatever the number of customers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from churn.atomic import atomic_dir
from churn.config import FeaturesConfig, SnapshotConfig
from churn.data.spark_parts import fix_part_names
from churn.features.backend import materialized
from churn.features.btyd_features import CutoffFitter, FittedCutoff, sampled_ids
from churn.features.buckets import BucketPlan
from churn.features.segments import RFM_INPUTS, RFMScorer, _cutoff_key
from churn.features.snapshots import Calendar, bucket_table, build_calendar, history_expr
from churn.features.tables import (
    _FIT_COLUMNS,
    FeatureSummary,
    _add_btyd,
    _date_range,
    _lifetime,
)
from churn.schema import CUSTOMER_ID, CUTOFF, LABEL, SCORE_SPLIT, SPLIT

# The folder level each cutoff's rows are written under (hive style, the date as text).
PARTITION = "cutoff_date"
_QUINTILES = "array(0.2, 0.4, 0.6, 0.8)"


def write_spark_feature_tables(
    transactions: ir.Table,
    snapshots: SnapshotConfig,
    features: FeaturesConfig,
    labelled_path: Path,
    scoring_path: Path,
) -> FeatureSummary:
    """Both snapshot tables as partitioned Parquet folders, computed on the executors."""
    first, last, n = _date_range(transactions)
    calendar = build_calendar(snapshots, first, last)
    with _computed(transactions, calendar.labelled(), calendar.as_of, snapshots, features) as (
        history,
        step,
    ):
        return _write(history, step, calendar, n, labelled_path, scoring_path)


def write_spark_scoring_snapshot(
    transactions: ir.Table,
    as_of: dt.date,
    snapshots: SnapshotConfig,
    features: FeaturesConfig,
    target: Path,
) -> int:
    """The scoring snapshot at any ``as_of`` as a partitioned Parquet folder; its rows.

    The Spark twin of :func:`churn.features.tables.build_scoring_snapshot`, for the
    nightly job (``engine: pyspark``): the same rows as the features stage's scoring
    table at that date, written by the executors, never collected to the driver.
    """
    no_labels = pd.DataFrame({CUTOFF: pd.Series(dtype="object"), SPLIT: pd.Series(dtype="str")})
    with _computed(transactions, no_labels, as_of, snapshots, features) as (history, step):
        population = history.filter("in_population")
        return sum(_write_one(population, _transform(step, (LABEL,)), target).values())


@contextlib.contextmanager
def _computed(
    transactions: ir.Table,
    labelled: pd.DataFrame,
    as_of: dt.date,
    snapshots: SnapshotConfig,
    features: FeaturesConfig,
) -> Iterator[tuple[Any, _Step]]:
    """Every cutoff's rows (``labelled``'s and ``as_of``), kept on the executors for the
    block, and the step that adds the BTYD columns and RFM segments to them."""
    backend = ibis.get_backend(transactions)
    scoring = pd.DataFrame({CUTOFF: [as_of], SPLIT: [SCORE_SPLIT]})
    plan = BucketPlan.for_cutoffs([*labelled[CUTOFF], as_of], snapshots, features)
    edges = plan.edge_table([(labelled, True), (scoring, False)])
    with materialized(bucket_table(transactions, plan, as_of)) as running:
        expr = history_expr(running, ibis.memtable(edges), snapshots, features, with_label=True)
        with spark_frame(backend, expr) as frame:
            history = frame.persist()
            try:
                fitter = _fitter(backend, running, snapshots, features)
                fitted = _fit_cutoffs(history, edges, fitter, features)
                scorer = _rfm_scorer(history, features)
                yield history, _Step(fitted, scorer, _numeric_types(expr))
            finally:
                history.unpersist()


@contextlib.contextmanager
def spark_frame(backend: Any, expr: ir.Table) -> Iterator[Any]:
    """``expr`` as a Spark DataFrame (through a temporary view, which registers the
    in-memory tables it reads)."""
    name = f"churn_frame_{uuid.uuid4().hex}"
    backend.create_view(name, expr)
    try:
        yield backend._session.table(name)
    finally:
        backend.raw_sql(f"DROP VIEW IF EXISTS `{name}`")


def _hash_key(ids: pd.Series) -> pd.Series:
    """pandas' id hash (``btyd_features._hashes``) as an order-keeping signed 64-bit key."""
    hashes = pd.util.hash_array(ids.to_numpy(dtype=object), categorize=False)
    return pd.Series((hashes ^ np.uint64(1 << 63)).view(np.int64))


def _fitter(
    backend: Any, running: ir.Table, snapshots: SnapshotConfig, features: FeaturesConfig
) -> CutoffFitter:
    """The BTYD fitter with the samples DuckDB's path draws (``sampled_ids`` of all ids):
    the customers with the smallest hashes, taken by a top-k on the executors."""
    from pyspark.sql import functions as sf

    with spark_frame(backend, running.select(CUSTOMER_ID).distinct()) as ids:
        udf: Any = sf.pandas_udf(_hash_key, "long")  # type: ignore[call-overload]
        key = udf(sf.col(CUSTOMER_ID))
        n_fit = features.btyd_fit_customers
        rows = ids.select(CUSTOMER_ID, key.alias("key")).orderBy("key").limit(n_fit + 1)
        smallest = pd.Series([r[0] for r in rows.collect()], dtype=object)
    if len(smallest) <= n_fit:
        sample = None
    else:
        sample = pa.array(smallest.iloc[:n_fit].tolist(), pa.string())
        smallest = smallest.iloc[:n_fit]
    pnbd = sampled_ids(smallest, min(features.pnbd_fit_customers, n_fit))
    return CutoffFitter(snapshots.horizon_days, sample, pnbd)


def _fit_cutoffs(
    history: Any, edges: pd.DataFrame, fitter: CutoffFitter, features: FeaturesConfig
) -> dict[str, FittedCutoff]:
    """Each cutoff's BTYD fit, oldest first, warm-started as in ``tables._cutoff_pieces``;
    only the fit sample's rows come to the driver."""
    from pyspark.sql import functions as sf

    rows = history.select(*_FIT_COLUMNS)
    if fitter.sample is not None:
        spark = history.sparkSession
        ids = spark.createDataFrame(pd.DataFrame({CUSTOMER_ID: fitter.sample.to_pylist()}))
        rows = rows.join(sf.broadcast(ids), CUSTOMER_ID)
    sample = rows.toPandas()
    keys = sample[CUTOFF].map(_cutoff_key)
    fitted: dict[str, FittedCutoff] = {}
    for cutoff, split in zip(edges[CUTOFF], edges[SPLIT], strict=True):
        key = _cutoff_key(cutoff)
        if split == SCORE_SPLIT:
            fitter.reset()  # as on DuckDB: the scoring snapshot never depends on the others
        fitter.lifetime = _lifetime(features) if split == SCORE_SPLIT else None
        group = sample[keys == key].sort_values(CUSTOMER_ID, kind="stable").reset_index(drop=True)
        fitted[key] = fitter.fit(group)
    return fitted


def _rfm_scorer(history: Any, features: FeaturesConfig) -> RFMScorer:
    """RFM edges per cutoff: exact 20/40/60/80 % percentiles of the active customers
    (linear interpolation, as NumPy's quantile), or the fixed ones from params."""
    fixed: dict[str, Sequence[float]] = {str(k): v for k, v in features.rfm_edges.items()}
    scorer = RFMScorer(fixed_edges=fixed)
    quantiles = [
        f"percentile(CAST({column} AS DOUBLE), {_QUINTILES}) AS {name}"
        for name, column in RFM_INPUTS.items()
    ]
    rows = history.filter("in_population").groupBy(CUTOFF).agg(*[_expr(q) for q in quantiles])
    scorer.edges_ = {}
    for row in rows.collect():
        scorer.edges_[_cutoff_key(row[CUTOFF])] = {
            name: [float(v) for v in (fixed[name] if name in fixed else row[name])]
            for name in RFM_INPUTS
        }
    return scorer


def _expr(sql: str) -> Any:
    from pyspark.sql import functions as sf

    return sf.expr(sql)


def _numeric_types(expr: ir.Table) -> dict[str, str]:
    """The numeric columns' types as the expression declares them. DuckDB's path casts its
    rows to these (``backend.repeated_query``); Spark hands some narrower (int32)."""
    return {
        name: str(dtype.to_numpy()) for name, dtype in expr.schema().items() if dtype.is_numeric()
    }


@dataclass(frozen=True)
class _Step:
    """What the executors need: each cutoff's fitted BTYD models, the RFM edges, the types."""

    fitted: dict[str, FittedCutoff]
    scorer: RFMScorer
    types: dict[str, str]


def _transform(step: _Step, drop: tuple[str, ...]) -> Any:
    """The executors' step: BTYD columns and RFM segments, cutoff by cutoff of each batch."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for rows in batches:
            keys = rows[CUTOFF].map(_cutoff_key)
            for key in keys.unique():
                piece = rows[keys == key].drop(columns=["in_population", *drop])
                piece = piece.reset_index(drop=True).astype(
                    {c: t for c, t in step.types.items() if c in piece.columns}
                )
                _add_btyd(piece, step.fitted[key].predict(piece))
                yield step.scorer.transform(piece)

    return run


def _schema(rows: Any, run: Any) -> Any:
    """The Spark schema of ``run``'s output, from running it on a few rows on the driver."""
    from pyspark.sql.pandas.types import from_arrow_schema

    head = rows.limit(20).toPandas()
    out = pd.concat(list(run(iter([head]))), ignore_index=True)
    return from_arrow_schema(pa.Schema.from_pandas(out, preserve_index=False))


def _write_one(rows: Any, run: Any, target: Path) -> dict[str, int]:
    """``rows`` transformed on the executors into a partitioned folder; rows per cutoff."""
    from pyspark.sql import functions as sf

    with atomic_dir(target) as tmp:
        if rows.isEmpty():
            pd.DataFrame().to_parquet(tmp / "part-empty.parquet", index=False)
            (tmp / "_SUCCESS").touch()
            return {}
        folder = tmp / "data"  # Spark writes into a folder that does not exist yet
        out = rows.mapInPandas(run, _schema(rows, run)).sortWithinPartitions(CUSTOMER_ID)
        out = out.withColumn(PARTITION, sf.date_format(CUTOFF, "yyyy-MM-dd"))
        out.write.partitionBy(PARTITION).parquet(str(folder))
        written = rows.sparkSession.read.parquet(str(folder)).groupBy(PARTITION).count()
        counts = {str(r[0]): int(r[1]) for r in written.collect()}
        fix_part_names(folder)  # a replay of the same date writes the same folder
        for part in folder.iterdir():
            part.replace(tmp / part.name)
        folder.rmdir()
    return counts


def _write(
    history: Any,
    step: _Step,
    calendar: Calendar,
    n_transactions: int,
    labelled_path: Path,
    scoring_path: Path,
) -> FeatureSummary:
    """The labelled cutoffs and the scoring one, each into its folder."""
    population = history.filter("in_population")
    is_scoring = f"{SPLIT} = '{SCORE_SPLIT}'"
    labelled = _write_one(
        population.filter(f"NOT ({is_scoring})"), _transform(step, ()), labelled_path
    )
    scored = _write_one(population.filter(is_scoring), _transform(step, (LABEL,)), scoring_path)
    return FeatureSummary(
        calendar,
        dict(sorted(step.scorer.edges_.items())),
        n_transactions,
        sum(labelled.values()),
        len(labelled),
        sum(scored.values()),
    )
