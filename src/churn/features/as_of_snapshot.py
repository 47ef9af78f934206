"""The as-of cutoff alone (the nightly, `churn score --as-of`): its rows as pandas pieces.

With labelled cutoffs the stage runs one query per cutoff and customer range
over shared running totals (:mod:`churn.features.tables`). The as-of cutoff
alone needs none of that: its totals are one group-by per customer
(:mod:`churn.features.cutoff_totals`), computed once into a temporary table,
and three small reads of it follow:

1. the customer ids, hashed once for the BTYD fit samples (the same customers
   as with the labelled cutoffs: the smallest hashes among everyone with an
   event before ``as_of``);
2. the fit's rows: the sampled customers' BTYD inputs only, in id order (the
   order the fit has always summed them in, so the parameters are the same bits);
3. the active population's rows, in id order, straight into Arrow: the
   inactive customers (a third at 3.3 M) never reach pandas, and nothing goes
   through a temporary file or a pandas row filter.

The RFM edges are fitted on the whole population, then the rows are handed on
in pieces of ``chunk`` customers (one piece for None), predicted and scored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from churn.config import FeaturesConfig, SnapshotConfig
from churn.features.backend import arrow_to_pandas, materialized, stands_alone, to_pandas
from churn.features.btyd_clv import LifetimeSettings
from churn.features.btyd_features import (
    INPUT_COLUMNS,
    CutoffFitter,
    FittedCutoff,
    fit_samples,
)
from churn.features.buckets import BucketPlan
from churn.features.cutoff_totals import cutoff_features
from churn.features.segments import RFM_INPUTS, RFMScorer
from churn.features.snapshots import as_of_events, cutoff_table
from churn.schema import CUSTOMER_ID, CUTOFF

# What the BTYD fit reads of each sampled customer.
_FIT_INPUTS = (CUSTOMER_ID, CUTOFF, *INPUT_COLUMNS)
# What the predictions read of each active customer.
_PREDICT_INPUTS = [CUTOFF, *INPUT_COLUMNS]


def as_of_pieces(
    transactions: ir.Table,
    plan: BucketPlan,
    edges: pd.DataFrame,
    scorer: RFMScorer,
    snapshots: SnapshotConfig,
    features: FeaturesConfig,
    chunk: int | None,
    on_events: Callable[[ir.Table], None] | None = None,
) -> Iterator[tuple[pd.DataFrame, dict[str, Any]]]:
    """The active customers' rows at the one cutoff of ``edges`` (``as_of``), BTYD columns
    and RFM segments added, in id order, ``chunk`` rows a piece; each with the RFM edges.

    ``on_events`` is handed the stored order events, with what the report's KPIs read
    of each purchase (``rfm.order_events(neighbours=True)``), while they exist: the
    nightly job counts its report's purchase facts there rather than grouping and
    sorting the transactions a second time (issue 20).
    """
    as_of = pd.Timestamp(edges[CUTOFF].iloc[0]).date()
    with ExitStack() as held:
        # The order events stored first, then summed: one fused query (group-by, window,
        # group-by) took 9.1 s at 10 M lines where the two took 6.9 s (issue 20).
        stored = ExitStack()
        held.push(stored)  # dropped at the end at the latest
        neighbours = on_events is not None
        events = stored.enter_context(
            materialized(as_of_events(transactions, as_of, neighbours=neighbours))
        )
        totals = held.enter_context(materialized(cutoff_table(events, plan, as_of, edges)))
        if on_events is not None:
            on_events(events)
        if stands_alone(totals):  # DuckDB: ~0.5 GB of events freed before the reads below
            stored.close()
        fitter = _fitter(totals, features, snapshots.horizon_days)
        rows = cutoff_features(
            totals, ibis.memtable(edges), plan.windows(), plan.features.windows_days, snapshots
        )
        fitted = fitter.fit(_fit_rows(rows, fitter.sample))
        population = rows.filter(rows.in_population).drop("in_population").order_by(CUSTOMER_ID)
        active = population.to_pyarrow()
    if active.num_rows == 0:
        return
    yield from _predicted_and_scored(active, fitted, scorer, chunk)


def _predicted_and_scored(
    active: pa.Table, fitted: FittedCutoff, scorer: RFMScorer, chunk: int | None
) -> Iterator[tuple[pd.DataFrame, dict[str, Any]]]:
    """Each piece of ``active`` with its BTYD columns and RFM segments, and the RFM edges.

    The BTYD prediction of a piece reads five numeric columns, taken from Arrow
    without the rest, so it runs on the second core (NumPy and SciPy release the
    GIL) while this thread converts the piece to pandas, fits the RFM edges and
    scores it: those were a third of the step at 3.3 M, the core idle meanwhile.
    """
    slices = _slices(active, chunk)
    with ThreadPoolExecutor(max_workers=1) as pool:
        ahead = pool.submit(fitted.predict, _btyd_inputs(slices[0]))
        rfm = arrow_to_pandas(active.select([CUTOFF, *RFM_INPUTS.values()]))
        rfm_edges = dict(scorer.fit(rfm).edges_)
        del rfm
        for number in range(len(slices)):
            piece = _to_pandas(slices[number], whole=len(slices) == 1)
            scored = scorer.transform(piece)
            btyd = ahead.result()
            if number + 1 < len(slices):
                ahead = pool.submit(fitted.predict, _btyd_inputs(slices[number + 1]))
            _add_btyd(scored, btyd, at=len(piece.columns))
            del piece
            yield scored, rfm_edges


def _fitter(totals: ir.Table, features: FeaturesConfig, horizon_days: int) -> CutoffFitter:
    """BG/NBD and Gamma-Gamma on a hashed sample of ``features.btyd_fit_customers``,
    Pareto/NBD on ``pnbd_fit_customers`` of them, drawn from every customer in ``totals``
    (one row each); lifetime value and the next purchase date on, as for any scoring cutoff."""
    ids = to_pandas(totals.select(CUSTOMER_ID))[CUSTOMER_ID]
    sample, pnbd = fit_samples(ids, features.btyd_fit_customers, features.pnbd_fit_customers)
    del ids
    fitter = CutoffFitter(horizon_days, sample, pnbd)
    fitter.lifetime = LifetimeSettings(
        features.discount_rate_annual, features.clv_months, features.next_purchase_min_p_alive
    )
    return fitter


def _fit_rows(rows: ir.Table, sample: pa.Array | None) -> pd.DataFrame:
    """The fit's inputs of the sampled customers (everyone when None), in id order."""
    if sample is not None:
        ids = ibis.memtable(pa.table({CUSTOMER_ID: sample}))
        rows = rows.filter(rows[CUSTOMER_ID].isin(ids[CUSTOMER_ID]))
    return to_pandas(rows.select(*_FIT_INPUTS).order_by(CUSTOMER_ID))


def _slices(active: pa.Table, chunk: int | None) -> list[pa.Table]:
    """``active`` in pieces of ``chunk`` rows (zero-copy slices); whole when one holds it."""
    if chunk is None or active.num_rows <= chunk:
        return [active]
    return [active.slice(start, chunk) for start in range(0, active.num_rows, chunk)]


def _btyd_inputs(rows: pa.Table) -> pd.DataFrame:
    """What :meth:`FittedCutoff.predict` reads of ``rows``, as pandas (numeric, cheap)."""
    return rows.select(_PREDICT_INPUTS).to_pandas()


def _to_pandas(piece: pa.Table, whole: bool) -> pd.DataFrame:
    """A piece as pandas; the whole table's buffers freed while converting."""
    return arrow_to_pandas(piece) if whole else piece.to_pandas(split_blocks=True)


def _add_btyd(scored: pd.DataFrame, btyd: pd.DataFrame, at: int) -> None:
    """In place, at column ``at`` (right after the snapshot's own columns, before the RFM
    ones, the order they always had): a concat would copy the whole piece."""
    for offset, column in enumerate(btyd.columns):  # BTYD_FEATURES and CLV_COLUMNS
        scored.insert(at + offset, column, btyd[column].to_numpy())
