"""``engine: pyspark`` against DuckDB, stage by stage, on one generated export.

    nice .venv/bin/python benchmarks/spark.py                      # 10 M transactions
    nice .venv/bin/python benchmarks/spark.py --transactions 500000  # a few minutes

Why: issue 19 item 4. The Spark path exists for data that outgrows one machine;
on one machine it is slower, and this says by how much and where. Both engines
run in the same process on the same raw CSV written by the product's generator
(``churn.data.generate``, about 3.1 rows per customer), through the very
functions the stages call:

- ingest: ``churn.data.ingest.ingest`` / ``churn.data.spark_ingest.spark_ingest``;
- features: ``write_feature_tables`` / ``write_spark_feature_tables`` (12 labelled
  cutoffs and the scoring one, BTYD fits on the hashed sample, RFM segments);
- score: ``score_customers`` on the pandas snapshot / ``spark_scores`` written by
  Spark, with one model trained once (small LightGBM) on DuckDB's labelled table.

The budgeted pick, the list and the report run on the driver from the scores for
both engines (the same code), so they are not compared. Spark runs on
``--master`` (default ``local[2]``); the ratio column is Spark / DuckDB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from churn.config import (
    FeaturesConfig,
    GenerateConfig,
    IngestConfig,
    ScoringConfig,
    SnapshotConfig,
    TrainConfig,
)
from churn.data.generate import generate_shop
from churn.data.ingest import IngestOutputs, ingest
from churn.data.spark_ingest import spark_ingest
from churn.features import backend
from churn.features.tables import write_feature_tables
from churn.model.identity import ModelIdentity
from churn.model.train import train_model
from churn.scoring.score import score_customers
from churn.scoring.spark_score import spark_scores
from churn.stages.inputs import read_dataset
from churn.stages.spark_features import PARTITION, write_spark_feature_tables
from churn.stages.training_rows import training_snapshots

ROWS_PER_CUSTOMER = 3.07  # the generator's default shop (61,422 rows for 20,000 customers)
TRAIN_ROWS = 1_000_000  # the model only has to exist; training is not compared
SPARK_CONF = {"spark.driver.memory": "6g", "spark.sql.shuffle.partitions": "8"}


def _timed(label: str, seconds: dict[str, float], run: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = run()
    seconds[label] = time.perf_counter() - started
    print(f"  {label}: {seconds[label]:.1f}s", flush=True)
    return result


def write_export(n_transactions: int, folder: Path) -> tuple[Path, int]:
    """The generator's raw CSV with about ``n_transactions`` rows; (path, rows)."""
    n_customers = max(1_000, math.ceil(n_transactions / ROWS_PER_CUSTOMER))
    raw = generate_shop(GenerateConfig(seed=19, n_customers=n_customers)).transactions
    path = folder / "transactions.csv"
    pacsv.write_csv(pa.Table.from_pandas(raw.astype(str), preserve_index=False), path)
    return path, len(raw)


def run_duckdb(raw: Path, out: Path, train: TrainConfig) -> tuple[dict[str, float], Any]:
    """The DuckDB path; its timings and the model both paths score with."""
    seconds: dict[str, float] = {}
    tx = out / "transactions.parquet"
    outputs = IngestOutputs(tx, out / "quarantine.parquet")
    _timed("ingest", seconds, lambda: ingest(raw, IngestConfig(), None, outputs))
    con = backend.connect("duckdb")
    table = backend.read_transactions(con, tx)
    snapshots, features = SnapshotConfig(), FeaturesConfig()
    train_path, score_path = out / "train.parquet", out / "score.parquet"
    _timed(
        "features",
        seconds,
        lambda: write_feature_tables(table, snapshots, features, train_path, score_path),
    )
    # A hashed sample of customers (train.max_rows' reader): 10 M lines make ~40 M labelled
    # rows, ~19 GB as one frame, which the OOM killer took on a 24 GB machine.
    model = train_model(training_snapshots(train_path, TRAIN_ROWS), train).model
    identity = ModelIdentity("benchmark")

    def score() -> None:
        scores = score_customers(pd.read_parquet(score_path), model, identity)
        scores.to_parquet(out / "scores.parquet", index=False)

    _timed("score", seconds, score)
    return seconds, model


def run_spark(raw: Path, out: Path, master: str, model: Any) -> dict[str, float]:
    """The Spark path on ``master``, scoring with DuckDB's model."""
    seconds: dict[str, float] = {}
    con = _timed(
        "session start",
        seconds,
        lambda: backend.connect("pyspark", spark_master=master, spark_conf=SPARK_CONF),
    )
    spark = con._session
    tx, quarantine = out / "transactions", out / "quarantine"
    jobs = spark.sparkContext.statusTracker()
    before = len(jobs.getJobIdsForGroup())
    _timed(
        "ingest", seconds, lambda: spark_ingest(spark, raw, IngestConfig(), None, tx, quarantine)
    )
    # Spark's cost at small sizes is per job: say how many ingest ran.
    print(f"  ingest ran {len(jobs.getJobIdsForGroup()) - before} Spark jobs", flush=True)
    table = backend.read_transactions(con, tx)
    snapshots, features = SnapshotConfig(), FeaturesConfig()
    train_path, score_path = out / "train", out / "score"
    _timed(
        "features",
        seconds,
        lambda: write_spark_feature_tables(table, snapshots, features, train_path, score_path),
    )

    def score() -> None:
        snapshot = spark.read.parquet(str(score_path)).drop(PARTITION)
        scores = spark_scores(snapshot, model, ModelIdentity("benchmark"), ScoringConfig())
        scores.write.parquet(str(out / "scores"))

    _timed("score", seconds, score)
    return seconds


def check_same(duck: Path, spark: Path) -> float:
    """The largest absolute difference between the two score tables' probabilities."""
    a = pd.read_parquet(duck / "scores.parquet")
    b = read_dataset(spark / "scores")
    assert len(a) == len(b), (len(a), len(b))
    merged = a.merge(b, on="customer_id", suffixes=("_duck", "_spark"))
    return float((merged["churn_probability_duck"] - merged["churn_probability_spark"]).abs().max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transactions", type=int, default=10_000_000)
    parser.add_argument("--master", default=backend.DEFAULT_SPARK_MASTER)
    args = parser.parse_args()
    # Small on purpose: the model only has to exist; training is the same on both engines.
    train = TrainConfig(n_estimators=30, early_stopping_rounds=5, refit_full=False)
    with tempfile.TemporaryDirectory(prefix="churn-bench-spark-") as scratch:
        root = Path(scratch)
        started = time.perf_counter()
        raw, rows = write_export(args.transactions, root)
        print(f"{rows:,} raw rows in {time.perf_counter() - started:.0f}s ({dt.date.today()})")
        (root / "duckdb").mkdir()
        (root / "spark").mkdir()
        print("duckdb:", flush=True)
        duck, model = run_duckdb(raw, root / "duckdb", train)
        print(f"spark ({args.master}):", flush=True)
        spark = run_spark(raw, root / "spark", args.master, model)
        gap = check_same(root / "duckdb", root / "spark")
        stages = ("ingest", "features", "score")
        print(f"\n{'stage':<14}{'duckdb s':>10}{'spark s':>10}{'ratio':>8}")
        for stage in stages:
            ratio = spark[stage] / duck[stage]
            print(f"{stage:<14}{duck[stage]:>10.1f}{spark[stage]:>10.1f}{ratio:>7.1f}x")
        total_d, total_s = (
            sum(t[s] for s in ("ingest", "features", "score")) for t in (duck, spark)
        )
        print(f"{'total':<14}{total_d:>10.1f}{total_s:>10.1f}{total_s / total_d:>7.1f}x")
        print(f"spark session start {spark['session start']:.1f}s (not in the total)")
        print(f"largest churn probability difference: {gap:.2e}")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
