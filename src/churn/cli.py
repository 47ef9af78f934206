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
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

from churn.config import Params, check_date, load_params
from churn.errors import PathError, UserError, describe_os_error, is_disk_full
from churn.progress import quiet_library_bars

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
    quiet_library_bars()


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
    """Read the raw export, map its columns, quarantine bad rows, write canonical Parquet.

    The four outputs (transactions, quarantine, customers, report) are published
    together once every step succeeded; a failure leaves the previous ones as they were.
    """
    from churn.data.ingest_stage import IngestTargets, run_ingest_stage

    params = _state.params()
    paths = params.paths
    with _step("ingest"):
        report = run_ingest_stage(
            paths.raw_transactions,
            params.ingest,
            params.snapshots.as_of,
            IngestTargets(
                transactions=paths.transactions,
                quarantine=paths.quarantine,
                customers=paths.customers,
                report=paths.ingest_report,
            ),
        )
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
        transactions = backend.read_transactions(
            con, _input_file(params.paths.transactions, "ingest")
        )
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


def _input_file(path: Path, produced_by: str) -> Path:
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


def _read_parquet(path: Path, produced_by: str) -> Any:
    import pandas as pd

    return pd.read_parquet(_input_file(path, produced_by))


@app.command()
def train() -> None:
    """Train LightGBM out of time, log the run to MLflow, register and save the model."""
    import mlflow

    from churn.atomic import atomic_dir, write_json
    from churn.model import registration, tracking
    from churn.model.model_record import TRAIN_RUN_KEY
    from churn.model.run_context import run_context, snapshot_as_of
    from churn.model.train import lightgbm_params, train_model

    params = _state.params()
    snapshots = _read_parquet(params.paths.train_features, "features")
    with _step("train"):
        result = train_model(snapshots, params.train)
        example = snapshots[result.model.features].head(5)
        context = run_context("train", snapshot_as_of(snapshots, params.snapshots.horizon_days))
        refusal = registration.refusal(context)
        tracking.configure(params.tracking)
        with mlflow.start_run(run_name=context.run_name()) as run:
            mlflow.set_tags(
                {
                    **context.tags(),
                    "data_fingerprint": tracking.file_fingerprint(params.paths.transactions),
                    "params_hash": tracking.params_hash(params),
                }
            )
            mlflow.log_params({**lightgbm_params(params.train), **params.snapshots.model_dump()})
            metrics = {
                "valid_auc": result.valid_auc,
                "best_iteration": result.best_iteration,
                "n_train": result.n_train,
                "n_valid": result.n_valid,
                "n_fit": result.n_fit,
            }
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
            version = tracking.log_model(
                result.model, example, params.tracking, register=refusal is None
            )
            if refusal is not None and params.tracking.register_model:
                mlflow.set_tag(registration.REGISTRATION_TAG, f"skipped: {refusal}")
                log.info(
                    "train: @challenger left as it was because %s; `churn register %s`"
                    " makes this model the challenger",
                    refusal,
                    context.experiment.name if context.experiment else run.info.run_id,
                )
        with atomic_dir(params.paths.model_dir) as tmp:
            checksums = tracking.save_model(result.model, example, tmp / "model")
            for item in (tmp / "model").iterdir():
                item.rename(tmp / item.name)
            (tmp / "model").rmdir()
        write_json(metrics, params.paths.train_metrics)
        # Only what a rerun reproduces (a DVC output): the run id and the registry version
        # live in MLflow, whose run is found by the model's fingerprint (model.training_run).
        write_json(
            {
                "registered_model": params.tracking.registered_model,
                # The loader refuses paths.model_dir unless its files still match these.
                TRAIN_RUN_KEY: checksums,
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
    from churn.atomic import write_json
    from churn.model import tracking
    from churn.model.assessment import assess
    from churn.model.loader import load_churn_model
    from churn.model.model_record import ModelRecord
    from churn.model.training_run import resume_training_run

    params = _state.params()
    snapshots = _read_parquet(params.paths.train_features, "features")
    with _step("evaluate"):
        model = load_churn_model(str(params.paths.model_dir), params.paths.train_run)
        result = assess(model, snapshots, params.evaluate, params.export.top_n)
        metrics = result.metrics
        write_json(metrics, params.paths.eval_metrics)
        write_json(result.baselines, params.paths.baseline_metrics)
        record = ModelRecord.of_train_run(params.paths.train_run)
        tracking.configure(params.tracking)
        with resume_training_run(params.tracking.experiment, record):
            tracking.log_assessment(result.with_baselines(), result.curves, params.paths.plots_dir)
        log.info(
            "evaluate: %s test rows at %s, base rate %.3f: ROC-AUC %.4f, Brier %.4f; %s",
            f"{metrics['n']:,}",
            metrics["cutoff"],
            metrics["base_rate"],
            metrics["roc_auc"],
            metrics["brier"],
            ", ".join(
                f"{name} {m['roc_auc']:.4f}/{m['brier']:.4f}"
                for name, m in result.baselines.items()
            ),
        )


def _as_of_option(value: str | None) -> Any:
    import datetime as dt

    if value is None:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise UserError(f"--as-of {value!r} is not a date (use YYYY-MM-DD)") from None
    return check_date(day, "--as-of")


def _scoring_snapshot(params: Params, as_of: Any) -> Any:
    """The scoring snapshot at ``as_of``: the features stage's file when it is for that date,
    else built now from the transactions through the same feature code."""
    import pandas as pd

    path = params.paths.score_features
    if as_of is None:
        return _read_parquet(path, "features")
    if path.exists():
        snapshot = pd.read_parquet(path)
        if not snapshot.empty and set(pd.to_datetime(snapshot["cutoff"]).dt.date) == {as_of}:
            return snapshot
    from churn.features import backend
    from churn.features.tables import build_scoring_snapshot

    _input_file(params.paths.transactions, "ingest")
    log.info(
        "score: building the scoring snapshot for %s from %s", as_of, params.paths.transactions
    )
    con = backend.connect(params.engine, spark_master=params.spark_master)
    transactions = backend.read_transactions(con, params.paths.transactions)
    return build_scoring_snapshot(transactions, as_of, params.snapshots, params.features)


def _load_model(params: Params, uri: str) -> Any:
    """(ChurnModel, ModelIdentity) for a directory or registry URI."""
    import contextlib

    import mlflow

    from churn.model import tracking
    from churn.model.loader import load_churn_model
    from churn.scoring.score import identify_model

    mlflow.set_tracking_uri(tracking.tracking_uri(params.tracking))
    train_run = None
    if params.paths.train_run.exists():
        # Only names the local model here; the loader says so when it is unreadable.
        with contextlib.suppress(OSError, ValueError):
            train_run = json.loads(params.paths.train_run.read_text())
    identity = identify_model(uri, train_run if isinstance(train_run, dict) else None)
    return load_churn_model(identity.pinned_uri, params.paths.train_run), identity


_MODEL_HELP = (
    "MLflow model URI or directory, e.g. models:/churn-classifier@champion."
    " Default: paths.model_dir."
)
_AS_OF_HELP = (
    "Score as if today were this date (YYYY-MM-DD); transactions after it are ignored."
    " Default: the features stage's as-of date."
)


_SCORE_OUTPUT_HELP = (
    "Write the score table here (.parquet). Default: paths.scores, or with --as-of/--model a"
    " name derived from them beside it (never the tracked file)."
)


@app.command()
def score(
    model: Annotated[str | None, typer.Option("--model", help=_MODEL_HELP)] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help=_AS_OF_HELP)] = None,
    output: Annotated[Path | None, typer.Option("--output", help=_SCORE_OUTPUT_HELP)] = None,
) -> None:
    """Score every active customer at the as-of date: churn risk, band, value, value at risk.

    Writes the score table riskiest first: calibrated churn probability, risk band
    (scoring.*), P(alive) and expected 12-month value (BG/NBD x Gamma-Gamma), value at
    risk, RFM segment and the model's name and version. Reasons are filled in by
    `churn export` for the list and by `churn explain` for anyone. Another --as-of or
    --model is a one-off: it writes beside the tracked table, never over it.
    """
    from churn.adhoc import destination, score_file

    params = _state.params()
    day = _as_of_option(as_of)
    target = score_file(params, day, model, output)

    from churn.atomic import write_parquet
    from churn.scoring.score import score_customers

    snapshot = _scoring_snapshot(params, day)
    churn_model, identity = _load_model(params, model or str(params.paths.model_dir))
    with _step("score"):
        scores = score_customers(snapshot, churn_model, identity, params.scoring)
        write_parquet(scores, target)
        log.info(
            "score: %s customers in, %s scored at %s with %s (%s v%s); bands %s -> %s",
            f"{len(snapshot):,}",
            f"{len(scores):,}",
            scores["as_of"].iloc[0].date(),
            identity.uri,
            identity.name or "unregistered",
            identity.version or "-",
            scores["risk_band"].value_counts().to_dict(),
            destination(params.paths.scores, target),
        )


@app.command()
def explain(
    customer_id: Annotated[str, typer.Argument(help="The customer to explain.")],
    model: Annotated[str | None, typer.Option("--model", help=_MODEL_HELP)] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help=_AS_OF_HELP)] = None,
) -> None:
    """Why one customer scores as they do: churn risk, value and the top three reasons."""
    from churn.scoring.score import explain as explain_customers
    from churn.scoring.score import score_customers

    params = _state.params()
    snapshot = _scoring_snapshot(params, _as_of_option(as_of))
    row = snapshot[snapshot["customer_id"].astype(str) == customer_id]
    if row.empty:
        raise UserError(
            f"customer {customer_id!r} is not an active customer at the as-of date"
            f" (no purchase in the last {params.snapshots.active_window_days} days, or unknown id)"
        )
    churn_model, identity = _load_model(params, model or str(params.paths.model_dir))
    scored = score_customers(row, churn_model, identity, params.scoring).iloc[0]
    reasons = explain_customers(row, churn_model, [customer_id], params.attribution).iloc[0]
    print(
        f"customer {customer_id} at {scored['as_of'].date()}: churn risk"
        f" {100 * scored['churn_probability']:.1f} % ({scored['risk_band']}),"
        f" segment {scored['segment']}, expected 12-month value"
        f" {scored['expected_value_12m']:,.2f}, value at risk {scored['value_at_risk']:,.2f}"
    )
    named = [str(reasons[c]) for c in ("reason_1", "reason_2", "reason_3") if reasons[c]]
    for i, text in enumerate(named or ["nothing in this customer's history points to churn"], 1):
        print(f"  {i}. {text}")


_SEGMENT_HELP = "Only this RFM segment, e.g. 'At risk' (repeat for several)."
_BAND_HELP = "Only this risk band: low, medium or high (repeat for several)."


_EXPORT_OUTPUT_HELP = (
    "Write the list here (.csv or .xlsx, by its suffix) and its summary beside it"
    " (.summary.json). Default: the tracked files, or with any other option a name"
    " derived from the options beside them (never the tracked files)."
)
_SCORES_HELP = (
    "List from this score table (e.g. one `churn score --as-of` wrote). Default: paths.scores."
)


@app.command()
def export(
    top: Annotated[
        int | None,
        typer.Option(
            "--top",
            help="At most this many customers, best expected gain first (default export.top_n).",
        ),
    ] = None,
    segment: Annotated[list[str] | None, typer.Option("--segment", help=_SEGMENT_HELP)] = None,
    band: Annotated[list[str] | None, typer.Option("--band", help=_BAND_HELP)] = None,
    min_value: Annotated[
        float | None,
        typer.Option(
            "--min-value", help="Only customers whose expected 12-month value is at least this."
        ),
    ] = None,
    action: Annotated[
        list[str] | None,
        typer.Option(
            "--action",
            help="Only this recommended action, e.g. 'Personal call'"
            " (repeat for several; names from targeting.actions).",
        ),
    ] = None,
    fmt: Annotated[
        list[str] | None,
        typer.Option("--format", help="csv or xlsx (repeat for both; default export.formats)."),
    ] = None,
    scores_path: Annotated[Path | None, typer.Option("--scores", help=_SCORES_HELP)] = None,
    output: Annotated[Path | None, typer.Option("--output", help=_EXPORT_OUTPUT_HELP)] = None,
) -> None:
    """The retention list: who to contact under the targeting budget, with what and why.

    Picks the customers with the best expected gain (churn risk x value x save
    rate - cost) under targeting.max_contacts / max_budget, holds out a random
    control group, drops customers without marketing consent, then writes the
    targets table, the CSV/Excel list and a summary of who was left out. With
    any option it is a one-off: the list and its summary go to --output or to a
    name derived from the options, and the tracked files are left alone.
    """
    from churn.adhoc import export_files, export_output, export_parts
    from churn.scoring.export import ExportFilters

    params = _state.params()
    settings = params.export
    options = {
        "segments": segment,
        "bands": band,
        "min_value": min_value,
        "actions": action,
        "top_n": top,
    }
    given = {field for field, value in options.items() if value not in (None, [])}
    filters = ExportFilters(
        segments=segment or settings.segments,
        bands=band or settings.bands,
        min_value=min_value if min_value is not None else settings.min_value,
        actions=action or settings.actions,
        top_n=top if top is not None else settings.top_n,
        from_params=frozenset(set(options) - given),
    )
    filters.check(list(params.targeting.actions))
    # --output sets the one format by its suffix; a --format given with it must agree
    formats = fmt or ([] if output is not None else list(settings.formats))
    for name in formats:
        if name not in ("csv", "xlsx"):
            raise UserError(f"--format {name!r} is not one of: 'csv', 'xlsx'")
    ad_hoc = bool(given or fmt or scores_path is not None or output is not None)
    if output is not None:  # before any reading, so a wrong --output fails at once
        export_output(params, formats, output)
    # The checks above come before these heavy imports, so a typo fails in a second.
    import pandas as pd

    from churn.atomic import atomic_path, write_csv, write_json, write_parquet
    from churn.outcomes.in_effect import rates_in_effect
    from churn.scoring.export import write_xlsx
    from churn.scoring.retention import retention_list
    from churn.scoring.score import explain as explain_customers

    if scores_path is not None and not scores_path.exists():
        raise UserError(f"score table not found: {scores_path} (check --scores)")
    scores = _read_parquet(scores_path or params.paths.scores, "score")
    scores_as_of = _run_name(scores, scores_path) if scores_path is not None else None
    parts = export_parts({f: options[f] for f in given}, scores_as_of) if ad_hoc else None
    targets = export_files(params, formats, output, parts)
    customers = None
    if params.paths.customers.exists():
        customers = _read_parquet(params.paths.customers, "ingest")
    with _step("export"):

        def reasons_for(wanted: Any) -> Any:
            as_of = pd.Timestamp(scores["as_of"].iloc[0]).date()
            churn_model, _ = _load_model(params, _scored_model_uri(scores))
            snapshot = _scoring_snapshot(params, as_of)
            return explain_customers(snapshot, churn_model, wanted, params.attribution)

        targeting, rates = rates_in_effect(
            params.targeting, params.paths.save_rates, params.outcomes.min_control
        )
        chosen = retention_list(scores, customers, targeting, filters, reasons_for)
        chosen.summary["save_rates"] = rates
        if targets.table is not None:
            write_parquet(chosen.targets, targets.table)
        contact_list, summary = chosen.contact_list, chosen.summary
        written = []
        if "csv" in targets.lists:
            write_csv(contact_list, targets.lists["csv"])
            written.append(str(targets.lists["csv"]))
        if "xlsx" in targets.lists:
            with atomic_path(targets.lists["xlsx"]) as tmp:
                write_xlsx(contact_list, tmp)
            written.append(str(targets.lists["xlsx"]))
        summary["files"] = written
        write_json(summary, targets.summary)
        if chosen.empty_reason is not None:
            log.warning("export: the list is empty: %s", chosen.empty_reason)
        log.info(
            "export: %s scored, %s worth contacting, %s targeted under budget, %s held out as"
            " control, left out %s, %s exported -> %s%s",
            f"{summary['scored_customers']:,}",
            f"{summary['worth_contacting']:,}",
            f"{summary['targeted_under_budget']:,}",
            f"{summary['control_group_held_out']:,}",
            summary["left_out"],
            f"{summary['exported']:,}",
            ", ".join([*written, str(targets.summary)]),
            " (ad hoc; the tracked list, summary and targets table are left as they were)"
            if targets.ad_hoc
            else "",
        )


def _scored_model_uri(scores: Any) -> str:
    """The exact model that produced the scores (an alias may have moved since)."""
    from churn.scoring.score import ModelIdentity

    first = scores.iloc[0]
    return ModelIdentity(
        str(first["model_uri"]), str(first["model_name"]), str(first["model_version"])
    ).pinned_uri


def _read_optional_parquet(path: Path, columns: list[str], what: str, produced_by: str) -> Any:
    """An input the report can do without: None (and a warning) when the file is missing."""
    import pandas as pd

    if not path.exists():
        log.warning("report: %s not found, leaving out %s", path, what)
        return None
    return pd.read_parquet(_input_file(path, produced_by), columns=columns)


def _run_name(scores: Any, path: Path) -> str:
    """A score table's as-of date, or its file name when it has none (no rows)."""
    import pandas as pd

    if len(scores) and "as_of" in scores:
        return str(pd.Timestamp(scores["as_of"].iloc[0]).date())
    return path.stem


_REPORT_OUTPUT_HELP = (
    "Write the report here (.html). Default: paths.report, or with --previous a name derived"
    " from the previous run's date beside it (never the tracked report)."
)


@app.command()
def report(
    previous: Annotated[
        Path | None,
        typer.Option(
            "--previous",
            help="Score table of an earlier run: the segment chart compares against it.",
        ),
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", help=_REPORT_OUTPUT_HELP)] = None,
) -> None:
    """Write the marketing report: one self-contained HTML file (paths.report).

    A comparison with --previous is a one-off: it goes to --output or to a name
    derived from the previous run's date, never over the tracked report.
    """
    from churn.adhoc import destination, report_file
    from churn.atomic import atomic_path

    params = _state.params()
    paths = params.paths
    if output is not None:  # checked first: a wrong suffix fails before any reading
        report_file(params, None, output)
    scores = _read_parquet(paths.scores, "score")
    targets = _read_parquet(paths.targets_table, "export")
    if previous is not None and not previous.exists():
        raise UserError(f"previous score table not found: {previous} (check --previous)")
    previous_scores, previous_run = None, None
    if previous is not None:
        previous_scores = _read_parquet(previous, "score")
        previous_run = _run_name(previous_scores, previous)
    target = report_file(params, previous_run, output)
    transactions = _read_optional_parquet(
        paths.transactions,
        ["customer_id", "order_id", "ts", "amount"],
        "the monthly KPIs",
        "ingest",
    )
    labelled = _read_optional_parquet(
        paths.train_features,
        ["cutoff", "split", "churned"],
        "the churn rate per cutoff",
        "features",
    )
    from churn.outcomes.for_report import readout_for_report  # issue 16: "Did it work?"

    readout = readout_for_report(paths.outcomes_metrics, params.outcomes.min_control)
    with _step("report"):
        # matplotlib: imported after the inputs check
        from churn.scoring.report import render_pipeline_report

        html = render_pipeline_report(
            scores, targets, transactions, labelled, previous_scores, params, readout
        )
        with atomic_path(target) as tmp:
            tmp.write_text(html, encoding="utf-8")
        log.info(
            "report: %s scored customers, %s targets -> %s (%s KB)",
            f"{len(scores):,}",
            f"{int(targets['selected'].sum()):,}",
            destination(paths.report, target),
            f"{len(html.encode()) // 1024:,}",
        )


@app.command()
def backtest(
    steps: Annotated[
        int | None,
        typer.Option(
            "--steps",
            help="How many as-of dates to replay, one cutoff step apart (default backtest.steps).",
        ),
    ] = None,
) -> None:
    """Retrain and evaluate at earlier as-of dates: a stability table (metrics per test
    cutoff, a DVC plot) and its summary (DVC metrics). The optional DVC stage in
    backtest/dvc.yaml runs it: `dvc repro backtest/dvc.yaml`."""
    import datetime as dt

    from churn.atomic import write_csv, write_json
    from churn.features import backend
    from churn.features.snapshots import default_as_of
    from churn.model.backtest import backtest as run_backtest
    from churn.model.backtest import summarize

    params = _state.params()
    steps = params.backtest.steps if steps is None else steps
    if steps < 1:
        raise UserError("--steps must be at least 1")
    con = backend.connect(params.engine, spark_master=params.spark_master)
    transactions = backend.read_transactions(con, _input_file(params.paths.transactions, "ingest"))
    last = transactions.ts.max().to_pandas()
    as_of = params.snapshots.as_of or default_as_of(dt.datetime.fromisoformat(str(last)))
    with _step("backtest"):
        table = run_backtest(
            transactions, as_of, steps, params.snapshots, params.features, params.train
        )
        write_csv(table.round(6), params.paths.backtest)
        write_json(summarize(table), params.paths.backtest_metrics)
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
def register(
    run: Annotated[
        str,
        typer.Argument(
            help="The training run's MLflow id, or the name of the `dvc exp run` experiment"
            " that trained it (`dvc exp show` lists them)."
        ),
    ],
) -> None:
    """Make a training run's model the challenger (`churn promote` then judges it).

    `churn train` moves alias `challenger` by itself only from a clean, committed
    tree outside `dvc exp run`; this is how any other run's model becomes a candidate.
    """
    from mlflow.tracking import MlflowClient

    from churn.model import registration, tracking

    params = _state.params()
    tracking.configure(params.tracking)
    client = MlflowClient()
    found = registration.find_training_run(client, params.tracking.experiment, run)
    version = registration.register_run(client, found, params.tracking.registered_model)
    print(
        f"{params.tracking.registered_model} v{version} is now @challenger"
        f" (run {found.info.run_id}, {found.info.run_name})"
    )


@app.command()
def promote() -> None:
    """Move alias `champion` to the challenger if it is at least as good on the test cutoff.

    Both models are scored on the same rows. Exit 0 when promoted, 3 when the
    champion stays (so a scheduler can tell the two apart).
    """
    from mlflow.tracking import MlflowClient

    from churn.model import tracking
    from churn.model.churn_model import LABEL
    from churn.model.loader import load_churn_model
    from churn.model.registry import promote as run_gate

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


@app.command()
def nightly(
    as_of: Annotated[
        str,
        typer.Option("--as-of", help="The date treated as today, YYYY-MM-DD (cron: `date -I`)."),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Score with this MLflow model URI or directory instead of"
            " models:/<tracking.registered_model>@<nightly.model_alias>.",
        ),
    ] = None,
) -> None:
    """Ingest, guard, score with the champion, export and publish one as-of date.

    Exit codes: 0 published, 10 another run holds the lock, 11 no new
    transactions, 12 too many malformed rows, 13 distribution shift (PSI, or
    the new orders' values), 14 model unavailable (registry down included),
    2 any other input error. On a non-zero exit the
    previously published lists are left untouched.
    """
    import datetime as dt

    from churn.scoring import run_log
    from churn.scoring.nightly import run_nightly

    params = _state.params()
    try:
        date = check_date(dt.date.fromisoformat(as_of), "--as-of")
    except ValueError as exc:
        raise UserError(f"--as-of {as_of!r} is not a date like 2026-11-21") from exc
    run_log.configure(params)  # sets no experiment: no server call before the job's bounds
    with _step("nightly"):
        result = run_nightly(date, params, model)
    rows, model_info = result.manifest["rows"], result.manifest["model"]
    log.info(
        "nightly: %s scored, %s targets, model %s -> %s",
        f"{rows['scored']:,}",
        f"{rows['targets']:,}",
        model_info["uri"],
        result.partition,
    )


@app.command("simulate-campaign")
def simulate_campaign(
    as_of: Annotated[
        str, typer.Option("--as-of", help="The date of the published list, YYYY-MM-DD.")
    ],
) -> None:
    """Sample data only: simulate the campaign of the list published at --as-of.

    Appends the purchases of the horizon after it (with the true, type-dependent
    effect of each action on the contacted customers) to the raw sample and writes
    the true save rates to paths.campaign_truth (README: "Outcomes").
    """
    import datetime as dt

    from churn.atomic import write_json
    from churn.data.campaign import published_list, run_campaign

    params = _state.params()
    try:
        date = check_date(dt.date.fromisoformat(as_of), "--as-of")
    except ValueError as exc:
        raise UserError(f"--as-of {as_of!r} is not a date like 2026-10-01") from exc
    paths = params.paths
    with _step("simulate-campaign"):
        listed = published_list(date, paths.targets_table, params.nightly.output_root)
        result = run_campaign(
            date, paths.raw_transactions, paths.truth, listed, params.snapshots.horizon_days,
            params.generate, params.simulate,
        )  # fmt: skip
        write_json(result.truth, paths.campaign_truth)
    log.info(
        "simulate-campaign: %s listed, %s saved, %s rows appended to %s; true save rates %s -> %s",
        f"{len(listed):,}",
        f"{result.truth['saved_customers']:,}",
        f"{len(result.transactions):,}",
        paths.raw_transactions,
        result.truth["save_rate"],
        paths.campaign_truth,
    )


@app.command()
def outcomes() -> None:
    """Contacted versus control for every published list, and the measured save rates.

    Ingests the raw source up to the latest list's date plus the horizon into
    paths.outcomes_dir, then writes metrics/outcomes.json, paths.save_rates and
    plots/outcomes_*.csv, and logs the run to MLflow (README: "Outcomes").
    """
    from churn.outcomes.publish import OutcomePaths, describe, run_outcomes
    from churn.outcomes.tracking import log_readout

    params = _state.params()
    paths = params.paths
    where = OutcomePaths(
        raw_transactions=paths.raw_transactions,
        targets_table=paths.targets_table,
        nightly_root=params.nightly.output_root,
        outcomes_dir=paths.outcomes_dir,
        metrics=paths.outcomes_metrics,
        save_rates=paths.save_rates,
        plots_dir=paths.plots_dir,
    )
    with _step("outcomes"):
        result = run_outcomes(
            where, params.ingest, params.snapshots.horizon_days, params.outcomes, params.targeting
        )
        run_id = log_readout(
            result.metrics, result.save_rates, params.tracking, params.outcomes.experiment
        )
    itt = result.outcomes.intent_to_treat
    log.info("outcomes: %s", describe(itt))
    log.info(
        "outcomes: %s campaign(s), pooled over %s -> %s, %s (MLflow run %s)",
        len(result.outcomes.campaigns),
        result.metrics["pooled_over"],
        paths.outcomes_metrics,
        paths.save_rates,
        run_id,
    )


PROG = "churn"
USAGE_EXIT = 2


def _wants_debug(args: list[str]) -> bool:
    """``--debug`` among the options before the command (where the root callback reads it);
    known before parsing, so even a usage error can show its traceback."""
    options = iter(args)
    for arg in options:
        if arg == "--debug":
            return True
        if arg == "--params":
            next(options, None)
        elif not arg.startswith("--params="):
            return False
    return False


def _sentence(message: str) -> str:
    """Click's "No such command 'x'." as a clause: one line, lower case, no full stop."""
    text = " ".join(message.split()).rstrip(".")
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    return text


def _fail(message: str, code: int, debug: bool) -> NoReturn:
    """One line on stderr and the exit code; with --debug the traceback first."""
    if debug:
        traceback.print_exc()
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    print(f"{PROG}: error: {line}", file=sys.stderr)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every error a user can cause is one line on stderr and a non-zero exit.

    Usage errors (unknown command or option, a missing or malformed value, no
    command at all) exit 2; ``UserError`` its own code (2 unless a subclass says
    otherwise); an operating-system error (permissions, full disk, a folder where
    a file belongs) 2, naming the path. ``--debug`` adds the traceback and keeps
    the exit code. Anything else is a bug: a traceback and exit 1.
    Typer ships its own copy of Click, so its exception classes are caught here,
    not the ``click`` package's.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    debug = _wants_debug(args)
    try:
        # Without standalone mode Typer returns typer.Exit's code instead of exiting.
        code = app(args=args, prog_name=PROG, standalone_mode=False)
    except NoArgsIsHelpError as exc:
        help_text = exc.format_message()  # empty when rich has printed the help already
        if help_text:
            print(help_text)
        _fail(f"no command given (pick one above; `{PROG} --help` lists them)", USAGE_EXIT, debug)
    except UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else PROG
        _fail(f"{_sentence(exc.format_message())} (see `{where} --help`)", USAGE_EXIT, debug)
    except ClickException as exc:
        _fail(_sentence(exc.format_message()), exc.exit_code, debug)
    except typer.Abort:
        _fail("aborted", 130, debug)
    except UserError as exc:
        _fail(str(exc), exc.exit_code, debug)
    except OSError as exc:
        _fail(describe_os_error(exc), UserError.exit_code, debug)
    except Exception as exc:
        if not is_disk_full(exc):  # DuckDB and Arrow report a full disk in their own types
            raise
        _fail(describe_os_error(exc), UserError.exit_code, debug)
    if isinstance(code, int) and code != 0:
        sys.exit(code)
