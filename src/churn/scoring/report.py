"""The retention report: one HTML file a marketer can open offline and forward.

Everything is inline (CSS in a ``<style>`` element, charts as ``<svg>``): no
script, no stylesheet link, no web font, no URL, so it renders the same from an
e-mail attachment, a shared drive or a locked-down laptop. Customer ids, segment
names and reasons come from the data and may hold any text, so the template
autoescapes everything except the charts, which matplotlib has already escaped.

The numbers come from the score and targets tables (src/churn/schema.py) and the KPI
definitions in ``churn.scoring.kpis``; this module only selects and formats them,
so the report never disagrees with the exploration notebook.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass

import jinja2
import pandas as pd
from markupsafe import Markup

from churn.config import Params, ReportConfig
from churn.errors import UserError
from churn.features.segments import SEGMENTS
from churn.schema import REASON_COLUMNS, SCORE_COLUMNS, TARGET_COLUMNS, subset
from churn.scoring import did_it_work, kpi_engine, kpis
from churn.scoring import report_charts as charts
from churn.scoring.budget_mix import picked_by_band
from churn.scoring.score_digest import ALL, ScoreDigest, digest_frame

# A score table: the frame, or its digest when the table is too big to hold (Spark's).
ScoreTable = pd.DataFrame | ScoreDigest

# The parts of the score and targets tables the report reads (and requires).
REPORT_SCORE_COLUMNS = subset(
    SCORE_COLUMNS,
    "customer_id",
    "as_of",
    "churn_probability",
    "risk_band",
    "risk_rank",
    "expected_value_12m",
    "value_at_risk",
    "segment",
)
REPORT_TARGET_COLUMNS = (
    *REPORT_SCORE_COLUMNS,
    *subset(TARGET_COLUMNS, "expected_gain", "action", "contact_cost", "selected"),
)
HIGH_RISK = "high"


@dataclass(frozen=True)
class Headline:
    """The four numbers at the top of the report, plus what they are out of."""

    active_customers: int
    customers_at_risk: int  # risk band "high"
    value_at_risk: float  # sum of churn probability x expected 12-month value, all customers
    value_at_risk_high: float  # the part of it held by high-risk customers
    contacted: int  # selected for a retention action (never the control group)
    control_group: int
    budget_used: float  # contact cost of the selected customers
    budget: float | None  # the campaign budget, when known
    max_contacts: int | None  # the cap on contacts, when there is one
    expected_gain: float  # expected gain of the selected customers

    @property
    def budget_share(self) -> float | None:
        return self.budget_used / self.budget if self.budget else None


def require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str, fix: str) -> None:
    """A table from an older pipeline version fails with the columns it lacks, not a KeyError."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(f"{what} lacks column(s) {', '.join(missing)} ({fix})")


def digest(scores: ScoreTable) -> ScoreDigest:
    """What the report reads of a score table (computed here from a frame)."""
    return scores if isinstance(scores, ScoreDigest) else digest_frame(scores)


def headline(
    scores: ScoreTable,
    targets: pd.DataFrame,
    budget: float | None = None,
    max_contacts: int | None = None,
) -> Headline:
    """Headline numbers: risk from the score table, spend and gain from the selected targets."""
    scored = digest(scores)
    selected = targets[targets["selected"].astype(bool)]
    control = targets["control_group"].astype(bool) if "control_group" in targets else None
    if control is not None and "targeted" in targets:
        # The hash marks about 10 % of everyone; only those the budget picked are held out.
        control &= targets["targeted"].astype(bool)
    return Headline(
        active_customers=scored.rows,
        customers_at_risk=scored.high_risk,
        value_at_risk=scored.value_at_risk,
        value_at_risk_high=scored.value_at_risk_high,
        contacted=len(selected),
        control_group=int(control.sum()) if control is not None else 0,
        budget_used=float(selected["contact_cost"].sum()),
        budget=budget,
        max_contacts=max_contacts,
        expected_gain=float(selected["expected_gain"].sum()),
    )


def segment_summary(scores: ScoreTable, targets: pd.DataFrame) -> pd.DataFrame:
    """Per RFM segment: customers, high risk, mean risk, mean CLV, value at risk, contacted.

    Sorted by value at risk, so the first row is where a campaign matters most.
    """
    table = digest(scores).segments.copy()
    selected = targets[targets["selected"].astype(bool)]
    table["contacted"] = (
        selected.groupby(selected["segment"].astype(str)).size().reindex(table.index, fill_value=0)
    )
    table.index.name = "segment"
    return table.sort_values("value_at_risk", ascending=False, kind="stable")


def top_targets(targets: pd.DataFrame, n: int) -> pd.DataFrame:
    """The ``n`` selected customers with the highest expected gain (riskier first on ties)."""
    selected = targets[targets["selected"].astype(bool)]
    top = selected.sort_values(
        ["expected_gain", "risk_rank"], ascending=[False, True], kind="stable"
    ).head(n)
    columns = [c for c in REASON_COLUMNS if c in top.columns]
    texts = top[columns].fillna("").astype(str).to_numpy().tolist()
    top = top.assign(reasons=["; ".join(r for r in row if r.strip()) for row in texts])
    return top.reset_index(drop=True)


def current_segments(scores: ScoreTable) -> pd.Series:
    """Customers per segment in one score table, in ``segments.SEGMENTS`` order (as
    ``kpis.segment_sizes`` orders them; a missing segment counts none)."""
    sizes = digest(scores).segments["customers"].drop("nan", errors="ignore")
    order = list(SEGMENTS) + sorted(set(sizes.index) - set(SEGMENTS))
    counts = sizes.reindex(order, fill_value=0).astype("int64")
    counts.index.name, counts.name = "segment", None
    return counts


def selected_cohorts(table: pd.DataFrame, shown: int, months: int) -> pd.DataFrame:
    """Up to ``shown`` recent cohorts, 3 months apart, observed for ``months`` months.

    Only cohorts old enough to have the whole curve are drawn, so a short recent
    line never reads as a retention collapse.
    """
    columns = list(range(months + 1))
    if not set(columns) <= set(table.columns):  # no cohort is that old yet
        return table.iloc[:0]
    complete = table.loc[table[columns].notna().all(axis=1), columns]
    return complete.iloc[::-1].iloc[::3].head(shown).iloc[::-1]


# --- formatting: one place, so the headline, tables and tests agree ------------------


def fmt_count(value: float) -> str:
    return f"{value:,.0f}"


def fmt_money(value: float, currency: str) -> str:
    sign = "-" if value < 0 else ""
    return f"{sign}{currency}{abs(value):,.0f}"


def fmt_pct(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * value:.{digits}f}%"


def template_environment(*packages: str) -> jinja2.Environment:
    """Templates of ``packages`` (first match wins) then the report's own: autoescaped
    (every value from data is escaped), strict, with the report's number filters. The
    page builds on it, so it words and escapes numbers exactly as the report does."""
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [jinja2.PackageLoader(p, "templates") for p in (*packages, "churn.scoring")]
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["count"] = fmt_count
    env.filters["pct"] = fmt_pct
    env.filters["money"] = fmt_money
    return env


def _month_label(period: pd.Period, as_of: pd.Timestamp) -> str:
    label = period.strftime("%b %Y")
    return f"{label} (to date)" if period.end_time >= as_of else label


def _kpi_section(
    found: kpi_engine.ReportKpis | None,
    labelled: kpis.LabelledSource | None,
    as_of: pd.Timestamp,
    config: ReportConfig,
) -> dict[str, object] | None:
    """The KPI part, from the engine's KPIs of the transactions before ``as_of`` (None:
    there are none)."""
    if found is None:
        return None
    monthly = found.monthly
    by_cutoff = kpis.churn_rate_by_cutoff(labelled) if labelled is not None else None
    closed = monthly["churn_rate"].dropna()
    cohorts = selected_cohorts(found.cohorts, config.cohorts_shown, config.cohort_months)
    recent = monthly.tail(config.kpi_months).iloc[::-1]
    return {
        "repeat_purchase_rate": found.repeat_purchase_rate,
        "latest_churn_rate": float(closed.iloc[-1]) if len(closed) else None,
        "latest_churn_month": closed.index[-1].strftime("%B %Y") if len(closed) else None,
        "monthly_rows": [
            {
                "month": _month_label(period, as_of),
                "active": row["active_customers"],
                "new": row["new_customers"],
                "orders": row["orders"],
                "revenue": fmt_money(row["revenue"], config.currency),
                "repeat_rate": row["repeat_rate"],
                "churn_rate": row["churn_rate"],
            }
            for period, row in zip(
                pd.PeriodIndex(recent.index), recent.to_dict("records"), strict=True
            )
        ],
        "monthly_chart": Markup(charts.monthly_rates(monthly, by_cutoff)),
        "cohort_chart": Markup(charts.cohort_curves(cohorts)) if len(cohorts) else None,
    }


def render_report(
    scores: ScoreTable,
    targets: pd.DataFrame,
    transactions: kpis.KpiSource | Future[kpi_engine.ReportKpis | None] | None,
    labelled: kpis.LabelledSource | None,
    previous_scores: ScoreTable | None,
    config: ReportConfig,
    *,
    budget: float | None = None,
    max_contacts: int | None = None,
    horizon_days: int = 90,
    lookback_days: int = 365,
    readout: did_it_work.CampaignReadout | None = None,
) -> str:
    """The whole report as one HTML string.

    ``transactions`` (canonical: a frame or, read by the engine, a Parquet file; or the
    engine's KPIs of them under way, :func:`kpi_engine.kpis_in_background`) feed the
    monthly KPIs and cohort curves and
    ``labelled`` (the training snapshots) the churn rate per model cutoff; either
    may be None and its part is left out. ``previous_scores`` is the score table of
    an earlier run, for the segment comparison. ``budget`` and ``max_contacts`` are
    the targeting limits (None = none), shown beside what was used. ``horizon_days`` and
    ``lookback_days`` make the monthly churn rate use the model's own label. ``readout``
    (from `churn outcomes`) adds "Did it work?" when it applies at the as-of date.
    """
    scores, previous_scores = digest(scores), _digest_or_none(previous_scores)
    _check_tables(scores, targets, previous_scores)
    as_of = pd.Timestamp(str(scores.as_of))  # a table with rows has an as-of date
    money = config.currency
    numbers = headline(scores, targets, budget, max_contacts)
    previous_numbers, _ = _previous_run(previous_scores)
    segments = current_segments(scores)
    summary = segment_summary(scores, targets)
    score_charts = _score_charts(scores, summary, segments, previous_scores, money)
    # The score side drawn first: KPIs under way in the background are waited for last.
    found = _engine_kpis(transactions, as_of, config, horizon_days, lookback_days)
    kpi = _kpi_section(found, labelled, as_of, config)
    top = top_targets(targets, config.top_targets)
    context = {
        "title": config.title,
        "as_of": as_of.date(),
        "money": lambda v: fmt_money(v, money),
        "headline": numbers,
        "previous": previous_numbers,
        "average_clv": scores.mean_clv,
        "kpi": kpi,
        "horizon_days": horizon_days,
        "lookback_days": lookback_days,
        **score_charts,
        "segments": summary.reset_index().to_dict("records"),
        "targets": top.to_dict("records"),
        "n_selected": numbers.contacted,
        "bands_picked": picked_by_band(targets, scores.bands),
        **scores.model,
        "generated_for": dt.date.isoformat(as_of.date()),
        "did_it_work": did_it_work.section(readout, as_of.date(), horizon_days, money),
    }
    return template_environment().get_template("report.html.j2").render(**context)


def _engine_kpis(
    transactions: kpis.KpiSource | Future[kpi_engine.ReportKpis | None] | None,
    as_of: pd.Timestamp,
    config: ReportConfig,
    horizon_days: int,
    lookback_days: int,
) -> kpi_engine.ReportKpis | None:
    """The KPIs the engine computes on ``transactions``: already under way
    (:func:`kpi_engine.kpis_in_background`, the pipeline's report), or computed now."""
    if transactions is None:
        return None
    if isinstance(transactions, Future):
        return transactions.result()
    return kpi_engine.KpiRequest(
        transactions, as_of, config.memory_limit, lookback_days, horizon_days
    ).compute()


def _digest_or_none(scores: ScoreTable | None) -> ScoreDigest | None:
    return digest(scores) if scores is not None else None


def _check_tables(
    scores: ScoreDigest, targets: pd.DataFrame, previous_scores: ScoreDigest | None
) -> None:
    """Tables from an older pipeline version, or an empty score table, fail with one clear
    line before anything is drawn."""
    fix = "re-run `churn score` and the targeting step with this version"
    _require(scores.columns, REPORT_SCORE_COLUMNS, "the score table", fix)
    require_columns(targets, REPORT_TARGET_COLUMNS, "the targets table", fix)
    if not scores.rows:
        raise UserError("the score table is empty: no active customers to report on")
    if previous_scores is not None:
        _require(previous_scores.columns, ("as_of", "segment"), "the previous score table", fix)


def _require(present: Iterable[str], columns: Iterable[str], what: str, fix: str) -> None:
    require_columns(pd.DataFrame(columns=list(present)), columns, what, fix)


def _previous_run(
    previous_scores: ScoreDigest | None,
) -> tuple[dict[str, object] | None, pd.Series | None]:
    """(headline numbers, customers per segment) of an earlier run, for the comparison;
    (None, None) without one. An older score table without risk columns still gives its
    segments, and None for the risk numbers it cannot back."""
    if previous_scores is None or not previous_scores.rows:
        return None, None
    segments = current_segments(previous_scores)
    has_risk = {"risk_band", "value_at_risk"} <= previous_scores.columns
    numbers: dict[str, object] = {
        "as_of": pd.Timestamp(str(previous_scores.as_of)).date(),
        "at_risk": previous_scores.high_risk if has_risk else None,
        "value_at_risk": previous_scores.value_at_risk if has_risk else None,
    }
    return numbers, segments


def _score_charts(
    scores: ScoreDigest,
    summary: pd.DataFrame,
    segments: pd.Series,
    previous_scores: ScoreDigest | None,
    money: str,
) -> dict[str, Markup]:
    """The charts drawn from this run's scores, as inline SVG (matplotlib has escaped them).

    With an earlier run's scores every chart of the current customers compares with it:
    risk, value at risk and segment sizes (#18). The monthly KPIs and cohort curves are
    drawn from the history, which both runs share, so they have nothing to compare.
    """
    before = previous_scores if previous_scores is not None and previous_scores.rows else None
    previous_segments = current_segments(before) if before is not None else None
    risk_before = None
    if before is not None and "churn_probability" in before.columns:
        risk_before = before.histogram[ALL]
    value_before = None
    if before is not None and "value_at_risk" in before.columns:
        value_before = before.segments["value_at_risk"]
    value = summary["value_at_risk"]
    return {
        "risk_chart": Markup(charts.risk_distribution(scores.histogram, previous=risk_before)),
        "value_chart": Markup(charts.value_at_risk_by_segment(value, money, value_before)),
        "segment_chart": Markup(charts.segment_sizes(segments, previous_segments)),
    }


def render_pipeline_report(
    scores: ScoreTable,
    targets: pd.DataFrame,
    transactions: kpis.KpiSource | Future[kpi_engine.ReportKpis | None] | None,
    labelled: kpis.LabelledSource | None,
    previous_scores: ScoreTable | None,
    params: Params,
    readout: did_it_work.CampaignReadout | None = None,
) -> str:
    """The report with the budget and label settings the pipeline ran with.

    `churn report` and `churn nightly` both call this, so their reports state
    the same budget and measure churn with the same label.
    """
    return render_report(
        scores,
        targets,
        transactions,
        labelled,
        previous_scores,
        params.report,
        budget=params.targeting.max_budget,
        max_contacts=params.targeting.max_contacts,
        horizon_days=params.snapshots.horizon_days,
        lookback_days=params.snapshots.active_window_days,
        readout=readout,
    )
