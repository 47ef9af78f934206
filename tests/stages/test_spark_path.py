"""``engine: pyspark`` end to end gives the DuckDB path's answers (issue 19, item 3).

A shrunk sample goes through the real CLI twice, once per engine, in two folders
of one temporary project: ingest, features, score and export. The DuckDB side
also trains the model, which the Spark side then uses (training is pandas on
both; what differs is who computes its inputs). Asserted: the same canonical
transactions and quarantine, the same labelled and scoring snapshot tables
(every column, to 1e-9), the same scores (to 1e-9) and the same retention list,
byte for byte. Spark runs on ``local[2]``, one session for the module.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from churn.config import GenerateConfig, IngestConfig, load_params
from churn.data import spark_ingest as spark_ingest_module
from churn.data.generate import generate_shop
from churn.data.ingest import ingest
from churn.data.spark_ingest import spark_ingest
from churn.stages.inputs import read_dataset
from churn.stages.spark_features import PARTITION
from features.test_engines import requires_spark
from nightly_shop import run_cli, write_raw

FIXTURES = Path(__file__).parents[1] / "data" / "fixtures"
# Every quarantine reason but the CSV reader's, a duplicate line, a netted cancellation,
# an id that went through a float, rows after the as-of date.
MESSY_CSV = """Invoice,InvoiceDate,CustomerID,Amount,Country
500001,2024-01-05 10:00:00,12345,20.50,United Kingdom
500002,2024-01-06 11:00:00,,15.00,United Kingdom
500003,not a date,12345,10.00,United Kingdom
500004,2024-01-07 12:00:00,12346,abc,France
500005,2024-01-08 12:00:00,12346,99999999,France
500001,2024-01-05 10:00:00,12345,20.50,United Kingdom
C500006,2024-01-09 09:00:00,12345,-20.50,United Kingdom
500007,2024-01-10 09:00:00, 12347.0 ,0,Germany
500008,2025-06-01 09:00:00,12347,5.00,Germany
500009,1900-01-01 00:00:00,12348,5.00,Germany
500010,2024-02-03T10:00:00+02:00,NULL,7.5,Germany
500011,2024-02-03T10:00:00-05:00,12349,"1.234,50",Spain
,,,,
"""
TOLERANCE = 1e-9
ENGINES = ("duckdb", "pyspark")
NIGHTLY_DAYS_LATER = 21


@pytest.fixture(scope="module")
def spark(shared_spark: Any) -> Any:
    """The run's one local Spark session (tests/conftest.py); the CLI runs reuse it."""
    return shared_spark


def _params(folder: Path, raw: Path, engine: str, tracking: str) -> Path:
    """Every output in ``folder``; a short history and a small model keep it quick."""
    data = folder / "data"
    settings = {
        "engine": engine,
        "paths": {
            "raw_transactions": str(raw),
            **{
                key: str(data / name)
                for key, name in {
                    "transactions": "transactions.parquet",
                    "quarantine": "quarantine.parquet",
                    "ingest_report": "ingest_report.json",
                    "customers": "customers.parquet",
                    "train_features": "train.parquet",
                    "score_features": "score.parquet",
                    "calendar": "calendar.json",
                    "rfm_edges": "rfm_edges.json",
                    "model_dir": "churn_model",
                    "train_run": "train_run.json",
                    "train_metrics": "train_metrics.json",
                    "scores": "scores.parquet",
                    "targets": "retention_targets.csv",
                    "targets_table": "targets.parquet",
                    "targets_xlsx": "retention_targets.xlsx",
                    "export_summary": "retention_targets.summary.json",
                    "save_rates": "save_rates.json",
                    "outcomes_metrics": "outcomes.json",
                    "outcomes_dir": "outcomes",
                    "report": "report.html",
                }.items()
            },
        },
        "snapshots": {"n_train_cutoffs": 3},
        "features": {"btyd_fit_customers": 400, "pnbd_fit_customers": 150},
        "train": {
            "n_estimators": 40,
            "early_stopping_rounds": 10,
            "min_customers": 100,
            "calibration_cutoffs": 2,
        },
        "tracking": {"uri": tracking, "register_model": False, "experiment": "churn-spark"},
        "nightly": {"output_root": str(folder / "nightly"), "experiment": "churn-spark-nightly"},
        "export": {"top_n": 40, "formats": ["csv"]},
        "targeting": {"max_contacts": 40},
    }
    path = folder / "params.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(settings))
    return path


def _run(params: Path, *command: str) -> None:
    assert run_cli("--params", str(params), *command) == 0, command


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, spark: Any) -> Iterator[dict[str, Path]]:
    """The sample through both engines; the data folder of each."""
    root = tmp_path_factory.mktemp("spark_path")
    shop = GenerateConfig(
        seed=5, n_customers=700, start=dt.date(2024, 6, 1), end=dt.date(2026, 10, 1)
    )
    raw = write_raw(generate_shop(shop).transactions, root / "raw.csv")
    tracking = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("CHURN_SPARK_MASTER", raising=False)
        params = {e: _params(root / e, raw, e, tracking) for e in ENGINES}
        for engine in ENGINES:
            _run(params[engine], "ingest")
            _run(params[engine], "features")
        _run(params["duckdb"], "train")
        for name in ("churn_model", "train_run.json"):  # one model scores both
            source = root / "duckdb" / "data" / name
            target = root / "pyspark" / "data" / name
            copy = shutil.copytree if source.is_dir() else shutil.copy2
            copy(source, target)
        for engine in ENGINES:
            _run(params[engine], "score")
            _run(params[engine], "export")
            _run(params[engine], "report")
        # The nightly job on each engine with the same model, three weeks after the
        # pipeline's snapshot (its PSI reference): the features moved, so the drift
        # guards measure real PSI values, and --accept-drift publishes all the same.
        as_of = json.loads((root / "pyspark" / "data" / "calendar.json").read_text())["as_of"]
        later = (dt.date.fromisoformat(as_of) + dt.timedelta(days=NIGHTLY_DAYS_LATER)).isoformat()
        for engine in ENGINES:
            model = str(root / engine / "data" / "churn_model")
            _run(params[engine], "nightly", "--as-of", later, "--model", model, "--accept-drift")
        yield {e: root / e / "data" for e in ENGINES}


def _read(path: Path) -> pd.DataFrame:
    return read_dataset(path) if path.is_dir() else pd.read_parquet(path)


def _same(duck: pd.DataFrame, spark: pd.DataFrame) -> None:
    assert list(spark.columns) == list(duck.columns)
    assert spark.dtypes.to_dict() == duck.dtypes.to_dict()
    pd.testing.assert_frame_equal(
        spark.reset_index(drop=True),
        duck.reset_index(drop=True),
        check_exact=False,
        rtol=TOLERANCE,
        atol=TOLERANCE,
    )


@requires_spark
def test_spark_writes_folders_of_parts(runs: dict[str, Path]) -> None:
    """Spark's outputs are Parquet folders, the snapshots partitioned by cutoff date."""
    spark = runs["pyspark"]
    for name in ("transactions.parquet", "quarantine.parquet", "scores.parquet"):
        assert (spark / name / "_SUCCESS").is_file()
    calendar = json.loads((spark / "calendar.json").read_text())
    folders = sorted(p.name for p in (spark / "train.parquet").glob(f"{PARTITION}=*"))
    expected = [*calendar["train_cutoffs"], calendar["valid_cutoff"], calendar["test_cutoff"]]
    assert folders == [f"{PARTITION}={day}" for day in sorted(expected)]
    assert (spark / "score.parquet" / f"{PARTITION}={calendar['as_of']}").is_dir()


@requires_spark
def test_same_transactions_and_quarantine(runs: dict[str, Path]) -> None:
    duck, spark = (_read(runs[e] / "transactions.parquet") for e in ENGINES)
    order = ["customer_id", "ts", "order_id", "amount"]
    _same(duck.sort_values(order), spark.sort_values(order))
    _same(*(_read(runs[e] / "quarantine.parquet") for e in ENGINES))
    reports = [json.loads((runs[e] / "ingest_report.json").read_text()) for e in ENGINES]
    assert reports[0] == reports[1]


@requires_spark
@pytest.mark.parametrize("table", ["train.parquet", "score.parquet"])
def test_same_feature_tables(runs: dict[str, Path], table: str) -> None:
    duck, spark = (_read(runs[e] / table) for e in ENGINES)
    assert len(duck) > 100
    _same(duck, spark)
    for name in ("calendar.json", "rfm_edges.json"):
        assert (runs["duckdb"] / name).read_text() == (runs["pyspark"] / name).read_text()


@requires_spark
def test_same_scores_and_list(runs: dict[str, Path]) -> None:
    duck, spark = (_read(runs[e] / "scores.parquet") for e in ENGINES)
    # The one column that differs: where each side's copy of the one model lives.
    assert duck["model_uri"].str.endswith("duckdb/data/churn_model").all()
    assert spark["model_uri"].str.endswith("pyspark/data/churn_model").all()
    _same(duck.drop(columns="model_uri"), spark.drop(columns="model_uri"))
    lists = [(runs[e] / "retention_targets.csv").read_bytes() for e in ENGINES]
    assert lists[0].count(b"\n") > 10
    assert lists[0] == lists[1]


@requires_spark
def test_export_brings_back_only_the_targeted(runs: dict[str, Path]) -> None:
    """On Spark the driver reads the pick's columns of the customers worth contacting and
    then the full rows of the targeted ones, not the score table: the targets table holds
    exactly DuckDB's targeted rows and the summary is DuckDB's."""
    duck, spark = (_read(runs[e] / "targets.parquet") for e in ENGINES)
    worth = (duck["expected_gain"] > 0) & (duck["action"] != "No action")
    targeted = duck[duck["targeted"]]
    assert 0 < len(spark) == len(targeted) < worth.sum() < len(duck)
    _same(targeted.drop(columns="model_uri"), spark.drop(columns="model_uri"))
    duck_summary, spark_summary = (
        json.loads((runs[e] / "retention_targets.summary.json").read_text()) for e in ENGINES
    )
    assert spark_summary["scored_customers"] == len(duck) > len(spark)
    assert {**spark_summary, "files": None} == {**duck_summary, "files": None}


@requires_spark
def test_same_report_from_the_parts(runs: dict[str, Path]) -> None:
    """On Spark the report's numbers and charts come from DuckDB aggregating the score
    table's parts (churn.scoring.score_digest), not from the table on the driver; DuckDB's
    path reads its file whole. The same report, but for where each side's model lives."""
    duck, spark = (_report(runs[e] / "report.html") for e in ENGINES)
    assert "bands-picked" in duck
    assert spark.replace("pyspark/data/churn_model", "duckdb/data/churn_model") == duck


def _report(path: Path) -> str:
    """The report, but for matplotlib's clip-path ids: a hash of each chart's unrounded
    coordinates, which move with the last bit of a sum (DuckDB's against pandas')."""
    return re.sub(r"\bp[0-9a-f]{10}\b", "pX", path.read_text())


def _published(data: Path) -> Path:
    """The one run the nightly job published beside ``data``."""
    (folder,) = (data.parent / "nightly").glob("as_of=*")
    return folder


def _unplaced(text: str) -> str:
    """Text that names one engine's folders, as if it named DuckDB's."""
    return text.replace("/pyspark/", "/duckdb/")


@requires_spark
def test_nightly_on_spark_publishes_the_same_run(runs: dict[str, Path]) -> None:
    """`churn nightly` with engine: pyspark (the snapshot and the scores written by Spark,
    PSI from bin counts, the list from the pick columns, the report from aggregates)
    publishes what DuckDB's nightly publishes: the same scores, list, summary and report,
    and the manifest the same guard values and counts."""
    duck, spark = (_published(runs[e]) for e in ENGINES)
    assert (spark / "scores.parquet" / "_SUCCESS").is_file()  # Spark's parts, not a file
    duck_scores, spark_scores = (_read(p / "scores.parquet") for p in (duck, spark))
    assert len(duck_scores) > 100
    _same(duck_scores.drop(columns="model_uri"), spark_scores.drop(columns="model_uri"))
    csv = (duck / "retention_targets.csv").read_bytes()
    assert csv.count(b"\n") > 10
    assert (spark / "retention_targets.csv").read_bytes() == csv
    duck_targets = _read(duck / "targets.parquet")
    targeted = duck_targets[duck_targets["targeted"]]
    _same(
        targeted.drop(columns="model_uri"),
        _read(spark / "targets.parquet").drop(columns="model_uri"),
    )
    summaries = [
        json.loads((p / "retention_targets.summary.json").read_text()) for p in (duck, spark)
    ]
    assert summaries[0] == summaries[1]
    assert _unplaced(_report(spark / "retention_report.html")) == _report(
        duck / "retention_report.html"
    )
    manifests = [json.loads((p / "manifest.json").read_text()) for p in (duck, spark)]
    psi = [m["psi"] for m in manifests]
    assert psi[0]["values"] == psi[1]["values"]
    assert psi[0]["values"]["recency_days"] > 0.1  # measured, and let through
    assert _unplaced(psi[1]["reference"]) == psi[0]["reference"]
    assert [_unplaced(a) for a in manifests[1]["drift_accepted"]] == manifests[0]["drift_accepted"]
    for key in ("rows", "new_orders", "quarantine", "save_rates", "ranking"):
        assert manifests[0][key] == manifests[1][key], key


def _plant_uplift_model(runs: dict[str, Path], outcomes: Path) -> None:
    """A measured uplift model in ``outcomes``, fitted on random arms over the DuckDB
    run's scoring snapshot, for the ranking-by-uplift tests."""
    from churn.outcomes.uplift_model import fit_t_learner, model_folder

    snapshot = _read(runs["duckdb"] / "score.parquet")
    rng = np.random.default_rng(3)
    arms = snapshot.assign(
        treated=rng.random(len(snapshot)) < 0.5,
        retained=(rng.random(len(snapshot)) < 0.6).astype(float),
    )
    fit_t_learner(arms).save(model_folder(outcomes))


@requires_spark
def test_uplift_ranking_on_spark_makes_the_same_list(runs: dict[str, Path], tmp_path: Path) -> None:
    """Ranking by a measured uplift model: the nightly's Spark list adds the uplift column
    on the executors before the pick and fetches the targeted rows; the pandas path
    predicts over the whole snapshot. The same list, summary and targeted rows."""
    from churn.nightly import spark_steps, steps
    from churn.nightly.model import load_pinned

    _plant_uplift_model(runs, tmp_path / "outcomes")
    as_of = dt.date.fromisoformat(
        json.loads((runs["pyspark"] / "calendar.json").read_text())["as_of"]
    )
    made = {}
    for engine in ENGINES:
        data = runs[engine]
        settings = yaml.safe_load((data.parent / "params.yaml").read_text())
        settings["targeting"]["rank_by"] = "uplift"
        settings["paths"]["outcomes_dir"] = str(tmp_path / "outcomes")
        (tmp_path / f"{engine}.yaml").write_text(yaml.safe_dump(settings))
        params = load_params(tmp_path / f"{engine}.yaml")
        loaded = load_pinned(str(data / "churn_model"), params)
        customers = pd.read_parquet(data / "customers.parquet")
        if engine == "duckdb":
            scores, features = _read(data / "scores.parquet"), _read(data / "score.parquet")
            made[engine] = steps.retention_list(
                scores, features, loaded, customers, params, data / "transactions.parquet"
            )
        else:
            report: Any = None  # not read by the list
            ingested = steps.Ingested(report, data / "transactions.parquet", customers)
            run = spark_steps.SparkRun(as_of, params, ingested, None, loaded, tmp_path, tmp_path)
            made[engine] = spark_steps.retention_list(
                run, data / "scores.parquet", data / "score.parquet", as_of
            )
    duck, spark = made["duckdb"], made["pyspark"]
    assert duck.summary["ranking"]["rank_by"] == "uplift"
    assert len(duck.contact_list) > 10
    by_risk = _read(runs["duckdb"] / "targets.parquet")
    picked = duck.targets.loc[duck.targets["targeted"], "customer_id"]
    assert set(by_risk.loc[by_risk["targeted"], "customer_id"]) != set(picked)
    pd.testing.assert_frame_equal(spark.contact_list, duck.contact_list)
    assert spark.summary == duck.summary
    targeted = duck.targets[duck.targets["targeted"]].drop(columns="model_uri")
    _same(targeted, spark.targets.drop(columns="model_uri"))


@requires_spark
def test_a_duckdb_pipelines_snapshot_is_the_spark_nightlys_psi_reference(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    """Switched to Spark after a DuckDB pipeline: the first nightly's PSI reference is the
    pipeline's one-file snapshot, whose nanosecond times Spark cannot read (it failed with
    PARQUET_TYPE_ILLEGAL); it is scored on the driver, as the DuckDB nightly scores it."""
    from churn.nightly import spark_steps, steps
    from churn.nightly.model import load_pinned

    data = runs["pyspark"]
    settings = yaml.safe_load((data.parent / "params.yaml").read_text())
    settings["paths"]["score_features"] = str(runs["duckdb"] / "score.parquet")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(settings))
    params = load_params(tmp_path / "params.yaml")
    loaded = load_pinned(str(data / "churn_model"), params)
    as_of = dt.date.fromisoformat(json.loads((data / "calendar.json").read_text())["as_of"])
    report: Any = None  # not read for the reference
    ingested = steps.Ingested(report, data / "transactions.parquet", pd.DataFrame())
    run = spark_steps.SparkRun(as_of, params, ingested, None, loaded, tmp_path, tmp_path)
    reference, name = spark_steps.psi_reference(run, as_of)
    assert reference is not None and name.startswith(str(runs["duckdb"] / "score.parquet"))
    expected, _ = steps.psi_reference(None, loaded, params, as_of)
    assert expected is not None
    got = pd.read_parquet(reference).sort_values("customer_id", ignore_index=True)
    want = expected.sort_values("customer_id", ignore_index=True)
    np.testing.assert_allclose(got["churn_probability"], want["churn_probability"], rtol=1e-12)


def _both_ingests(spark: Any, source: Path, out: Path, as_of: dt.date | None) -> None:
    """DuckDB's and Spark's ingest of ``source`` agree on every output and the report."""
    config = IngestConfig(max_bad_fraction=1.0)
    duck = ingest(source, config, as_of)
    report = spark_ingest(spark, source, config, as_of, out / "tx", out / "q")
    assert report == duck.report
    tx = read_dataset(out / "tx")
    _same(duck.transactions, tx)  # one small file: one part, in file order
    _same(duck.quarantine, read_dataset(out / "q"))


@requires_spark
def test_messy_exports_ingest_the_same(spark: Any, tmp_path: Path) -> None:
    """Every quarantine reason, row numbers, offsets, decimal commas, dd/mm dates, a BOM
    and CRLF line ends, quoted commas: the same rows kept and set aside, for the same
    reasons, as DuckDB's ingest."""
    messy = tmp_path / "messy.csv"
    messy.write_text(MESSY_CSV)
    _both_ingests(spark, messy, tmp_path / "messy", dt.date(2025, 1, 1))
    _both_ingests(spark, FIXTURES / "online_retail_messy.csv", tmp_path / "retail", None)


@requires_spark
def test_an_export_of_copies_takes_the_shuffle_join(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ``_BROADCAST_COPIES`` later copies the duplicates are joined with a shuffle
    and the outputs sorted back into file order: the same outputs as DuckDB's."""
    monkeypatch.setattr(spark_ingest_module, "_BROADCAST_COPIES", 0)
    messy = tmp_path / "messy.csv"
    messy.write_text(MESSY_CSV)
    _both_ingests(spark, messy, tmp_path / "messy", dt.date(2025, 1, 1))


@requires_spark
def test_lakehouse_folder_and_catalog_table(spark: Any, tmp_path: Path) -> None:
    """A Parquet folder Spark wrote and a catalog table read like the export they hold."""
    raw = spark.read.options(header="true").csv(str(FIXTURES / "online_retail_messy.csv"))
    folder = tmp_path / "lake" / "orders"
    raw.write.parquet(str(folder))
    raw.createOrReplaceTempView("churn_test_orders")
    config = IngestConfig(max_bad_fraction=1.0)
    reports = [
        spark_ingest(spark, source, config, None, tmp_path / f"tx{i}", tmp_path / f"q{i}")
        for i, source in enumerate([folder, Path("churn_test_orders")])
    ]
    assert reports[0].files == [str(folder)] and reports[1].files == ["churn_test_orders"]
    assert reports[0].reasons == reports[1].reasons
    assert reports[0].rows_out == reports[1].rows_out > 0
    _same(*(read_dataset(tmp_path / f"tx{i}").sort_values(["customer_id", "ts"]) for i in (0, 1)))


@requires_spark
def test_spark_pick_counts_consent_over_every_candidate(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    """With consent refused, unknown or missing for some of the riskiest customers, Spark's pick
    (made on the candidates' pick columns, then the targeted rows fetched) leaves out the
    same customers for the same reasons: the same list and summary as DuckDB's."""
    scores = _read(runs["duckdb"] / "scores.parquet").sort_values("risk_rank")
    ids = scores["customer_id"].astype(str).to_numpy()
    consent = pd.array([True] * len(ids), dtype="boolean")
    consent[:5], consent[5:10] = False, pd.NA
    customers = pd.DataFrame(
        {"customer_id": ids, "email": "", "name": "", "country": "", "marketing_consent": consent}
    )
    # ranks 11-15 are missing from the table: not_in_customers_table
    customers.drop(index=range(10, 15)).to_parquet(tmp_path / "customers.parquet", index=False)
    assert all(_export_both(runs, tmp_path, "some")["left_out"].values())
    # Nobody may be contacted: an empty list, and the same reason why on both engines.
    customers.assign(marketing_consent=False).to_parquet(tmp_path / "customers.parquet")
    assert _export_both(runs, tmp_path, "none")["targeted_under_budget"] == 0


def _export_both(runs: dict[str, Path], tmp_path: Path, name: str) -> dict[str, Any]:
    """`churn export --output` on each engine with ``tmp_path``'s customers table; asserts
    the same list and summary, and returns the summary."""
    outputs = {}
    for engine in ENGINES:
        settings = yaml.safe_load((runs[engine].parent / "params.yaml").read_text())
        settings["paths"]["customers"] = str(tmp_path / "customers.parquet")
        params = tmp_path / f"{engine}.yaml"
        params.write_text(yaml.safe_dump(settings))
        outputs[engine] = tmp_path / f"{engine}_{name}.csv"
        _run(params, "export", "--output", str(outputs[engine]))
    duck, spark = (outputs[e].read_bytes() for e in ENGINES)
    assert duck == spark
    summaries = [json.loads(outputs[e].with_suffix(".summary.json").read_text()) for e in ENGINES]
    assert {**summaries[0], "files": None} == {**summaries[1], "files": None}
    return dict(summaries[0])


@requires_spark
def test_rows_numbered_after_a_sort_are_each_numbered_once(spark: Any) -> None:
    """Row numbers after a shuffle (the score table's rank) are 0..n-1, each once: the
    partition sizes are counted on the same rows that are then numbered."""
    from pyspark.sql import functions as sf

    from churn.data.spark_rows import numbered

    n = 300_000
    frame = spark.range(n).withColumn("p", sf.rand(1)).withColumn("id", sf.col("id").cast("string"))
    ordered = frame.orderBy(sf.col("p").desc(), sf.col("id").asc())
    rows = numbered(ordered, "n").select("n").toPandas()["n"]
    assert sorted(rows) == list(range(n))


def _spark_params(runs: dict[str, Path]) -> Any:
    return load_params(runs["pyspark"].parent / "params.yaml")


@requires_spark
def test_a_replay_writes_the_same_folders(
    runs: dict[str, Path], spark: Any, tmp_path: Path
) -> None:
    """Spark names its parts by a random job id; they are renamed part-00000.parquet, ...
    before the folder is swapped in, so the same date ingested and scored again gives the
    same fingerprints (the nightly manifest's) of the transactions and the scores."""
    from churn.model.provenance import file_fingerprint
    from churn.nightly.model import load_pinned
    from churn.stages.spark_score import write_spark_scores

    params = _spark_params(runs)
    loaded = load_pinned(str(runs["pyspark"] / "churn_model"), params)
    raw = runs["pyspark"].parents[1] / "raw.csv"
    for replay in ("first", "again"):
        out = tmp_path / replay
        spark_ingest(spark, raw, params.ingest, None, out / "tx", out / "q")
        write_spark_scores(params, runs["pyspark"] / "score.parquet", loaded, out / "scores")
    for name in ("tx", "q", "scores"):
        first, again = tmp_path / "first" / name, tmp_path / "again" / name
        assert file_fingerprint(first) == file_fingerprint(again), name
        assert sorted(p.name for p in first.iterdir())[:2] == ["_SUCCESS", "part-00000.parquet"]
    published = runs["pyspark"].parent / "nightly"
    for folder in [runs["pyspark"] / "train.parquet", *published.glob("as_of=*/scores.parquet")]:
        names = {p.name for p in folder.rglob("*") if p.is_file()}
        assert names and all(re.fullmatch(r"part-\d{5}\.parquet|_SUCCESS", n) for n in names)


@requires_spark
def test_no_active_customer_is_refused_as_on_duckdb(runs: dict[str, Path], tmp_path: Path) -> None:
    """A date more than the active window after the last order: nobody to score. DuckDB's
    nightly stops at scoring with one error line; on Spark the snapshot folder is written
    (one column-less file) and scoring refuses with the same words, writing nothing."""
    from churn.errors import UserError
    from churn.features import backend
    from churn.nightly.model import load_pinned
    from churn.stages.score import score_snapshot
    from churn.stages.snapshot import build_snapshot
    from churn.stages.spark_features import write_spark_scoring_snapshot
    from churn.stages.spark_score import write_spark_scores

    params = _spark_params(runs)
    transactions = runs["pyspark"] / "transactions.parquet"
    last = _read(transactions)["ts"].max().date()
    empty = last + dt.timedelta(days=params.snapshots.active_window_days + 30)
    duck = load_params(runs["duckdb"].parent / "params.yaml")
    nobody = build_snapshot(runs["duckdb"] / "transactions.parquet", empty, duck)
    assert nobody.empty
    with pytest.raises(UserError) as on_duckdb:  # the DuckDB nightly's score step
        score_snapshot(nobody, load_pinned(str(runs["duckdb"] / "churn_model"), duck), duck)
    con = backend.connect(params.engine, spark_master=params.spark_master)
    table = backend.read_transactions(con, transactions)
    snapshot = tmp_path / "snapshot.parquet"
    rows = write_spark_scoring_snapshot(table, empty, params.snapshots, params.features, snapshot)
    assert rows == 0
    loaded: Any = None  # refused before the model is used
    with pytest.raises(UserError) as on_spark:
        write_spark_scores(params, snapshot, loaded, tmp_path / "scores.parquet")
    assert str(on_spark.value) == str(on_duckdb.value)
    assert not (tmp_path / "scores.parquet").exists()


@requires_spark
def test_export_ranked_by_uplift_brings_back_only_the_targeted(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    """`churn export` ranking by a measured uplift model on Spark: the uplift column is
    added on the executors (churn.outcomes.spark_uplift) and only the targeted rows come
    back, as for the risk ranking; the same list and summary as DuckDB's whole-table one."""
    _plant_uplift_model(runs, tmp_path / "outcomes")
    for engine in ENGINES:
        settings = yaml.safe_load((runs[engine].parent / "params.yaml").read_text())
        settings["targeting"]["rank_by"] = "uplift"
        settings["paths"]["outcomes_dir"] = str(tmp_path / "outcomes")
        for key in ("targets", "targets_table", "targets_xlsx", "export_summary"):
            settings["paths"][key] = str(tmp_path / engine / Path(settings["paths"][key]).name)
        (tmp_path / f"{engine}.yaml").write_text(yaml.safe_dump(settings))
        _run(tmp_path / f"{engine}.yaml", "export")
    duck, spark = tmp_path / "duckdb", tmp_path / "pyspark"
    csv = (duck / "retention_targets.csv").read_bytes()
    assert csv.count(b"\n") > 10
    assert (spark / "retention_targets.csv").read_bytes() == csv
    summaries = [
        json.loads((p / "retention_targets.summary.json").read_text()) for p in (duck, spark)
    ]
    assert summaries[0]["ranking"]["rank_by"] == "uplift"
    assert {**summaries[0], "files": None} == {**summaries[1], "files": None}
    duck_targets = _read(duck / "targets.parquet")
    targeted = duck_targets[duck_targets["targeted"]].drop(columns="model_uri")
    spark_targets = _read(spark / "targets.parquet").drop(columns="model_uri")
    assert len(spark_targets) == len(targeted) < len(duck_targets)
    _same(targeted, spark_targets)
