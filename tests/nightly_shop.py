"""A small generated shop with a registered champion and one published nightly run.

Shared by the nightly tests and the hostile-input suite (tests/hostile/): one
LightGBM model is trained and registered as champion in a SQLite MLflow store,
and one first run is published; tests copy that published tree and run the real
command (``churn.cli.main``) against it.
"""

from __future__ import annotations

import datetime as dt
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ibis
import mlflow
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from churn import cli
from churn.config import FeaturesConfig, GenerateConfig, SnapshotConfig, TrackingConfig, TrainConfig
from churn.data.generate import generate_shop
from churn.features.tables import build_feature_tables
from churn.model import tracking
from churn.model.registry import CHAMPION
from churn.model.train import train_model

NAME = "churn-classifier"
FIRST = dt.date(2026, 9, 1)
PIPELINE_AS_OF = dt.date(2026, 8, 1)
TOP_N = 40


@dataclass(frozen=True)
class Shop:
    root: Path
    raw: pd.DataFrame  # the generator's raw export (all dates)
    tracking_uri: str
    published: Path  # an output tree holding the first published run (do not modify)

    @property
    def raw_csv(self) -> Path:
        """The raw export the first run read."""
        return self.root / "raw.csv"


def write_raw(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S")
    return path


def write_params(shop: Shop, folder: Path, raw: Path, **nightly: object) -> Path:
    """A params.yaml whose every path lands in ``folder`` (outputs) or the shared shop."""
    params = {
        "paths": {
            "raw_transactions": str(raw),
            "score_features": str(shop.root / "score.parquet"),
        },
        "tracking": {"uri": shop.tracking_uri, "registered_model": NAME},
        "export": {"top_n": TOP_N},
        "nightly": {"output_root": str(folder / "nightly"), **nightly},
    }
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def run_cli(*args: str) -> int:
    """``churn ARGS`` in process, through the real entry point; returns the exit code."""
    try:
        cli.main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def run_nightly(params: Path, as_of: dt.date, *extra: str) -> int:
    return run_cli("--params", str(params), "nightly", "--as-of", as_of.isoformat(), *extra)


def tree(root: Path) -> dict[str, bytes]:
    """Every published byte under ``root`` (the lock file's pid aside)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def refused(
    params: Path, as_of: dt.date, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str]:
    """Run nightly; return its exit code and its one ``churn: error:`` line (asserted one)."""
    capsys.readouterr()
    code = run_nightly(params, as_of, *extra)
    lines = [line for line in capsys.readouterr().err.splitlines() if "churn: error:" in line]
    assert len(lines) == 1, lines
    return code, lines[0]


def build_shop(root: Path) -> Iterator[Shop]:
    """Generate, train, register the champion and publish the first run (a generator:
    the tracking URI is reset when the caller's fixture ends)."""
    raw = generate_shop(
        GenerateConfig(
            seed=11, n_customers=1_500, start=dt.date(2024, 9, 1), end=dt.date(2026, 10, 1)
        )
    ).transactions
    # The pipeline's own training and scoring tables at its as-of date, from the same export.
    known = raw[raw["CustomerID"] != ""]
    canonical = pd.DataFrame(
        {
            "customer_id": known["CustomerID"].astype(str),
            "order_id": known["Invoice"].astype(str),
            "ts": known["InvoiceDate"].astype("datetime64[us]"),
            "amount": known["Amount"].astype(float),
            "country": known["Country"].astype(str),
        }
    )
    tables = build_feature_tables(
        ibis.memtable(canonical),
        SnapshotConfig(as_of=PIPELINE_AS_OF, n_train_cutoffs=3),
        FeaturesConfig(),
    )
    tables.scoring.to_parquet(root / "score.parquet")
    result = train_model(
        tables.labelled, TrainConfig(n_estimators=40, early_stopping_rounds=10, min_customers=100)
    )
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        config = TrackingConfig(uri=uri, registered_model=NAME, experiment="churn-test")
        tracking.configure(config)
        with mlflow.start_run(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MLflow's hint about integer columns
            version = tracking.log_model(
                result.model, tables.labelled[result.model.features].head(3), config
            )
        assert version is not None
        MlflowClient().set_registered_model_alias(NAME, CHAMPION, version)
        shop = Shop(root, raw, uri, root / "published")
        first = root / "first"
        first.mkdir()
        params = write_params(shop, first, write_raw(raw, shop.raw_csv))
        assert run_nightly(params, FIRST) == 0
        shutil.copytree(first / "nightly", shop.published)
        yield shop
    mlflow.set_tracking_uri(None)


def copy_published(shop: Shop, folder: Path) -> Path:
    """A private copy of the published tree in ``folder``; returns ``folder``."""
    shutil.copytree(shop.published, folder / "nightly")
    return folder
