"""Assemble the two snapshot tables the pipeline trains and scores on.

The labelled table stacks every training, validation and test cutoff; the
scoring table is the single as-of cutoff. Both go through exactly the same
feature and segment code, so training and serving cannot drift apart: they are
pieces of one pass over one bucket table (``feature_pieces``), which the CLI
streams to Parquet a cutoff at a time (``write_feature_tables``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from churn.atomic import atomic_path
from churn.config import FeaturesConfig, SnapshotConfig
from churn.errors import UserError
from churn.features.as_of_snapshot import as_of_pieces
from churn.features.backend import (
    arrow_to_pandas,
    concurrent_queries,
    limit_memory,
    materialized,
    repeated_query,
    to_pandas,
)
from churn.features.btyd_clv import LifetimeSettings
from churn.features.btyd_features import CutoffFitter, fit_samples
from churn.features.buckets import BucketPlan
from churn.features.piece_writer import PieceWriter
from churn.features.rfm import customers
from churn.features.segments import RFMScorer
from churn.features.snapshots import (
    Calendar,
    bucket_table,
    build_calendar,
    history_expr,
)
from churn.progress import tracked
from churn.schema import CUSTOMER_ID, CUTOFF, LABEL, SCORE_SPLIT, SPLIT


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


def feature_pieces(
    transactions: ir.Table,
    labelled: pd.DataFrame,
    as_of: dt.date,
    snapshots: SnapshotConfig,
    features: FeaturesConfig,
) -> Iterator[tuple[pd.DataFrame, dict[str, Any]]]:
    """The snapshot rows one cutoff at a time, oldest first, the scoring cutoff last.

    One table of running totals per (customer, bucket) serves every cutoff,
    labelled and scoring alike, computed once (a DuckDB temp table). Per
    cutoff, one query reads it, one row per customer and window edge: every
    feature of everyone with history; all of them feed that cutoff's BTYD fit
    (warm-started from the previous cutoff), the active population is kept. One
    query per cutoff rather than one for all: its joins hold one cutoff's
    customers, so they stay inside ``features.memory_limit``, and only one
    cutoff's rows are ever in pandas. Each piece gets its BTYD columns and RFM
    segments, and comes with the RFM edges fitted on it.

    Without labelled cutoffs (the nightly, `churn score --as-of`) the running totals
    are pure overhead: the one cutoff's totals are a group-by per customer instead
    (:mod:`churn.features.as_of_snapshot`), the same rows without a label column.
    """
    plan, edges, scorer = _plan(labelled, as_of, snapshots, features)
    if labelled.empty:  # one cutoff: one group-by per customer, no running totals
        yield from as_of_pieces(
            transactions, plan, edges, scorer, snapshots, features, features.chunk_customers
        )
        return
    with materialized(bucket_table(transactions, plan, as_of), shared=True) as running:
        chunks = _code_ranges(_n_customers(running), features.chunk_customers)
        fitters = partial(_fitters, running, snapshots, features)
        with contextlib.ExitStack() as stack:
            history_of = [
                stack.enter_context(query)
                for query in _history_queries(running, edges, chunks, snapshots, features)
            ]
            # Several ranges run one after another, each on all of the engine's threads.
            at_once = 1
            if len(history_of) == 1:
                at_once = stack.enter_context(concurrent_queries(ibis.get_backend(running)))
            yield from _cutoff_pieces(history_of, edges, fitters, scorer, features, at_once)


def _plan(
    labelled: pd.DataFrame, as_of: dt.date, snapshots: SnapshotConfig, features: FeaturesConfig
) -> tuple[BucketPlan, pd.DataFrame, RFMScorer]:
    """The buckets and edge table of the labelled cutoffs and ``as_of``, and the RFM scorer."""
    scoring = pd.DataFrame({CUTOFF: [as_of], SPLIT: [SCORE_SPLIT]})
    plan = BucketPlan.for_cutoffs([*labelled[CUTOFF], as_of], snapshots, features)
    edges = plan.edge_table([(labelled, True), (scoring, False)])
    scorer = RFMScorer(fixed_edges={str(k): v for k, v in features.rfm_edges.items()})
    return plan, edges, scorer


_Query = Callable[[pd.DataFrame], pd.DataFrame]


def _n_customers(running: ir.Table) -> int:
    """How many customers the running totals hold: their codes number them from 0."""
    top = to_pandas(running.aggregate(top=running.code.max()))["top"].iloc[0]
    return 0 if pd.isna(top) else int(top) + 1


def _fitters(
    running: ir.Table, snapshots: SnapshotConfig, features: FeaturesConfig
) -> tuple[CutoffFitter, CutoffFitter]:
    """The BTYD fitters of the labelled cutoffs and of the scoring cutoff: BG/NBD and
    Gamma-Gamma on a hashed sample of ``features.btyd_fit_customers``, Pareto/NBD on the
    first ``pnbd_fit_customers`` of it. The customer ids are read once, for both.

    The scoring cutoff has a fitter of its own, which starts cold: BG/NBD's (a, b) sit
    on a flat ridge where the optimum found depends on the start by up to ~1e-2 in
    P(alive) on small data, and the scoring snapshot must be the same whether built
    with the labelled cutoffs (`churn features`) or alone (`churn score --as-of`,
    nightly). It also adds lifetime value and the next purchase date, for people.
    """
    ids = to_pandas(customers(running))[CUSTOMER_ID]
    sample, pnbd = fit_samples(ids, features.btyd_fit_customers, features.pnbd_fit_customers)
    del ids
    scoring = CutoffFitter(snapshots.horizon_days, sample, pnbd)
    scoring.lifetime = _lifetime(features)
    return CutoffFitter(snapshots.horizon_days, sample, pnbd), scoring


def _history_rows(
    mine: ir.Table, source: ir.Table, snapshots: SnapshotConfig, features: FeaturesConfig
) -> ir.Table:
    """Every feature, and the label, of ``source``'s customers at the cutoffs in ``mine``."""
    expr = history_expr(source, mine, snapshots, features, with_label=True)
    return expr.order_by("customer_id")


def _history_queries(
    running: ir.Table,
    edges: pd.DataFrame,
    chunks: list[tuple[int | None, int | None]],
    snapshots: SnapshotConfig,
    features: FeaturesConfig,
) -> list[contextlib.AbstractContextManager[_Query]]:
    """One compiled query per customer range, rerun for every cutoff (``edges`` holds the
    cutoffs' window edges): every feature and the label of that range's customers."""
    backend = ibis.get_backend(running)
    rows = partial(_history_rows, snapshots=snapshots, features=features)
    return [
        repeated_query(backend, partial(rows, source=_within(running, *c)), edges) for c in chunks
    ]


def _cutoff_pieces(
    history_of: list[_Query],
    edges: pd.DataFrame,
    fitters: Callable[[], tuple[CutoffFitter, CutoffFitter]],
    scorer: RFMScorer,
    features: FeaturesConfig,
    at_once: int,
) -> Iterator[tuple[pd.DataFrame, dict[str, Any]]]:
    """Each cutoff in turn (:func:`_in_turn`): its rows, BTYD fit and RFM segments. With
    one customer range the next cutoffs' queries (``at_once`` of them) run while this one
    is fitted, and the fitters are made while the first ones run; with several ranges
    each cutoff is handed on in chunks (``_in_chunks``)."""
    cutoffs = [edges[edges["cutoff_i"] == number] for number in _in_turn(edges)]
    with contextlib.ExitStack() as stack:
        histories: Iterator[pd.DataFrame | None] = repeat(None)
        if len(history_of) == 1:
            histories = stack.enter_context(_prefetched(history_of[0], cutoffs, at_once))
        labelled, scoring = fitters()
        steps = zip(cutoffs, histories, strict=False)
        for mine, history in tracked(steps, "features", "cutoffs", len(cutoffs)):
            fitter = scoring if mine[SPLIT].iloc[0] == SCORE_SPLIT else labelled
            if history is None:
                queries = [partial(run, mine) for run in history_of]
                yield from _in_chunks(queries, fitter, scorer, features.chunk_customers)
                continue
            piece = _population(history)
            if piece is None:
                continue
            _add_btyd(piece, fitter.fit(history).predict(piece))
            del history
            yield scorer.fit(piece).transform(piece), dict(scorer.edges_)


def _in_turn(edges: pd.DataFrame) -> list[int]:
    """The cutoff numbers in the order they are computed: the labelled ones oldest first
    (each BTYD fit starts from the previous one's), the scoring cutoff among them
    halfway.

    Its fits start cold and it alone adds lifetime values, so it takes longest to
    fit and score. Last, that ran after every query had finished, one core idle (~2 s
    at 10 M transactions); second, the small early queries kept ahead of it ran out
    before it was done. Halfway, the queries of the larger cutoffs after it cover it,
    and the first rows waited for are still the oldest cutoff's, the fewest.
    """
    scoring = edges.loc[edges[SPLIT] == SCORE_SPLIT, "cutoff_i"].tolist()
    labelled = edges.loc[edges[SPLIT] != SCORE_SPLIT, "cutoff_i"].tolist()
    half = len(labelled) // 2
    return [*labelled[:half], *scoring, *labelled[half:]]


def _lifetime(features: FeaturesConfig) -> LifetimeSettings:
    return LifetimeSettings(
        features.discount_rate_annual, features.clv_months, features.next_purchase_min_p_alive
    )


@contextlib.contextmanager
def _prefetched(
    run: Callable[[pd.DataFrame], pd.DataFrame], frames: list[pd.DataFrame], at_once: int
) -> Iterator[Iterator[pd.DataFrame]]:
    """``run(frame)`` for each frame in turn on ``at_once`` worker threads, started with
    the block and kept one frame ahead of them.

    The engine computes the next cutoffs while Python fits and scores this one
    (DuckDB and NumPy release the GIL), so neither waits for the other. With only
    ``at_once`` runs handed out, a worker that finished sat idle until this thread
    took its rows, one core unused while a long cutoff (the scoring one, ~1.7 s at
    10 M transactions) was fitted; one more keeps both busy. At most ``at_once + 2``
    cutoffs' rows exist at once: those handed out and the one being fitted. The
    workers run behind this thread (:func:`_behind_the_fits`).
    """
    ahead = at_once + 1
    with ThreadPoolExecutor(
        max_workers=at_once, thread_name_prefix="churn-cutoff", initializer=_behind_the_fits
    ) as pool:
        pending = deque(pool.submit(run, frame) for frame in frames[:ahead])

        def results() -> Iterator[pd.DataFrame]:
            for frame in frames[ahead:]:
                done = pending.popleft().result()
                pending.append(pool.submit(run, frame))
                yield done
                del done
            while pending:
                yield pending.popleft().result()

        try:
            yield results()
        finally:
            for future in pending:
                future.cancel()


# How much nicer (lower in priority) the query workers are than the thread fitting BTYD.
_QUERY_NICENESS = 5


def _behind_the_fits() -> None:
    """Lower the calling worker thread's priority below the fitting thread's (Linux only).

    The fits are a chain, each cutoff's starting from the last, on one thread; the
    queries only need to stay ahead of it. At equal priority three threads shared
    two cores evenly and the fits took ~30 % longer (BTYD in all 5.8 s against 4.4 s
    at 10 M transactions, the stage no faster); behind them, the queries use what
    the fits leave. Elsewhere a native thread id is no process id to renice.
    """
    if sys.platform != "linux":
        return
    tid = threading.get_native_id()
    try:
        niceness = os.getpriority(os.PRIO_PROCESS, tid) + _QUERY_NICENESS
        os.setpriority(os.PRIO_PROCESS, tid, min(niceness, 19))
    except OSError:  # a sandbox that forbids it: equal priority is only slower
        return


# What a cutoff's BTYD fit and RFM edges read, for every customer with history.
_FIT_COLUMNS = (
    CUSTOMER_ID,
    CUTOFF,
    "n_orders",
    "n_purchase_days",
    "revenue",
    "tenure_days",
    "recency_days",
    "avg_order_value",
    "in_population",
)


def _population(rows: pd.DataFrame) -> pd.DataFrame | None:
    """The active customers of a cutoff's rows (None when there are none)."""
    keep = rows["in_population"].to_numpy(dtype=bool)
    if not keep.any():
        return None
    # Drop first: a column drop shares the data (copy-on-write), the row filter copies.
    return rows.drop(columns="in_population")[keep].reset_index(drop=True)


def _add_btyd(piece: pd.DataFrame, btyd: pd.DataFrame) -> None:
    """In place: a concat would copy the whole piece."""
    for column in btyd.columns:  # BTYD_FEATURES, and CLV_COLUMNS on the scoring cutoff
        piece[column] = btyd[column].to_numpy()


def _code_ranges(n_customers: int, chunk: int) -> list[tuple[int | None, int | None]]:
    """[lo, hi) ranges of customer code (``rfm.running_totals``) of at most ``chunk`` each.

    Codes number the customers 0..n-1 in id order, so consecutive ranges hand
    the rows on in the unchunked order.
    """
    if n_customers <= chunk:
        return [(None, None)]
    starts = list(range(chunk, n_customers, chunk))
    return list(zip([None, *starts], [*starts, None], strict=True))


def _within(running: ir.Table, lo: int | None, hi: int | None) -> ir.Table:
    if lo is not None:
        running = running.filter(running.code >= lo)
    if hi is not None:
        running = running.filter(running.code < hi)
    return running


def _in_chunks(
    queries: Sequence[Callable[[], pd.DataFrame]],
    fitter: CutoffFitter,
    scorer: RFMScorer,
    chunk: int,
) -> Iterator[tuple[pd.DataFrame, dict[str, Any]]]:
    """One cutoff, run as one query per range of customers, handed on in pieces.

    Each query aggregates only its customers' buckets, so the engine's hash
    tables stay small (one query for 8.6 M customers ran DuckDB out of memory
    at 2 GB, even writing straight to Parquet). The fit and the RFM edges need
    the whole cutoff, but only eight columns: those stay in memory while the
    rows wait in a temporary Parquet file, read back ``chunk`` at a time,
    predicted, scored and handed on. The result is the unchunked one, in pieces.
    """
    folder = Path(tempfile.mkdtemp(prefix="churn-cutoff-"))
    path = folder / "history.parquet"
    narrow: list[pd.DataFrame] = []
    try:
        with PieceWriter(path) as writer:
            for query in queries:
                rows = query()
                if not rows.empty:
                    writer.write(rows)
                    narrow.append(rows[list(_FIT_COLUMNS)].copy())
                del rows
        if not narrow:
            return
        schema = pq.read_schema(path)
        history = pd.concat(narrow, ignore_index=True)
        del narrow
        fitted = fitter.fit(history)
        population = history[history["in_population"].to_numpy(dtype=bool)]
        del history
        if population.empty:
            return
        edges = dict(scorer.fit(population).edges_)
        del population
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk):
            piece = _population(arrow_to_pandas(pa.Table.from_batches([batch], schema)))
            if piece is not None:
                _add_btyd(piece, fitted.predict(piece))
                yield scorer.transform(piece), edges
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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
        cutoffs = feature_pieces(
            transactions, calendar.labelled(), calendar.as_of, snapshots, features
        )
        for piece, piece_edges in cutoffs:
            edges.update(piece_edges)
            # Oldest cutoff first, as before the scoring cutoff was computed halfway.
            ordered = sorted(edges.items())
            edges.clear()
            edges.update(ordered)
            if (piece[SPLIT] == SCORE_SPLIT).all():
                yield True, piece.drop(columns=LABEL)
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

    Neither table exists whole in memory (at 10 M transactions the labelled one
    is ~1.5 GB of pandas, and stacking the pieces would double that): each piece
    is appended to its Parquet file as it arrives, under the first piece's schema.
    Both files appear atomically, and only when everything succeeded.
    """
    calendar, n, edges, pieces = _split_pieces(transactions, snapshots, features)
    cutoffs: set[object] = set()
    with atomic_path(labelled_path) as tmp, atomic_path(scoring_path) as scoring_tmp:
        with PieceWriter(tmp) as writer, PieceWriter(scoring_tmp) as scoring:
            for is_scoring, piece in pieces:
                if is_scoring:  # one piece, or several when the cutoff is chunked
                    scoring.write(piece)
                else:
                    writer.write(piece)
                    cutoffs.add(piece["cutoff"].iloc[0])
        for written, path in ((writer, tmp), (scoring, scoring_tmp)):
            if not written.started:
                pd.DataFrame().to_parquet(path, index=False)
    return FeatureSummary(calendar, edges, n, writer.rows, len(cutoffs), scoring.rows)


def build_scoring_snapshot(
    transactions: ir.Table,
    as_of: dt.date,
    snapshots: SnapshotConfig,
    features: FeaturesConfig,
    on_events: Callable[[ir.Table], None] | None = None,
) -> pd.DataFrame:
    """The scoring snapshot for any as-of date, through the very code `features` runs.

    `churn score --as-of`, `churn explain` and `churn nightly` replay a past (or
    later) date without the labelled cutoffs, which cost far more than one.
    The rows come as one piece: the snapshot is whole in memory anyway, so
    pieces of ``features.chunk_customers`` would only add a copy to stack them.
    ``on_events``: see :func:`as_of_pieces`.
    """
    limit_memory(ibis.get_backend(transactions), features.memory_limit)
    no_labels = pd.DataFrame({CUTOFF: pd.Series(dtype="object"), SPLIT: pd.Series(dtype="str")})
    plan, edges, scorer = _plan(no_labels, as_of, snapshots, features)
    pieces = as_of_pieces(transactions, plan, edges, scorer, snapshots, features, None, on_events)
    return _stack([piece for piece, _ in pieces])
