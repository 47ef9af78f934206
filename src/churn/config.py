"""Typed parameters loaded once from params.yaml.

Every knob of the pipeline lives in params.yaml so DVC can track it by key and
`dvc exp run -S key=value` can change it. The CLI loads the file once and hands
these objects to the steps; nothing below the CLI reads YAML or argv.
Validation errors name the offending key, because "field required" without a
path is useless in a 200-line params file. The defaults below equal params.yaml
key for key (tests/test_config.py), so code and tests that build a default
config run what the pipeline runs.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from churn.errors import UserError

# Upper bounds on day and count knobs. Nothing sane comes near them, and beyond them
# the calendar leaves the dates Python and pandas can hold (a 10^8-day horizon crashed
# `features` with an overflow), or a stage would run for days: fail at load, naming the key.
MAX_DAYS = 3_660  # about ten years: a horizon, window or history length
MAX_CUTOFFS = 120  # training cutoffs (ten years of monthly ones; at most 366 days apart)
MAX_ROWS = 100_000_000  # a count of customers or rows
# Dates given in params or as --as-of must lie here; with the bounds above every cutoff
# and label window the calendar derives from them stays inside pandas' datetime range.
EARLIEST_DATE = dt.date(1900, 1, 1)
LATEST_DATE = dt.date(2200, 12, 31)


def check_date(day: dt.date, what: str) -> dt.date:
    """``day`` if it lies in EARLIEST_DATE .. LATEST_DATE, else a UserError naming ``what``."""
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise UserError(f"{what} {day} is outside {EARLIEST_DATE} .. {LATEST_DATE}")
    return day


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- database sources (issue 19; read by churn.data.db_source) ---
# URL schemes a raw source may name, and the Ibis backend that reads each.
DATABASE_SCHEMES = {"postgresql": "postgres", "postgres": "postgres"}


class DatabaseSource(_Section):
    """A table or a SQL query on a database, read through Ibis instead of files.

    The password never lives here (params.yaml is committed): libpq reads PGPASSWORD,
    ~/.pgpass or PGPASSFILE itself, or ``password_env`` names the variable to read.
    """

    url: str  # e.g. postgresql://churn@db.example.com:5432/shop (no password)
    table: str | None = None  # "orders" or "schema.orders"
    query: str | None = None  # or any SELECT; its rows are the source
    password_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    # Rows are numbered (quarantine source_row, duplicates) in this order; null = by every
    # column, which is deterministic but sorts the whole table: name an indexed key instead.
    order_by: list[str] | None = Field(None, min_length=1)
    connect_timeout_seconds: int = Field(10, ge=1, le=600)

    @model_validator(mode="after")
    def _check(self) -> DatabaseSource:
        parts = urlsplit(self.url)
        if parts.scheme not in DATABASE_SCHEMES:
            raise ValueError(
                f"url must start with one of {', '.join(s + '://' for s in DATABASE_SCHEMES)}"
            )
        if parts.password is not None:
            variable = self.password_env or "PGPASSWORD"
            raise ValueError(
                f"url holds a password: remove it (params.yaml is committed) and put it in"
                f" the environment variable {variable}"
            )
        if not parts.path.strip("/"):
            raise ValueError("url names no database: add /<database> after the host")
        if (self.table is None) == (self.query is None):
            raise ValueError("give either table or query (exactly one of them)")
        return self

    def __str__(self) -> str:
        """How messages, the quarantine's source_file and the reports name the source."""
        parts = urlsplit(self.url)
        where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"
        what = f"table {self.table}" if self.table else "query"
        return f"{what} in {parts.scheme} {where}"


def _file_or_database(value: Any) -> Any:
    """A mapping is a database source; a URL string is refused with the shape to use
    (pydantic would take it for a file path); anything else is a file path."""
    if isinstance(value, dict):
        try:
            return DatabaseSource.model_validate(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(part) for part in first["loc"])
            message = str(first["msg"]).removeprefix("Value error, ")
            raise ValueError(f"{key + ': ' if key else ''}{message}") from None
    if isinstance(value, str) and "://" in value:
        raise ValueError(
            "a database source is a mapping, e.g. {url: postgresql://user@host/db, table: orders}"
        )
    return value


# A raw source: a file, glob or folder, or a database table or query.
RawSource = Annotated[Path | DatabaseSource, BeforeValidator(_file_or_database)]


def raw_file(source: Path | DatabaseSource, command: str) -> Path:
    """paths.raw_transactions as a file, for the commands that write it (the sample's)."""
    if isinstance(source, DatabaseSource):
        raise UserError(
            f"`churn {command}` writes the sample to a file, but paths.raw_transactions"
            f" is {source}: set it to a file path to use {command}"
        )
    return source


class PathsConfig(_Section):
    """Where each stage reads and writes; dvc.yaml uses the same keys."""

    raw_transactions: RawSource = Path("data/raw/transactions.csv")
    truth: Path = Path("data/raw/dropout_truth.parquet")
    transactions: Path = Path("data/interim/transactions.parquet")
    quarantine: Path = Path("data/interim/quarantine.parquet")
    ingest_report: Path = Path("data/interim/ingest_report.json")
    customers: Path = Path("data/interim/customers.parquet")
    train_features: Path = Path("data/features/train.parquet")
    score_features: Path = Path("data/features/score.parquet")
    calendar: Path = Path("data/features/calendar.json")
    rfm_edges: Path = Path("data/features/rfm_edges.json")
    backtest: Path = Path("metrics/backtest.csv")
    backtest_metrics: Path = Path("metrics/backtest.json")
    model_dir: Path = Path("models/churn_model")
    train_run: Path = Path("models/train_run.json")
    train_metrics: Path = Path("metrics/train.json")
    eval_metrics: Path = Path("metrics/eval.json")
    baseline_metrics: Path = Path("metrics/baselines.json")
    tune_metrics: Path = Path("metrics/tune.json")  # `churn tune`: best params, every trial
    plots_dir: Path = Path("plots")
    scores: Path = Path("data/scores/scores.parquet")
    targets: Path = Path("data/exports/retention_targets.csv")
    # Retention list (issue #6): every scored customer with its action and selection flags,
    # the Excel copy of the export and the export summary (counts of who was left out, why).
    targets_table: Path = Path("data/scores/targets.parquet")
    targets_xlsx: Path = Path("data/exports/retention_targets.xlsx")
    export_summary: Path = Path("data/exports/retention_targets.summary.json")
    report: Path = Path("reports/retention_report.html")
    # Measure and adjust (issue 16): `churn simulate-campaign` writes the campaign truth,
    # `churn outcomes` its own ingest, the read-out and the measured save rates.
    campaign_truth: Path = Path("data/raw/campaign_truth.json")
    outcomes_dir: Path = Path("data/outcomes")
    outcomes_metrics: Path = Path("metrics/outcomes.json")
    save_rates: Path = Path("data/outcomes/save_rates.json")


class GenerateConfig(_Section):
    """Shape of the synthetic shop; defaults mimic a sparse, seasonal online retailer."""

    seed: int = 42
    n_customers: int = Field(20_000, gt=0, le=MAX_ROWS)
    start: dt.date = Field(dt.date(2023, 10, 1), ge=EARLIEST_DATE, le=LATEST_DATE)
    end: dt.date = Field(dt.date(2026, 10, 1), ge=EARLIEST_DATE, le=LATEST_DATE)
    # Purchase rate heterogeneity: rate ~ Gamma(shape, scale) purchases per year.
    rate_shape: float = Field(0.9, gt=0)
    rate_mean_per_year: float = Field(4.5, gt=0)
    # BG/NBD-like dropout: after each purchase the customer leaves with p ~ Beta(a, b).
    dropout_a: float = Field(1.0, gt=0)
    dropout_b: float = Field(3.0, gt=0)
    # Share of customers who buy on a regular rhythm (gamma gaps, shape > 1).
    regular_fraction: float = Field(0.2, ge=0, le=1)
    # Share of customers who mostly shop for Christmas.
    seasonal_fraction: float = Field(0.12, ge=0, le=1)
    spend_log_mean: float = 3.6
    spend_log_sd_between: float = Field(0.6, ge=0)
    spend_log_sd_within: float = Field(0.45, ge=0)
    guest_order_fraction: float = Field(0.15, ge=0, lt=1)
    cancellation_fraction: float = Field(0.02, ge=0, lt=1)
    # A shop that grows or declines: renewal buyers' purchase rates (and acquisition) are
    # multiplied by exp(trend_per_year) a year from `start`, so the churn base rate drifts
    # for good, not only with the season. 0: a stationary shop.
    trend_per_year: float = Field(0.0, ge=-3, le=3)

    @model_validator(mode="after")
    def _check_dates(self) -> GenerateConfig:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.regular_fraction + self.seasonal_fraction > 1:
            raise ValueError("regular_fraction + seasonal_fraction must be at most 1")
        return self


class ColumnMap(_Section):
    """Which column of the raw export holds each canonical field.

    None (the default) means "recognise it": common export names such as
    ``Customer ID``, ``InvoiceDate`` or ``UnitPrice`` are matched ignoring case,
    spaces and punctuation, so a typical shop export needs no mapping at all.
    """

    customer_id: str | None = None
    timestamp: str | None = None
    amount: str | None = None
    order_id: str | None = None
    quantity: str | None = None
    unit_price: str | None = None
    product_id: str | None = None
    country: str | None = None
    channel: str | None = None


class CsvOptions(_Section):
    """How to split a CSV; None lets DuckDB's sniffer decide, which suits most exports."""

    delimiter: str | None = None
    quote: str | None = None
    encoding: Literal["utf-8", "utf-16", "latin-1"] = "utf-8"
    header: bool = True
    skip_rows: int = Field(0, ge=0, le=MAX_ROWS)


class CustomerColumnMap(_Section):
    """Columns of the optional customers table (None = recognise common names)."""

    customer_id: str | None = None
    email: str | None = None
    name: str | None = None
    country: str | None = None
    marketing_consent: str | None = None


class CustomersConfig(_Section):
    """An optional customer master (CRM export) carried through to the export stage."""

    source: RawSource | None = None
    columns: CustomerColumnMap = CustomerColumnMap()


class ContactColumnMap(_Section):
    """Columns of the optional contact log (None = recognise common names)."""

    customer_id: str | None = None
    date: str | None = None
    action: str | None = None
    channel: str | None = None
    reached: str | None = None


class ContactsConfig(_Section):
    """An optional CRM contact log: who was actually contacted (churn.data.contacts)."""

    source: RawSource | None = None
    columns: ContactColumnMap = ContactColumnMap()


class IngestConfig(_Section):
    columns: ColumnMap = ColumnMap()
    csv: CsvOptions = CsvOptions()
    excel_sheet: str | None = None
    # None = ISO first, then day/month/year orders in the order detected from the data.
    timestamp_format: str | None = None
    dayfirst: bool | None = None
    decimal_separator: Literal["auto", ".", ","] = "auto"
    cancellations: Literal["net", "drop"] = "net"
    cancellation_prefix: str = "C"
    max_bad_fraction: float = Field(0.05, ge=0, le=1)
    max_amount: float = Field(1_000_000.0, gt=0)
    # Plausible timestamps (issue 13): earlier than plausible_from, or more than
    # plausible_future_days after as_of or today (whichever is later), is the placeholder
    # or typo of a broken export (0001-01-01, 1900-01-01, 1970-01-01, 2200, 9999-12-31) and
    # is quarantined as implausible_timestamp. 1970-01-02 keeps the Unix-epoch-zero
    # placeholder out; set it earlier for older history (features take up to ~95 years).
    plausible_from: dt.date = Field(dt.date(1970, 1, 2), ge=dt.date(1900, 1, 1))
    plausible_future_days: int = Field(7, ge=1, le=366)
    # Cells that mean "missing" in some tool's export (SQL, pandas, Excel, MySQL dumps),
    # matched case-insensitively after trimming in text fields (ids, country, channel,
    # the customers table): a guest order, not one giant customer called "NULL". Not
    # "NA": it is Namibia's country code.
    null_values: tuple[str, ...] = (
        "NULL",
        "None",
        "nan",
        "N/A",
        "#N/A",
        "<NA>",
        "NaT",
        "\\N",
        "undefined",
    )
    # DuckDB spills to disk beyond this, which keeps a multi-GB export under ~2 GB of RAM.
    memory_limit: str = "1GB"
    customers: CustomersConfig = CustomersConfig()
    contacts: ContactsConfig = ContactsConfig()

    @model_validator(mode="after")
    def _check_null_values(self) -> IngestConfig:
        for value in self.null_values:
            if not value.strip() or len(value) > 40:
                raise ValueError(
                    f"null_values entry {value!r} must be non-blank text of at most 40"
                    " characters (blank cells are missing already)"
                )
        return self


class SnapshotConfig(_Section):
    """The point-in-time calendar (DESIGN.md, Definitions)."""

    as_of: dt.date | None = Field(None, ge=EARLIEST_DATE, le=LATEST_DATE)
    horizon_days: int = Field(90, gt=0, le=MAX_DAYS)
    active_window_days: int = Field(365, gt=0, le=MAX_DAYS)
    cutoff_every_days: int = Field(30, gt=0, le=366)
    n_train_cutoffs: int = Field(12, gt=0, le=MAX_CUTOFFS)
    min_history_days: int = Field(90, ge=0, le=MAX_DAYS)


class FeaturesConfig(_Section):
    windows_days: tuple[int, ...] = (30, 90, 180, 365)
    # Fixed RFM cut points replacing per-cutoff quintiles, e.g. {"recency": [30, 60, 120, 240]}.
    rfm_edges: dict[
        Literal["recency", "frequency", "monetary"], tuple[float, float, float, float]
    ] = Field(default_factory=dict)
    # DuckDB spills to disk beyond this; the stage's resident peak stays a little above it.
    memory_limit: str = "2GB"
    # BTYD parameters are fitted per cutoff on a fixed hashed sample of this many customers
    # (predictions still cover everyone): a few hundred thousand pin the four or three
    # parameters far more tightly than anything downstream can notice.
    btyd_fit_customers: int = Field(250_000, ge=100, le=MAX_ROWS)
    # Pareto/NBD is fitted on the first this many of that hashed sample: its likelihood
    # costs ~10x BG/NBD's per customer, and a few thousand (CDNOW: 2,357) pin its four
    # parameters.
    pnbd_fit_customers: int = Field(5_000, ge=100, le=MAX_ROWS)
    # With more customers than this, each cutoff runs as one query per range of this many
    # customers and reaches pandas (BTYD predictions, segments, Parquet) in chunks, so
    # neither DuckDB nor pandas holds a whole cutoff (100 M transactions: 8.6 M customers).
    # The as-of cutoff built alone (nightly, `score --as-of`) is one query whose active
    # customers are the snapshot itself, so it reaches pandas whole.
    chunk_customers: int = Field(2_000_000, ge=1, le=MAX_ROWS)
    # Discounted lifetime value in the scores: annual discount rate, and months ahead summed.
    discount_rate_annual: float = Field(0.10, ge=0, le=1)
    clv_months: int = Field(36, ge=1, le=240)
    # The next purchase date is left empty below this P(alive) (BG/NBD).
    next_purchase_min_p_alive: float = Field(0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _check_windows(self) -> FeaturesConfig:
        if not self.windows_days or any(not 0 < w <= MAX_DAYS for w in self.windows_days):
            raise ValueError(
                f"windows_days must be a non-empty list of day counts between 1 and {MAX_DAYS}"
            )
        for name, edges in self.rfm_edges.items():
            if list(edges) != sorted(edges):
                raise ValueError(f"rfm_edges.{name} must be ascending")
        return self


class TrainConfig(_Section):
    seed: int = 7
    num_leaves: int = Field(15, ge=2, le=131_072)  # LightGBM's own limit
    learning_rate: float = Field(0.03, gt=0, le=1)
    n_estimators: int = Field(2000, gt=0, le=100_000)
    early_stopping_rounds: int = Field(100, gt=0, le=100_000)
    min_child_samples: int = Field(50, ge=1, le=MAX_ROWS)
    feature_fraction: float = Field(0.8, gt=0, le=1)
    bagging_fraction: float = Field(0.8, gt=0, le=1)
    bagging_freq: int = Field(1, ge=0, le=100_000)
    lambda_l2: float = Field(1.0, ge=0)
    # Speed only: the model is the same for any count (churn.model.train).
    num_threads: int = Field(2, ge=1, le=1_024)
    # auto: none unless Platt or isotonic has a clearly lower held-out Brier (per candidate).
    calibration: Literal["auto", "isotonic", "platt", "none"] = "auto"
    # The last this-many train/valid cutoffs are predicted out of time to fit and judge
    # calibrators, blend weights and the served candidate (churn.model.crossfit).
    calibration_cutoffs: int = Field(3, ge=2, le=MAX_CUTOFFS)
    # Weight on churners; LightGBM's docs warn weighting ruins probabilities, and the
    # calibration step above is what repairs them.
    scale_pos_weight: float = Field(1.0, gt=0)
    min_customers: int = Field(500, ge=1, le=MAX_ROWS)
    min_train_cutoffs: int = Field(3, ge=1, le=MAX_CUTOFFS)
    # Refit the served booster on train + valid cutoffs with the early-stopped tree count.
    refit_full: bool = True
    # Training rows weighted 0.5 ** (cutoff age / this), age in cutoffs before the newest
    # (churn.model.recency); None: every cutoff weighs the same.
    recency_half_life: float | None = Field(6.0, gt=0, le=MAX_CUTOFFS)
    # Labelled rows `churn train` reads at most: beyond, a hashed sample of customers.
    max_rows: int | None = Field(None, ge=10_000, le=MAX_ROWS)


class TuneConfig(_Section):
    """`churn tune`: the booster's hyperparameter search (churn.model.tuning); not in `make run`."""

    n_trials: int = Field(30, ge=1, le=10_000)
    # Wall-clock budget: the search stops after this long with the trials done so far.
    max_seconds: float = Field(600, gt=0, le=7 * 24 * 3600)
    seed: int = 0
    # Out-of-time folds each trial is judged on: the last this-many train/valid cutoffs.
    folds: int = Field(3, ge=1, le=MAX_CUTOFFS)
    experiment: str = "churn-tune"


class TrackingConfig(_Section):
    uri: str = "sqlite:///mlflow.db"
    experiment: str = "churn"
    registered_model: str = "churn-classifier"
    register_model: bool = True


class BacktestConfig(_Section):
    """`churn backtest`: how many as-of dates to replay (each one retrains from scratch)."""

    steps: int = Field(4, ge=1, le=MAX_CUTOFFS)


class PromoteConfig(_Section):
    """How much worse a challenger may look before the gate refuses it (noise allowance)."""

    auc_tolerance: float = Field(0.002, ge=0)
    brier_tolerance: float = Field(0.0005, ge=0)


class EvaluateConfig(_Section):
    calibration_bins: int = Field(10, ge=2, le=1_000)
    n_bootstrap: int = Field(200, ge=0, le=100_000)
    shap_sample: int = Field(2000, ge=10, le=1_000_000)
    seed: int = 0


class ScoringConfig(_Section):
    """Risk bands: low below ``medium_from``, high above ``high_above``, medium in between."""

    medium_from: float = Field(0.33, gt=0, lt=1)
    high_above: float = Field(0.66, gt=0, lt=1)

    @model_validator(mode="after")
    def _check_bands(self) -> ScoringConfig:
        if self.high_above < self.medium_from:
            raise ValueError("high_above must be at least medium_from")
        return self


RiskBand = Literal["low", "medium", "high"]


class ActionConfig(_Section):
    """One retention action: what a contact costs and the share of churners it saves."""

    cost: float = Field(ge=0)
    save_rate: float = Field(ge=0, le=1)


class ActionRule(_Section):
    """Customers matching every set condition get ``action``; None means "any"."""

    action: str
    segments: tuple[str, ...] | None = None
    bands: tuple[RiskBand, ...] | None = None
    min_value: float | None = None  # expected 12-month value at least this


class TargetingConfig(_Section):
    """Who to contact: best expected gain under the budget, with a random control group."""

    max_contacts: int | None = Field(
        500, ge=0, le=MAX_ROWS
    )  # None = no limit on the number of contacts
    max_budget: float | None = Field(None, ge=0)  # None = no limit on the money spent
    # The budget pick stops after this long with the best pick found and its optimality gap.
    max_seconds: float = Field(10.0, gt=0, le=3600)
    control_fraction: float = Field(0.10, ge=0, lt=1)
    seed: int = 2026
    actions: dict[str, ActionConfig] = Field(
        default_factory=lambda: {
            "Personal call": ActionConfig(cost=15.0, save_rate=0.30),
            "Loyalty offer": ActionConfig(cost=5.0, save_rate=0.15),
            "Win-back email": ActionConfig(cost=0.5, save_rate=0.05),
        }
    )
    # assumed: the save rates above; measured: paths.save_rates from `churn outcomes`
    # (shrunk toward the assumed ones; churn.outcomes.rates_in_effect).
    save_rates: Literal["assumed", "measured"] = "assumed"
    # risk: gain = risk x value x save rate - cost; uplift: predicted uplift x value - cost
    # (the model `churn outcomes` saved); auto: uplift only when outcomes.json says it won.
    rank_by: Literal["risk", "uplift", "auto"] = "risk"
    rules: tuple[ActionRule, ...] = (
        ActionRule(action="Personal call", bands=("high", "medium"), min_value=150.0),
        ActionRule(
            action="Loyalty offer",
            segments=("Champions", "Loyal", "Can't lose them", "At risk", "Potential loyalists"),
            min_value=50.0,
        ),
        ActionRule(action="Win-back email"),
    )

    @model_validator(mode="after")
    def _check_rules(self) -> TargetingConfig:
        for i, rule in enumerate(self.rules):
            if rule.action not in self.actions:
                known = ", ".join(sorted(self.actions)) or "none defined"
                raise ValueError(f"rules[{i}].action {rule.action!r} is not in actions ({known})")
        return self


class ExportConfig(_Section):
    top_n: int = Field(500, gt=0, le=MAX_ROWS)
    formats: tuple[Literal["csv", "xlsx"], ...] = ("csv", "xlsx")
    # Default filters of `churn export` (the CLI flags override them for one run).
    segments: tuple[str, ...] | None = None
    bands: tuple[RiskBand, ...] | None = None
    min_value: float | None = None  # expected 12-month value at least this
    actions: tuple[str, ...] | None = None


class ReportConfig(_Section):
    """What the marketing report shows; the numbers themselves come from the pipeline."""

    title: str = "Retention report"
    currency: str = "£"
    top_targets: int = Field(50, gt=0, le=10_000)  # rows in the top-targets table
    kpi_months: int = Field(12, gt=0, le=120)  # months in the monthly KPI table
    cohorts_shown: int = Field(6, gt=0, le=60)  # retention curves drawn, one per cohort
    cohort_months: int = Field(12, gt=0, le=120)  # months after first purchase on the curve
    # DuckDB spills its KPI work to disk beyond this: at 10 M lines it held 1.2 GB
    # unbounded, the nightly job's memory peak (issue 20); 512MB costs no time there.
    memory_limit: str = Field("512MB", pattern=r"^[1-9][0-9]*\s*(MB|GB|MiB|GiB)$")


class AttributionConfig(_Section):
    """How per-feature contributions (reasons) are computed; see churn.scoring.attribution."""

    # Up to this many rows get exact TreeSHAP (a target list, a customer on demand).
    exact_max_rows: int = Field(5_000, ge=0, le=MAX_ROWS)
    # Beyond it, the leaf-table approximation: rows of exact TreeSHAP it learns from,
    n_sample: int = Field(2_000, ge=10, le=1_000_000)
    # pseudo-rows of Saabas path credit shrinking rarely reached leaves,
    shrinkage: float = Field(10.0, gt=0)
    # the share of rows whose top reason should match exact TreeSHAP,
    target_agreement: float = Field(0.95, ge=0, le=1)
    # and at most this share of rows recomputed exactly to get there (bounds the cost:
    # with exact at 200x a predict, 15 % of the riskiest 10 % keeps scoring under 5x).
    max_exact_share: float = Field(0.15, ge=0, le=1)
    seed: int = 0


class NightlyConfig(_Section):
    """`churn nightly`: where published runs go and when a run refuses to publish.

    PSI (population stability index) compares the binned distribution of a
    feature or of the churn score with the previous published run. Rule of thumb:
    below 0.1 stable, 0.1-0.25 moderate, above 0.25 large. Measured on the
    synthetic sample: runs a day apart give PSI below 0.01 on every feature, a
    week 0.01; a month apart moves ``recency_days`` by 0.10-0.30, and up to 0.43
    for the month after Christmas (``btyd_p_alive`` 0.39), with nothing wrong.
    So the default threshold is 0.5: it tolerates a skipped month, even over
    the holidays, and still stops a broken feed (amounts switched to cents give
    revenue PSI 7.7). PSI does not see a random loss of customers (half of them
    gone gives 0.005); the row counts in the manifest do.
    """

    output_root: Path = Path("data/nightly")
    experiment: str = "churn-nightly"
    # MLflow registry alias the job scores with (`--model` overrides it with any URI).
    model_alias: str = "champion"
    # Share of malformed rows (duplicate lines, unreadable dates or amounts) that stops
    # the run; policy rows (guest orders, rows after as_of) never count.
    max_malformed_fraction: float = Field(0.05, ge=0, le=1)
    psi_features: tuple[str, ...] = ("recency_days", "n_orders", "revenue")
    max_feature_psi: float = Field(0.5, gt=0)
    max_score_psi: float = Field(0.5, gt=0)
    psi_bins: int = Field(10, ge=2, le=1_000)
    # Orders new since the previous published run (ts after its last_ts) against the orders
    # of the new_order_history_days before it (churn.nightly.new_orders). On the sample,
    # runs a day, a week or a month apart (Christmas included) give a median ratio of at
    # most 1.77x and a PSI of at most 0.43; the newest daily file in cents gives 56x+ and
    # PSI 7.5+ (benchmarks/new_orders_guard.py). Below min_new_orders new orders the
    # values are recorded, not judged (a median of 5-10 orders moves up to 3.6x).
    min_new_orders: int = Field(20, ge=1, le=1_000_000)
    max_new_order_median_ratio: float = Field(3.0, gt=1, le=1_000)
    max_new_order_psi: float = Field(1.0, gt=0)
    new_order_history_days: int = Field(365, ge=7, le=3_650)
    # Every MLflow call of the job (probe, registry, run record) gives up after this many
    # seconds without an answer and this many retries; MLflow's own defaults (120 s, 7
    # retries, backoff 2) hold a run for about 4.5 minutes when the server is down.
    mlflow_timeout_seconds: int = Field(10, ge=1, le=600)
    mlflow_retries: int = Field(2, ge=0, le=10)


class OutcomesConfig(_Section):
    """`churn outcomes`: how campaigns are delimited and how far measured rates are trusted."""

    # Lists published within this many days of a campaign's first list belong to it;
    # a customer listed on several of its days counts once (their first listing).
    campaign_days: int = Field(30, ge=1, le=MAX_DAYS)
    # Beta prior on each action's save rate: the assumed rate, worth this many would-be
    # churners (0 = the measured rate alone).
    prior_strength: float = Field(50.0, ge=0, le=1_000_000)
    # A measured rate from fewer control customers than this is never used.
    min_control: int = Field(100, ge=1, le=MAX_ROWS)
    experiment: str = "churn-outcomes"
    # Uplift model (churn.outcomes.uplift): fitted on earlier closed campaigns, judged on the
    # latest, only when both have at least this many contacted and control customers.
    uplift_min_contacted: int = Field(1000, ge=10, le=MAX_ROWS)
    uplift_min_control: int = Field(300, ge=10, le=MAX_ROWS)
    # Uplift wins only when its Qini beats risk's by more than chance (paired bootstrap).
    uplift_bootstrap: int = Field(200, ge=20, le=10_000)
    uplift_seed: int = 0


class CustomerTypeEffects(_Section):
    """True share of would-be churners an action saves, by the customer's hidden type."""

    persuadable: float = Field(ge=0, le=1)  # still active, would not have bought
    lost_cause: float = Field(ge=0, le=1)  # already gone at the list's date


class SimulateConfig(_Section):
    """`churn simulate-campaign` (sample data only): the true effects of each action."""

    seed: int = 16
    effects: dict[str, CustomerTypeEffects] = Field(
        default_factory=lambda: {
            "Personal call": CustomerTypeEffects(persuadable=0.25, lost_cause=0.02),
            "Loyalty offer": CustomerTypeEffects(persuadable=0.45, lost_cause=0.02),
            "Win-back email": CustomerTypeEffects(persuadable=0.15, lost_cause=0.01),
        }
    )


class ServeConfig(_Section):
    """`churn serve`: where the marketing page listens (a token guards any non-loopback host)."""

    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(8050, ge=0, le=65535)  # 0 = any free port


class Params(_Section):
    engine: Literal["duckdb", "pyspark"] = "duckdb"
    spark_master: str = "local[2]"  # engine: pyspark only; CHURN_SPARK_MASTER overrides it
    paths: PathsConfig = PathsConfig()
    generate: GenerateConfig = GenerateConfig()
    ingest: IngestConfig = IngestConfig()
    snapshots: SnapshotConfig = SnapshotConfig()
    features: FeaturesConfig = FeaturesConfig()
    train: TrainConfig = TrainConfig()
    tune: TuneConfig = TuneConfig()
    tracking: TrackingConfig = TrackingConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    backtest: BacktestConfig = BacktestConfig()
    promote: PromoteConfig = PromoteConfig()
    export: ExportConfig = ExportConfig()
    scoring: ScoringConfig = ScoringConfig()
    targeting: TargetingConfig = TargetingConfig()
    report: ReportConfig = ReportConfig()
    attribution: AttributionConfig = AttributionConfig()
    nightly: NightlyConfig = NightlyConfig()
    outcomes: OutcomesConfig = OutcomesConfig()
    simulate: SimulateConfig = SimulateConfig()
    serve: ServeConfig = ServeConfig()


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    return f"{key}: {first['msg']}"


def load_params(path: Path) -> Params:
    """Read and validate params.yaml; a bad value fails with the dotted key to fix."""
    if not path.exists():
        raise UserError(
            f"params file not found: {path} (run from the project root or pass --params)"
        )
    if path.is_dir():
        raise UserError(f"--params {path} is a folder; pass the params.yaml file inside it")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {exc}".splitlines()[0]) from exc
    if not isinstance(raw, dict):
        raise UserError(f"{path} must hold a mapping of sections, found {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise UserError(f"invalid {path}: {_describe(exc)}") from exc
