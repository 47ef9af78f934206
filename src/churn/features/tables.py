"""Assemble the two snapshot tables the pipeline trains and scores on.

The labelled table stacks every training, validation and test cutoff; the
scoring table is the single as-of cutoff. Both go through exactly the same
feature and segment code, so training and serving cannot drift apart: they are
pieces of one pass over one bucket table (``feature_pieces``), which the CLI
streams to Parquet a cutoff at a time (``write_feature_tables``).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from churn.atomic import atomic_path, write_parquet
from churn.config import FeaturesConfig, SnapshotConfig
from churn.errors import UserError
from churn.features import rfm
from churn.features.backend import arrow_to_pandas, limit_memory, materialized, to_pandas
from churn.features.btyd_features import CutoffFitter, sample_threshold
from churn.features.buckets import BucketPlan
from churn.features.segments import RFMScorer
from churn.features.snapshots import Calendar, bucket_table, build_calendar, population_expr

SCORE_SPLIT = "score"


@dataclass(frozen=True)
class FeatureTables:
    labelled: pd.DataFrame
    scoring: pd.DataFrame
    calendar: Calendar
    rfm_edges: dict[str, Any]
    n_transactions: int


def _date_range(transactions: ir.Table) -> tuple[dt.datetime, dt.datetime, int]:
    bounds = transactions.aggregate(
        first=transactions.ts.min(), last=transactions.ts.max(), n=transactions.count()
    ).to_pandas()
    n = int(bounds["n"].iloc[0])
    if n == 0:
        raise UserError("the transactions table is empty (check the ingest report)")
    first = pd.Timestamp(bounds["first"].iloc[0]).to_pydatetime()
    last = pd.Timestamp(bounds["last"].iloc[0]).to_pydatetime()
    return first, last, n


def _in_pieces(batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> Iterator[pa.Table]:
    """Consecutive batches of a result sorted by cutoff, regrouped into one table per cutoff.

    Batches come as the engine typed them (DuckDB sums integers into HUGEINT);
    each is cast to the expression's schema, as ``to_pyarrow`` would.
    """
    pending: list[pa.Table] = []
    current: object = None
    for batch in batches:
        table = pa.Table.from_batches([batch]).cast(schema)
        if table.num_rows == 0:
            continue
        cutoffs = table["cutoff"]
        for value in pc.unique(cutoffs).to_pylist():
            part = table.filter(pc.equal(cutoffs, pa.scalar(value, cutoffs.type)))
            if value != current and pending:
                yield pa.concat_tables(pending)
                pending = []
            current = value
            pending.append(part)
    if pending:
        yield pa.concat_tables(pending)


def _fit_history(
    totals: ir.Table,
    history: ir.Table,
    horizon_days: int,
    fit_customers: int,
    scratch: Path,
) -> dict[Any, Path]:
    """BTYD columns of the active population, fitted per cutoff on everyone with history.

    The history streams one cutoff at a time (oldest first, so each fit warm-starts
    from the previous one), and each cutoff's population rows go to a Parquet file
    in ``scratch``, sorted by customer like the feature query's rows: neither the
    whole history nor all the fitted columns are ever in memory at once.
    """
    ids = to_pandas(totals.select("customer_id").distinct())["customer_id"]
    fitter = CutoffFitter(horizon_days, sample_threshold(ids, fit_customers))
    del ids
    history = history.order_by(["cutoff", "customer_id"])
    files: dict[Any, Path] = {}
    for table in _in_pieces(history.to_pyarrow_batches(), history.schema().to_pyarrow()):
        group = arrow_to_pandas(table)
        fitted = fitter.features(group)
        keep = group["in_population"].to_numpy(dtype=bool)
        part = pd.concat([group.loc[keep, ["customer_id"]], fitted[keep]], axis=1)
        path = scratch / f"btyd_{len(files)}.parquet"
        part.reset_index(drop=True).to_parquet(path, index=False)
        files[group["cutoff"].iloc[0]] = path
    return files


def feature_pieces(
    transactions: ir.Table,
    calendar: Calendar,
    snapshots: SnapshotConfig,
    features: FeaturesConfig,
) -> Iterator[tuple[pd.DataFrame, dict[str, Any]]]:
    """The snapshot rows one cutoff at a time, oldest first, the scoring cutoff last.

    One bucket table serves every cutoff, labelled and scoring alike, computed
    once (a DuckDB temp table). Two queries read it, both sorted by (cutoff,
    customer) and streamed a cutoff at a time: the BTYD inputs of everyone with
    history (fitted as they arrive, :func:`_fit_history`), then every feature
    of the active population. Only one cutoff's rows are in pandas at a time;
    DuckDB's own memory is bounded by ``features.memory_limit`` and spills
    beyond it. Each piece gets its BTYD columns and RFM segments, and comes
    with the RFM edges fitted on it.
    """
    labelled = calendar.labelled()
    scoring = pd.DataFrame({"cutoff": [calendar.as_of], "split": [SCORE_SPLIT]})
    plan = BucketPlan.for_cutoffs([*labelled["cutoff"], calendar.as_of], snapshots, features)
    cut_buckets, cut = (
        ibis.memtable(frame) for frame in plan.cutoff_tables([(labelled, True), (scoring, False)])
    )
    scorer = RFMScorer(fixed_edges={str(k): v for k, v in features.rfm_edges.items()})
    with (
        materialized(bucket_table(transactions, plan, calendar.as_of)) as totals,
        tempfile.TemporaryDirectory(prefix="churn-btyd-") as scratch,
    ):
        fitted = _fit_history(
            totals,
            rfm.history_inputs(totals, cut_buckets, cut, snapshots),
            snapshots.horizon_days,
            features.btyd_fit_customers,
            Path(scratch),
        )
        rows = population_expr(totals, cut_buckets, cut, snapshots, features, with_label=True)
        rows = rows.order_by(["cutoff", "customer_id"])
        for table in _in_pieces(rows.to_pyarrow_batches(), rows.schema().to_pyarrow()):
            piece = arrow_to_pandas(table)
            cutoff = piece["cutoff"].iloc[0]
            btyd = pd.read_parquet(fitted.pop(cutoff))
            if not btyd["customer_id"].equals(piece["customer_id"]):
                raise RuntimeError(f"BTYD rows do not line up with the snapshot at {cutoff}")
            piece = pd.concat([piece, btyd.drop(columns="customer_id")], axis=1)
            yield scorer.fit(piece).transform(piece), dict(scorer.edges_)


def _stack(pieces: list[pd.DataFrame]) -> pd.DataFrame:
    if not pieces:
        return pd.DataFrame()
    return pd.concat(pieces, ignore_index=True) if len(pieces) > 1 else pieces[0]


@dataclass(frozen=True)
class FeatureSummary:
    """What :func:`write_feature_tables` wrote, for the log and the calendar/edges files."""

    calendar: Calendar
    rfm_edges: dict[str, Any]
    n_transactions: int
    n_labelled: int
    n_labelled_cutoffs: int
    n_scoring: int


def _split_pieces(
    transactions: ir.Table, snapshots: SnapshotConfig, features: FeaturesConfig
) -> tuple[Calendar, int, dict[str, Any], Iterator[tuple[bool, pd.DataFrame]]]:
    """Calendar, row count, the RFM edges (filled as pieces go by) and (is_scoring, piece)."""
    first, last, n = _date_range(transactions)
    calendar = build_calendar(snapshots, first, last)
    limit_memory(ibis.get_backend(transactions), features.memory_limit)
    edges: dict[str, Any] = {}

    def pieces() -> Iterator[tuple[bool, pd.DataFrame]]:
        for piece, piece_edges in feature_pieces(transactions, calendar, snapshots, features):
            edges.update(piece_edges)
            if (piece["split"] == SCORE_SPLIT).all():
                yield True, piece.drop(columns="churned")
            else:
                yield False, piece

    return calendar, n, edges, pieces()


def build_feature_tables(
    transactions: ir.Table, snapshots: SnapshotConfig, features: FeaturesConfig
) -> FeatureTables:
    """Both snapshot tables in memory (tests, notebooks); the CLI streams them to disk."""
    calendar, n, edges, pieces = _split_pieces(transactions, snapshots, features)
    labelled: list[pd.DataFrame] = []
    scoring: list[pd.DataFrame] = []
    for is_scoring, piece in pieces:
        (scoring if is_scoring else labelled).append(piece)
    return FeatureTables(
        labelled=_stack(labelled),
        scoring=_stack(scoring),
        calendar=calendar,
        rfm_edges=edges,
        n_transactions=n,
    )


def write_feature_tables(
    transactions: ir.Table,
    snapshots: SnapshotConfig,
    features: FeaturesConfig,
    labelled_path: Path,
    scoring_path: Path,
) -> FeatureSummary:
    """The same tables as :func:`build_feature_tables`, written one cutoff at a time.

    The labelled table never exists whole in memory (at 10 M transactions it is
    ~1.5 GB of pandas, and stacking the pieces would double that): each piece is
    appended to a Parquet file as it arrives, under the first piece's schema.
    Both files appear atomically, and only when everything succeeded.
    """
    calendar, n, edges, pieces = _split_pieces(transactions, snapshots, features)
    n_labelled = n_cutoffs = n_scoring = 0
    with atomic_path(labelled_path) as tmp:
        writer: pq.ParquetWriter | None = None
        scoring: pd.DataFrame | None = None
        try:
            for is_scoring, piece in pieces:
                if is_scoring:
                    scoring = piece
                    continue
                table = pa.Table.from_pandas(piece, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table.cast(writer.schema))
                n_labelled += len(piece)
                n_cutoffs += 1
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            pd.DataFrame().to_parquet(tmp, index=False)
        if scoring is None:
            scoring = pd.DataFrame()
        n_scoring = len(scoring)
        write_parquet(scoring, scoring_path)
    return FeatureSummary(calendar, edges, n, n_labelled, n_cutoffs, n_scoring)
