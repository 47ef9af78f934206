"""A stage's input files: a missing one is a line naming the stage that writes it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from churn.config import Params
from churn.errors import PathError, UserError
from churn.schema import CUSTOMER_ID, CUTOFF, SCORE_COLUMNS, subset

log = logging.getLogger(__name__)

# Nanoseconds on DuckDB's path (pandas' unit, in the snapshot and the scores); Spark
# writes microseconds. The same dates either way.
(NEXT_PURCHASE,) = subset(SCORE_COLUMNS, "next_purchase_date")


def is_spark_dataset(path: Path) -> bool:
    """A folder of Parquet parts that Spark wrote (``engine: pyspark``): it marks one
    finished write with ``_SUCCESS``."""
    return path.is_dir() and (path / "_SUCCESS").is_file()


def input_file(path: Path, produced_by: str) -> Path:
    """``path`` if it is a file (or a Parquet folder Spark wrote); else one line saying which
    stage writes it (Parquet reads any folder as a dataset, so another folder here would
    give a confusing error later on)."""
    if not path.exists():
        raise UserError(f"{path} not found (run `churn {produced_by}` first)")
    if path.is_dir() and not is_spark_dataset(path):
        raise PathError(
            f"{path} is a folder where the file `churn {produced_by}` writes is expected"
            " (check the paths in params.yaml)"
        )
    return path


def read_parquet(path: Path, produced_by: str) -> pd.DataFrame:
    """The Parquet file another stage wrote (see :func:`input_file`)."""
    path = input_file(path, produced_by)
    return read_dataset(path) if path.is_dir() else pd.read_parquet(path)


def read_dataset(folder: Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A Spark-written folder as the file DuckDB's path writes: the ``key=value`` folder
    names are not columns (the cutoff is in the rows), and rows come in the file's order
    (snapshots by cutoff, then customer; scores by rank; anything else as the parts hold
    them, e.g. the quarantine in file order)."""
    table = pq.read_table(folder, columns=list(columns) if columns else None, partitioning=None)
    return dataset_frame(table)


def dataset_frame(table: pa.Table) -> pd.DataFrame:
    """Rows of a Spark-written table (its parts, or collected as Arrow) as DuckDB's path
    has them: pandas' dates, and sorted as :func:`read_dataset` says."""
    frame = table.to_pandas()
    if NEXT_PURCHASE in frame.columns:
        frame[NEXT_PURCHASE] = frame[NEXT_PURCHASE].astype("datetime64[ns]")
    order: list[str] = []  # other tables: the parts' order (Spark wrote them sorted)
    if "risk_rank" in frame.columns:  # a score table
        order = ["risk_rank"]
    elif CUTOFF in frame.columns and CUSTOMER_ID in frame.columns:  # a snapshot table
        order = [CUTOFF, CUSTOMER_ID]
    if order:
        frame = frame.sort_values(order, kind="stable").reset_index(drop=True)
    return frame


def labelled_snapshots(params: Params) -> pd.DataFrame:
    """The features stage's labelled snapshots (train, evaluate and promote read them)."""
    return read_parquet(params.paths.train_features, "features")


def optional_input(path: Path, what: str, produced_by: str, stage: str) -> Path | None:
    """An input file the stage can do without and reads with the engine: None (and a
    warning) when it is missing."""
    if not path.exists():
        log.warning("%s: %s not found, leaving out %s", stage, path, what)
        return None
    return input_file(path, produced_by)


def read_optional_parquet(
    path: Path, columns: Sequence[str], what: str, produced_by: str, stage: str
) -> pd.DataFrame | None:
    """An input the stage can do without: None (and a warning) when the file is missing."""
    if not path.exists():
        log.warning("%s: %s not found, leaving out %s", stage, path, what)
        return None
    path = input_file(path, produced_by)
    if path.is_dir():
        return read_dataset(path, columns)
    return pd.read_parquet(path, columns=list(columns))


def run_name(scores: pd.DataFrame, path: Path) -> str:
    """A score table's as-of date, or its file name when it has none (no rows)."""
    if len(scores) and "as_of" in scores:
        return str(pd.Timestamp(scores["as_of"].iloc[0]).date())
    return path.stem
