"""One customer's page, the HTML report and the campaign results ("Did it work?").

The customer's reasons are the ones stored with the list: the export computes them
with the scoring model and snapshot through churn.scoring.score.explain, the function
`churn explain` calls, so the page needs no model of its own. The report is served as
the report stage wrote it (self-contained); the results are the report's own section.
"""

from __future__ import annotations

import pandas as pd
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from churn.outcomes.for_report import readout_for_report
from churn.schema import REASON_COLUMNS
from churn.scoring.did_it_work import section
from churn.web.pages import Site
from churn.web.source import read_customers, read_targets

NO_REASONS = "nothing in this customer's history points to churn"  # as `churn explain` says


def _facts(row: pd.Series, currency: str) -> list[tuple[str, str]]:
    def money(value: float) -> str:
        return f"{'-' if value < 0 else ''}{currency}{abs(value):,.2f}"

    when = pd.Timestamp(row["next_purchase_date"]) if pd.notna(row["next_purchase_date"]) else None
    return [
        ("Churn risk", f"{100 * row['churn_probability']:.1f} % ({row['risk_band']})"),
        ("Segment", str(row["segment"])),
        ("Expected value, next 12 months", money(row["expected_value_12m"])),
        ("Value at risk", money(row["value_at_risk"])),
        ("Lifetime value (discounted)", money(row["clv_discounted"])),
        ("Next purchase expected", str(when.date()) if when is not None else "not expected"),
        ("Days since last order", f"{row['recency_days']:.0f}"),
        ("Orders to date", f"{row['n_orders']:,.0f}"),
        ("Revenue to date", money(row["revenue"])),
        ("Recommended action", str(row["action"])),
        ("Expected gain", money(row["expected_gain"])),
    ]


def _contact(site: Site, customer_id: str) -> list[tuple[str, str]]:
    """Name, email and country from the customer master, when there is one."""
    customers = read_customers(site.params)
    if customers is None:
        return []
    found = customers[customers["customer_id"].astype(str) == customer_id]
    if found.empty:
        return []
    row = found.iloc[0]
    return [
        (label, str(row[c]))
        for label, c in (("Name", "name"), ("Email", "email"), ("Country", "country"))
        if isinstance(row[c], str) and row[c]
    ]


def _status(row: pd.Series) -> str:
    if bool(row["selected"]):
        return "On the list: contact with the recommended action."
    if bool(row["targeted"]) and bool(row["control_group"]):
        return "Held out at random as control: do not contact (it measures whether contacts work)."
    return "Not on the list: the budget went to customers with a higher expected gain."


def customer_page(site: Site, request: Request) -> Response:
    wanted = request.path_params["customer_id"]
    targets = read_targets(site.source())
    found = targets[targets["customer_id"].astype(str) == wanted]
    if found.empty:
        return site.message(f"customer {wanted!r} is not in the scored list", 404)
    row = found.iloc[0]
    reasons = [str(row[c]) for c in REASON_COLUMNS if isinstance(row[c], str) and row[c]]
    listed = bool(row["selected"])
    no_reasons = (
        NO_REASONS
        if listed
        else "Reasons are worked out for listed customers; `churn explain` explains anyone."
    )
    return site.page(
        "customer.html.j2",
        customer=row.to_dict(),
        standing=_status(row),
        facts=_contact(site, wanted) + _facts(row, site.params.report.currency),
        reasons=reasons,
        no_reasons=no_reasons,
    )


def report_page(site: Site, request: Request) -> Response:
    report = site.source().report
    if not report.is_file():
        return site.message(
            f"no report yet: {report} not found (`churn report` or the nightly job writes it)",
            404,
        )
    return HTMLResponse(report.read_text(encoding="utf-8"))


def results_page(site: Site, request: Request) -> Response:
    params = site.params
    readout = readout_for_report(params.paths.outcomes_metrics, params.outcomes.min_control)
    targets = read_targets(site.source())
    as_of = pd.Timestamp(targets["as_of"].iloc[0]).date() if len(targets) else None
    shown = None
    if readout is not None and as_of is not None:
        horizon = params.snapshots.horizon_days
        shown = section(readout, as_of, horizon, params.report.currency)
    missing = (
        "No campaign measured yet: once the horizon after a contacted list has passed,"
        " `churn outcomes` compares contacted customers with the control group."
        if readout is None
        else "The latest read-out saw purchases after this list's date, so it is not shown here."
    )
    return site.page("results.html.j2", did_it_work=shown, missing=missing)
