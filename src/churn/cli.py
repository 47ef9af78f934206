"""The `churn` command: one subcommand per DVC stage.

This is the only module that reads params.yaml and talks to the user: each command
parses its options, loads the typed params once, calls its stage in churn.stages
(inputs first, so a typo fails before any work) and logs the stage's typed result.
Stage logic lives in churn.stages, which the nightly job (churn.nightly) calls too.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

from churn.config import Params, check_date, load_params
from churn.errors import UserError, describe_os_error, is_disk_full
from churn.progress import quiet_library_bars

if TYPE_CHECKING:
    from churn.stages.export import Exported

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
    from churn.stages import generate as generate_stage

    params = _state.params()
    with _step("generate"):
        made = generate_stage.generate(params)
    log.info(
        "generate: %s transaction rows for %s customers -> %s",
        f"{made.transactions:,}",
        f"{made.customers:,}",
        params.paths.raw_transactions,
    )


@app.command()
def ingest() -> None:
    """Read the raw export, map its columns, quarantine bad rows, write canonical Parquet.

    The four outputs (transactions, quarantine, customers, report) are published
    together once every step succeeded; a failure leaves the previous ones as they were.
    """
    from churn.stages import ingest as ingest_stage

    params = _state.params()
    with _step("ingest"):
        report = ingest_stage.ingest(params)
    log.info(
        "ingest: %s rows in, %s out, %s quarantined %s",
        f"{report.rows_in:,}",
        f"{report.rows_out:,}",
        f"{report.rows_quarantined:,}",
        report.reasons,
    )


@app.command()
def features() -> None:
    """Point-in-time snapshots: labelled cutoffs for training and the as-of cutoff for scoring."""
    from churn.stages import features as features_stage

    params = _state.params()
    with _step("features"):
        summary = features_stage.features(params)
    log.info(
        "features: %s transactions in; %s labelled rows over %d cutoffs; %s rows to score at %s",
        f"{summary.n_transactions:,}",
        f"{summary.n_labelled:,}",
        summary.n_labelled_cutoffs,
        f"{summary.n_scoring:,}",
        summary.calendar.as_of,
    )


@app.command()
def train() -> None:
    """Train LightGBM out of time, log the run to MLflow, register and save the model."""
    from churn.stages import train as train_stage
    from churn.stages.training_rows import training_snapshots

    params = _state.params()
    snapshots = training_snapshots(params.paths.train_features, params.train.max_rows)
    with _step("train"):
        trained = train_stage.train(params, snapshots)
    result = trained.result
    log.info(
        "train: %s training rows, %s validation rows, %d trees, valid AUC %.4f, run %s,"
        " model version %s",
        f"{result.n_train:,}",
        f"{result.n_valid:,}",
        result.best_iteration,
        result.valid_auc,
        trained.run_id,
        trained.version,
    )
    log.info("train: %s", result.selection.summary())


@app.command()
def evaluate() -> None:
    """Metrics and plots on the test cutoff (the latest complete label window)."""
    from churn.stages import evaluate as evaluate_stage
    from churn.stages.training_rows import training_snapshots

    params = _state.params()  # train's hashed sample (train.max_rows): never the whole table
    snapshots = training_snapshots(params.paths.train_features, params.train.max_rows)
    with _step("evaluate"):
        result = evaluate_stage.evaluate(params, snapshots)
    metrics = result.metrics
    log.info(
        "evaluate: %s test rows at %s, base rate %.3f: ROC-AUC %.4f, Brier %.4f; %s",
        f"{metrics['n']:,}",
        metrics["cutoff"],
        metrics["base_rate"],
        metrics["roc_auc"],
        metrics["brier"],
        ", ".join(
            f"{name} {m['roc_auc']:.4f}/{m['brier']:.4f}" for name, m in result.baselines.items()
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
    from churn.stages import score as score_stage

    params = _state.params()
    day = _as_of_option(as_of)
    target = score_file(params, day, model, output)
    inputs = score_stage.score_inputs(params, model, day)
    with _step("score"):
        done = score_stage.score(params, inputs, target)
    scores, identity = done.scores, done.identity
    log.info(
        "score: %s customers in, %s scored at %s with %s (%s v%s); bands %s -> %s",
        f"{done.snapshot_rows:,}",
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
    from churn.stages import explain as explain_stage

    params = _state.params()
    found = explain_stage.explain(params, customer_id, model, _as_of_option(as_of))
    scored = found.scored
    print(
        f"customer {customer_id} at {scored['as_of'].date()}: churn risk"
        f" {100 * scored['churn_probability']:.1f} % ({scored['risk_band']}),"
        f" segment {scored['segment']}, expected 12-month value"
        f" {scored['expected_value_12m']:,.2f}, value at risk {scored['value_at_risk']:,.2f},"
        f" lifetime value (discounted) {scored['clv_discounted']:,.2f},"
        f" next purchase expected {_next_purchase(scored['next_purchase_date'])}"
    )
    for i, text in enumerate(
        found.reasons or ["nothing in this customer's history points to churn"], 1
    ):
        print(f"  {i}. {text}")


def _next_purchase(when: object) -> str:
    """The date, or why there is none (README: 'Next purchase expected')."""
    import pandas as pd

    stamp = pd.Timestamp(str(when)) if when is not None else pd.NaT
    return "not expected" if stamp is pd.NaT else str(stamp.date())


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
    from churn.stages import export as export_stage

    params = _state.params()
    options = {
        "segments": segment,
        "bands": band,
        "min_value": min_value,
        "actions": action,
        "top_n": top,
    }
    request = export_stage.ExportRequest(options, fmt, scores_path, output)
    planned = export_stage.plan(params, request)
    with _step("export"):
        done = export_stage.export(params, planned)
    _log_export(done)


def _log_export(done: Exported) -> None:
    """The export's one log line (and a warning when the list came out empty)."""
    summary = done.chosen.summary
    if done.chosen.empty_reason is not None:
        log.warning("export: the list is empty: %s", done.chosen.empty_reason)
    log.info(
        "export: %s scored, %s worth contacting, %s targeted under budget, %s held out as"
        " control, left out %s, %s exported -> %s%s",
        f"{summary['scored_customers']:,}",
        f"{summary['worth_contacting']:,}",
        f"{summary['targeted_under_budget']:,}",
        f"{summary['control_group_held_out']:,}",
        summary["left_out"],
        f"{summary['exported']:,}",
        ", ".join(done.written),
        " (ad hoc; the tracked list, summary and targets table are left as they were)"
        if done.files.ad_hoc
        else "",
    )


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
            help="Score table of an earlier run: the risk, value-at-risk and segment charts"
            " compare against it.",
        ),
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", help=_REPORT_OUTPUT_HELP)] = None,
) -> None:
    """Write the marketing report: one self-contained HTML file (paths.report).

    A comparison with --previous is a one-off: it goes to --output or to a name
    derived from the previous run's date, never over the tracked report.
    """
    from churn.adhoc import destination
    from churn.stages import report as report_stage

    params = _state.params()
    inputs = report_stage.report_inputs(params, previous, output)
    with _step("report"):
        done = report_stage.report(params, inputs)
    log.info(
        "report: %s scored customers, %s targets -> %s (%s KB)",
        f"{done.scored:,}",
        f"{done.targets:,}",
        destination(params.paths.report, done.target),
        f"{done.size // 1024:,}",
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
    from churn.stages import backtest as backtest_stage

    params = _state.params()
    inputs = backtest_stage.backtest_inputs(params, steps)
    with _step("backtest"):
        table = backtest_stage.backtest(params, inputs)
    log.info(
        "backtest: %d as-of dates -> %s\n%s",
        len(table),
        params.paths.backtest,
        table[["test_cutoff", "roc_auc", "brier", "bgnbd_roc_auc", "recency_roc_auc"]].to_string(
            index=False
        ),
    )


@app.command()
def tune(
    apply: Annotated[
        bool,
        typer.Option("--apply", help="Also write the best train.* values into the params file."),
    ] = False,
) -> None:
    """Search the booster's settings on out-of-time folds (never the test cutoff) within
    tune.max_seconds; log to MLflow, write paths.tune_metrics, print the `dvc exp run`
    command for the best. Not part of `make run`."""
    from churn.stages import tune as tune_stage
    from churn.stages.inputs import labelled_snapshots

    params = _state.params()
    snapshots = labelled_snapshots(params)
    with _step("tune"):
        done = tune_stage.run_tune(params, snapshots, _state.params_path if apply else None)
    result = done.result
    complete = sum(t.complete for t in result.trials)
    if result.budget_hit:
        log.warning(
            "tune: time budget tune.max_seconds=%g reached: %d of %d trials finished",
            params.tune.max_seconds,
            complete,
            params.tune.n_trials,
        )
    log.info(
        "tune: best trial %d of %d, out-of-time log loss %.5f (current train.* %s) on folds %s;"
        " MLflow run %s -> %s%s",
        result.best.number,
        complete,
        result.best.log_loss,
        "n/a" if result.trials[0].log_loss is None else f"{result.trials[0].log_loss:.5f}",
        ", ".join(result.folds),
        done.run_id,
        params.paths.tune_metrics,
        f"; applied to {_state.params_path}" if done.applied else "",
    )
    typer.echo(done.command)


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
    from churn.stages import registry as registry_stage

    params = _state.params()
    done = registry_stage.register(params, run)
    print(
        f"{params.tracking.registered_model} v{done.version} is now @challenger"
        f" (run {done.run.info.run_id}, {done.run.info.run_name})"
    )


@app.command()
def promote() -> None:
    """Move alias `champion` to the challenger if it is at least as good on the test cutoff.

    Both models are scored on the same rows. Exit 0 when promoted, 3 when the
    champion stays (so a scheduler can tell the two apart).
    """
    from churn.stages import registry as registry_stage

    params = _state.params()
    decision = registry_stage.promote(params)
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
    accept_drift: Annotated[
        bool,
        typer.Option(
            "--accept-drift",
            help="For this run only, publish despite the drift guards (exit 13: PSI, new"
            " order values); the manifest records what was let through.",
        ),
    ] = False,
) -> None:
    """Ingest, guard, score with the champion, export and publish one as-of date.

    Exit codes: 0 published, 10 another run holds the lock, 11 no new
    transactions, 12 too many malformed rows, 13 distribution shift (PSI, or
    the new orders' values), 14 model unavailable (registry down included),
    2 any other input error. On a non-zero exit the
    previously published lists are left untouched.
    """
    import datetime as dt

    from churn.nightly import run_log
    from churn.nightly.job import run_nightly

    params = _state.params()
    try:
        date = check_date(dt.date.fromisoformat(as_of), "--as-of")
    except ValueError as exc:
        raise UserError(f"--as-of {as_of!r} is not a date like 2026-11-21") from exc
    run_log.configure(params)  # sets no experiment: no server call before the job's bounds
    with _step("nightly"):
        result = run_nightly(date, params, model, accept_drift=accept_drift)
    manifest = result.manifest
    log.info(
        "nightly: %s scored, %s targets, model %s -> %s",
        f"{manifest.rows.scored:,}",
        f"{manifest.rows.targets:,}",
        manifest.model.uri,
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

    from churn.stages import outcomes as outcomes_stage

    params = _state.params()
    try:
        date = check_date(dt.date.fromisoformat(as_of), "--as-of")
    except ValueError as exc:
        raise UserError(f"--as-of {as_of!r} is not a date like 2026-10-01") from exc
    with _step("simulate-campaign"):
        done = outcomes_stage.simulate_campaign(params, date)
    log.info(
        "simulate-campaign: %s listed, %s saved, %s rows appended to %s; true save rates %s -> %s",
        f"{len(done.listed):,}",
        f"{done.truth['saved_customers']:,}",
        f"{done.appended_rows:,}",
        params.paths.raw_transactions,
        done.truth["save_rate"],
        params.paths.campaign_truth,
    )


@app.command()
def outcomes() -> None:
    """Contacted versus control for every published list, and the measured save rates.

    Ingests the raw source up to the latest list's date plus the horizon into
    paths.outcomes_dir, then writes metrics/outcomes.json, paths.save_rates and
    plots/outcomes_*.csv, and logs the run to MLflow (README: "Outcomes").
    """
    from churn.outcomes.publish import describe
    from churn.stages import outcomes as outcomes_stage

    params = _state.params()
    paths = params.paths
    with _step("outcomes"):
        done = outcomes_stage.outcomes(params)
    result, run_id = done.result, done.run_id
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


@app.command()
def serve(
    host: Annotated[
        str | None,
        typer.Option("--host", help="Address to listen on (default serve.host, 127.0.0.1)."),
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Port (default serve.port; 0: any free one).")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help="Secret every request must carry; required on a non-loopback --host"
            " (better: set CHURN_SERVE_TOKEN, which `ps` does not show).",
        ),
    ] = None,
) -> None:
    """A local web page for marketing over the latest list: filters, customers, downloads,
    the report and the campaign results (README: "The page for marketing")."""
    from churn.web.server import serve as serve_page

    params = _state.params()
    serve_page(
        params, host or params.serve.host, params.serve.port if port is None else port, token
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
