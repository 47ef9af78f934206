"""The `churn` command: one subcommand per DVC stage.

This is the only module that reads params.yaml, touches the file system by
path and talks to the user. Everything it calls takes typed config and frames
and returns frames, so the same steps can be driven from a notebook or a test.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import click
import typer

from churn.config import Params, load_params
from churn.errors import UserError

log = logging.getLogger("churn")

app = typer.Typer(
    help=(
        "Churn prediction pipeline: raw transactions in, a ranked, explained retention"
        " list out. Each subcommand is one DVC stage (see dvc.yaml); `dvc repro` runs them"
        " in order."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@dataclass
class _State:
    params_path: Path = Path("params.yaml")
    debug: bool = False

    def params(self) -> Params:
        return load_params(self.params_path)


_state = _State()


@app.callback()
def _root(
    params: Annotated[
        Path, typer.Option("--params", help="Parameter file holding every knob.")
    ] = Path("params.yaml"),
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks and debug logs.")
    ] = False,
) -> None:
    _state.params_path = params
    _state.debug = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
        force=True,
    )
    for noisy in ("alembic", "mlflow", "urllib3", "git", "numexpr"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextmanager
def _step(name: str) -> Iterator[None]:
    started = time.perf_counter()
    log.info("%s: started", name)
    yield
    log.info("%s: done in %.1fs", name, time.perf_counter() - started)


@app.command()
def generate() -> None:
    """Write the seeded synthetic sample (transactions and hidden dropout truth) to data/raw/."""
    from churn.atomic import atomic_path, write_parquet
    from churn.data.generate import generate_shop

    params = _state.params()
    with _step("generate"):
        shop = generate_shop(params.generate)
        with atomic_path(params.paths.raw_transactions) as tmp:
            shop.transactions.to_csv(tmp, index=False, date_format="%Y-%m-%d %H:%M:%S")
        write_parquet(shop.truth, params.paths.truth)
        log.info(
            "generate: %s transaction rows for %s customers -> %s",
            f"{len(shop.transactions):,}",
            f"{len(shop.truth):,}",
            params.paths.raw_transactions,
        )


@app.command()
def ingest() -> None:
    """Read the raw export, map its columns, quarantine bad rows, write canonical Parquet."""
    from churn.atomic import write_json
    from churn.data.customers import ingest_customers
    from churn.data.ingest import IngestOutputs
    from churn.data.ingest import ingest as run_ingest

    params = _state.params()
    paths = params.paths
    with _step("ingest"):
        report = run_ingest(
            paths.raw_transactions,
            params.ingest,
            params.snapshots.as_of,
            IngestOutputs(transactions=paths.transactions, quarantine=paths.quarantine),
        ).report
        report["customers_table"] = ingest_customers(
            params.ingest.customers, params.ingest.csv, paths.customers
        )
        write_json(report, paths.ingest_report)
        log.info(
            "ingest: %s rows in, %s out, %s quarantined %s",
            f"{report['rows_in']:,}",
            f"{report['rows_out']:,}",
            f"{report['rows_quarantined']:,}",
            report["reasons"],
        )


@app.command()
def features() -> None:
    """Point-in-time snapshots: labelled cutoffs for training and the as-of cutoff for scoring."""
    from churn.atomic import write_json
    from churn.features import backend
    from churn.features.tables import write_feature_tables

    params = _state.params()
    with _step("features"):
        con = backend.connect(params.engine, spark_master=params.spark_master)
        transactions = backend.read_transactions(con, params.paths.transactions)
        summary = write_feature_tables(
            transactions,
            params.snapshots,
            params.features,
            params.paths.train_features,
            params.paths.score_features,
        )
        write_json(summary.calendar.to_dict(), params.paths.calendar)
        write_json(summary.rfm_edges, params.paths.rfm_edges)
        log.info(
            "features: %s transactions in; %s labelled rows over %d cutoffs;"
            " %s rows to score at %s",
            f"{summary.n_transactions:,}",
            f"{summary.n_labelled:,}",
            summary.n_labelled_cutoffs,
            f"{summary.n_scoring:,}",
            summary.calendar.as_of,
        )


def _read_parquet(path: Path, produced_by: str) -> Any:
    import pandas as pd

    if not path.exists():
        raise UserError(f"{path} not found (run `churn {produced_by}` first)")
    return pd.read_parquet(path)


@app.command()
def train() -> None:
    """Train LightGBM out of time, log the run to MLflow, register and save the model."""
    import mlflow

    from churn.atomic import atomic_dir, write_json
    from churn.model import tracking
    from churn.model.train import lightgbm_params, train_model

    params = _state.params()
    snapshots = _read_parquet(params.paths.train_features, "features")
    with _step("train"):
        result = train_model(snapshots, params.train)
        example = snapshots[result.model.features].head(5)
        example = example.astype({c: "string" for c in example.select_dtypes("category")})
        tracking.configure(params.tracking)
        with mlflow.start_run() as run:
            mlflow.set_tags(
                {
                    "git_commit": tracking.git_commit(),
                    "data_fingerprint": tracking.file_fingerprint(params.paths.transactions),
                    "params_hash": tracking.params_hash(params),
                    "stage": "train",
                }
            )
            mlflow.log_params({**lightgbm_params(params.train), **params.snapshots.model_dump()})
            metrics = {
                "valid_auc": result.valid_auc,
                "best_iteration": result.best_iteration,
                "n_train": result.n_train,
                "n_valid": result.n_valid,
            }
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
            version = tracking.log_model(result.model, example, params.tracking)
        with atomic_dir(params.paths.model_dir) as tmp:
            tracking.save_model(result.model, example, tmp / "model")
            for item in (tmp / "model").iterdir():
                item.rename(tmp / item.name)
            (tmp / "model").rmdir()
        write_json(metrics, params.paths.train_metrics)
        write_json(
            {
                "run_id": run.info.run_id,
                "tracking_uri": tracking.tracking_uri(params.tracking),
                "registered_model": params.tracking.registered_model,
                "version": version,
            },
            params.paths.train_run,
        )
        log.info(
            "train: %s training rows, %s validation rows, %d trees, valid AUC %.4f, run %s,"
            " model version %s",
            f"{result.n_train:,}",
            f"{result.n_valid:,}",
            result.best_iteration,
            result.valid_auc,
            run.info.run_id,
            version,
        )


@app.command()
def evaluate() -> None:
    """Metrics and plots on the test cutoff (the latest complete label window)."""
    import mlflow

    from churn.atomic import write_json
    from churn.model import tracking
    from churn.model.assessment import assess
    from churn.scoring.score import load_churn_model

    params = _state.params()
    snapshots = _read_parquet(params.paths.train_features, "features")
    with _step("evaluate"):
        model = load_churn_model(str(params.paths.model_dir))
        result = assess(model, snapshots, params.evaluate, params.export.top_n)
        metrics = result.metrics
        write_json(metrics, params.paths.eval_metrics)
        run_info = json.loads(params.paths.train_run.read_text())
        tracking.configure(params.tracking)
        with mlflow.start_run(run_id=run_info["run_id"]):
            tracking.log_assessment(metrics, result.curves, params.paths.plots_dir)
        log.info(
            "evaluate: %s test rows at %s, base rate %.3f: ROC-AUC %.4f, Brier %.4f; %s",
            f"{metrics['n']:,}",
            metrics["cutoff"],
            metrics["base_rate"],
            metrics["roc_auc"],
            metrics["brier"],
            ", ".join(
                f"{name} {m['roc_auc']:.4f}/{m['brier']:.4f}"
                for name, m in metrics["baselines"].items()
            ),
        )


@app.command()
def score(
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="MLflow model URI or directory, e.g. models:/churn-classifier@champion."
            " Default: paths.model_dir.",
        ),
    ] = None,
) -> None:
    """Churn probability for every active customer at the as-of date."""
    from churn.atomic import write_parquet
    from churn.scoring.score import load_churn_model, score_customers

    params = _state.params()
    snapshot = _read_parquet(params.paths.score_features, "features")
    model_uri = model or str(params.paths.model_dir)
    with _step("score"):
        scores = score_customers(snapshot, load_churn_model(model_uri), model_uri)
        write_parquet(scores, params.paths.scores)
        log.info(
            "score: %s customers in, %s scored at %s",
            f"{len(snapshot):,}",
            f"{len(scores):,}",
            scores["as_of"].iloc[0].date(),
        )


@app.command()
def export(
    top: Annotated[
        int | None, typer.Option("--top", help="How many customers to list (default export.top_n).")
    ] = None,
) -> None:
    """Write the retention target list (riskiest customers first) as CSV."""
    from churn.atomic import write_csv
    from churn.scoring.export import retention_targets

    params = _state.params()
    scores = _read_parquet(params.paths.scores, "score")
    top_n = top if top is not None else params.export.top_n
    if top_n <= 0:
        raise UserError("--top must be a positive number of customers")
    with _step("export"):
        targets = retention_targets(scores, top_n)
        write_csv(targets, params.paths.targets)
        log.info(
            "export: %s scored customers in, %s targets -> %s",
            f"{len(scores):,}",
            f"{len(targets):,}",
            params.paths.targets,
        )


@app.command()
def backtest(
    steps: Annotated[
        int, typer.Option("--steps", help="How many as-of dates to replay, one cutoff step apart.")
    ] = 4,
) -> None:
    """Retrain and evaluate at earlier as-of dates; write a stability table (metric per cutoff)."""
    import datetime as dt

    from churn.atomic import write_csv
    from churn.features import backend
    from churn.features.snapshots import default_as_of
    from churn.model.backtest import backtest as run_backtest

    params = _state.params()
    if steps < 1:
        raise UserError("--steps must be at least 1")
    con = backend.connect(params.engine, spark_master=params.spark_master)
    transactions = backend.read_transactions(con, params.paths.transactions)
    last = transactions.ts.max().to_pandas()
    as_of = params.snapshots.as_of or default_as_of(dt.datetime.fromisoformat(str(last)))
    with _step("backtest"):
        table = run_backtest(
            transactions, as_of, steps, params.snapshots, params.features, params.train
        )
        write_csv(table.round(6), params.paths.backtest)
        log.info(
            "backtest: %d as-of dates -> %s\n%s",
            len(table),
            params.paths.backtest,
            table[
                ["test_cutoff", "roc_auc", "brier", "bgnbd_roc_auc", "recency_roc_auc"]
            ].to_string(index=False),
        )


PROMOTION_REFUSED_EXIT = 3


@app.command()
def promote() -> None:
    """Move alias `champion` to the challenger if it is at least as good on the test cutoff.

    Both models are scored on the same rows. Exit 0 when promoted, 3 when the
    champion stays (so a scheduler can tell the two apart).
    """
    from mlflow.tracking import MlflowClient

    from churn.model import tracking
    from churn.model.churn_model import LABEL
    from churn.model.registry import promote as run_gate
    from churn.scoring.score import load_churn_model

    params = _state.params()
    snapshots = _read_parquet(params.paths.train_features, "features")
    test = snapshots[snapshots["split"] == "test"]
    if test.empty or test[LABEL].nunique() < 2:
        raise UserError("the test cutoff needs both churners and retained customers to compare")
    tracking.configure(params.tracking)
    decision = run_gate(
        MlflowClient(),
        params.tracking.registered_model,
        test,
        load_churn_model,
        params.promote.auc_tolerance,
        params.promote.brier_tolerance,
    )
    verdict = "promoted" if decision.promoted else "kept the champion"
    print(
        f"{params.tracking.registered_model} v{decision.challenger_version}: {verdict}:"
        f" {decision.reason}"
    )
    if not decision.promoted:
        raise typer.Exit(PROMOTION_REFUSED_EXIT)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and exit code 2."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        # Without standalone mode click returns typer.Exit's code instead of exiting.
        code = app(args=args, standalone_mode=False)
        if isinstance(code, int) and code != 0:
            sys.exit(code)
    except UserError as exc:
        if debug:
            raise
        print(f"churn: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        print("churn: aborted", file=sys.stderr)
        sys.exit(130)
