"""A stage's input files: a missing one is a line naming the stage that writes it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from churn.config import Params
from churn.errors import PathError, UserError

log = logging.getLogger(__name__)


def input_file(path: Path, produced_by: str) -> Path:
    """``path`` if it is a file; else one line saying which stage writes it (Parquet reads a
    folder as a dataset, so a folder here would give a confusing error later on)."""
    if not path.exists():
        raise UserError(f"{path} not found (run `churn {produced_by}` first)")
    if path.is_dir():
        raise PathError(
            f"{path} is a folder where the file `churn {produced_by}` writes is expected"
            " (check the paths in params.yaml)"
        )
    return path


def read_parquet(path: Path, produced_by: str) -> pd.DataFrame:
    """The Parquet file another stage wrote (see :func:`input_file`)."""
    return pd.read_parquet(input_file(path, produced_by))


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
    return pd.read_parquet(input_file(path, produced_by), columns=list(columns))


def run_name(scores: pd.DataFrame, path: Path) -> str:
    """A score table's as-of date, or its file name when it has none (no rows)."""
    if len(scores) and "as_of" in scores:
        return str(pd.Timestamp(scores["as_of"].iloc[0]).date())
    return path.stem
