"""The marketing report: right numbers, self-contained, escaped, and it renders in Chromium.

Two inputs: a five-customer table whose headline numbers are counted by hand,
and a small synthetic shop shaped like the real score and targets tables
(src/churn/schema.py) for the browser check. The screenshot lands in test-artifacts/.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from churn.config import ReportConfig
from churn.errors import UserError
from churn.features.segments import SEGMENTS
from churn.scoring.report import fmt_money, headline, render_report
from synthetic import canonical_transactions

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
HEADER_RGB = (0x1F, 0x3A, 0x5F)  # --brand in the template
AS_OF = pd.Timestamp("2026-10-01")
HOSTILE_ID = '<script>alert("id")</script>'
HOSTILE_REASON = "<img src=x onerror=alert(1)> & more"
HOSTILE_SEGMENT = "<b>Evil</b> segment"


# --- a shop counted by hand -----------------------------------------------------------


def _tiny_scores() -> pd.DataFrame:
    # customer, churn probability, band, 12-month value, segment
    rows = [
        ("A", 0.9, "high", 200.0, "At risk"),  # value at risk 180
        ("B", 0.7, "high", 100.0, "Can't lose them"),  # 70
        ("C", 0.5, "medium", 50.0, "Need attention"),  # 25
        ("D", 0.1, "low", 300.0, "Champions"),  # 30
        ("E", 0.2, "low", 40.0, "Champions"),  # 8   -> total 313, high 250
    ]
    frame = pd.DataFrame(
        rows,
        columns=["customer_id", "churn_probability", "risk_band", "expected_value_12m", "segment"],
    )
    frame["as_of"] = AS_OF
    frame["risk_rank"] = range(1, len(frame) + 1)
    frame["p_alive"] = 1 - frame["churn_probability"]
    frame["value_at_risk"] = frame["churn_probability"] * frame["expected_value_12m"]
    frame["recency_days"] = [200, 150, 90, 10, 30]
    frame["n_orders"] = [3, 5, 2, 9, 1]
    frame["revenue"] = [300.0, 500.0, 80.0, 900.0, 40.0]
    frame["reason_1"] = ["no order for 200 days", "fewer orders than usual", "", "", ""]
    frame["reason_2"] = ["spend falling", "", "", "", ""]
    frame["reason_3"] = ""
    frame["model_name"] = "churn-classifier"
    frame["model_version"] = "4"
    frame["model_uri"] = "models:/churn-classifier@champion"
    return frame


def _tiny_targets(scores: pd.DataFrame) -> pd.DataFrame:
    targets = scores.copy()
    targets["expected_gain"] = [40.0, 21.0, 9.0, -2.0, 0.5]
    targets["action"] = ["voucher", "call", "e-mail", "none", "e-mail"]
    targets["contact_cost"] = [5.0, 5.0, 1.0, 0.0, 1.0]
    # D hashes into the control group too, but the budget never picked D: not held out.
    targets["control_group"] = [False, False, True, True, False]
    targets["targeted"] = [True, True, True, False, False]
    targets["selected"] = [True, True, False, False, False]  # C is control, E below the bar
    return targets


def _element_text(html: str, element_id: str) -> str:
    """All text inside the element with this id, whitespace collapsed."""

    class Grab(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.depth = 0
            self.parts: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if self.depth:
                self.depth += 1
            elif dict(attrs).get("id") == element_id:
                self.depth = 1

        def handle_endtag(self, tag: str) -> None:
            if self.depth:
                self.depth -= 1

        def handle_data(self, data: str) -> None:
            if self.depth:
                self.parts.append(data)

    grab = Grab()
    grab.feed(html)
    return " ".join(" ".join(grab.parts).split())


def _value(html: str, tile_id: str) -> str:
    match = re.search(rf'id="{tile_id}">.*?<div class="value">(.*?)</div>', html, flags=re.DOTALL)
    assert match, f"tile {tile_id} not found"
    return match.group(1).strip()


def test_headline_numbers_on_a_hand_counted_shop() -> None:
    scores = _tiny_scores()
    numbers = headline(scores, _tiny_targets(scores), budget=20.0)
    assert numbers.active_customers == 5
    assert numbers.customers_at_risk == 2
    assert numbers.value_at_risk == pytest.approx(313.0)
    assert numbers.value_at_risk_high == pytest.approx(250.0)
    assert numbers.contacted == 2
    assert numbers.control_group == 1
    assert numbers.budget_used == pytest.approx(10.0)
    assert numbers.budget_share == pytest.approx(0.5)
    assert numbers.expected_gain == pytest.approx(61.0)


def test_headline_numbers_are_printed_in_their_tiles() -> None:
    scores = _tiny_scores()
    html = render_report(
        scores, _tiny_targets(scores), None, None, None, ReportConfig(), budget=20.0, max_contacts=3
    )
    assert _value(html, "customers-at-risk") == "2"
    assert _value(html, "value-at-risk") == "£313"
    assert _value(html, "budget-used") == "£10"
    budget = _element_text(html, "budget-used")
    assert "of £20 (50.0%)" in budget
    assert "2 customers to contact (at most 3), 1 held out as control group" in budget
    assert _value(html, "expected-gain") == "£61"
    assert _value(html, "kpi-average-clv") == "£138"  # (200 + 100 + 50 + 300 + 40) / 5
    top = _element_text(html, "top-targets")
    assert top.index("A") < top.index("B")  # higher expected gain first
    assert "no order for 200 days; spend falling" in top
    assert " C " not in f" {top} "  # control group is never listed as a target


def test_previous_run_appears_in_the_segment_chart_only_when_given() -> None:
    scores = _tiny_scores()
    targets = _tiny_targets(scores)
    alone = render_report(scores, targets, None, None, None, ReportConfig())
    previous = scores.assign(as_of=AS_OF - pd.Timedelta(days=30), risk_band="high")
    compared = render_report(scores, targets, None, None, previous, ReportConfig())
    assert "against the previous run" not in alone  # the chart's title
    assert "No previous run given" in alone
    assert "against the previous run" in compared
    assert "No previous run given" not in compared
    assert "previous run (2026-09-01): 5" in _element_text(compared, "customers-at-risk")
    assert "previous run (2026-09-01): £313" in _element_text(compared, "value-at-risk")


def test_previous_run_is_compared_in_every_chart_of_the_current_customers() -> None:
    """#18: --previous compared only the segment sizes. Risk and value at risk per segment
    compare too (their titles say so and the previous run is drawn); the monthly KPIs and
    cohort curves come from the shared history and say why they do not."""
    scores = _tiny_scores()
    targets = _tiny_targets(scores)
    previous = scores.assign(as_of=AS_OF - pd.Timedelta(days=30))
    compared = render_report(scores, targets, None, None, previous, ReportConfig())
    alone = render_report(scores, targets, None, None, None, ReportConfig())
    for title in (
        "How risky are our active customers, against the previous run?",
        "Where the value at risk sits (RFM segment) against the previous run",
        "Segment sizes against the previous run",
    ):
        assert f'aria-label="{title}"' in compared, title
        assert title not in alone
    assert compared.count(">previous run<") == 3  # one legend entry per chart
    assert "monthly KPIs and cohort curves come from the purchase history" in compared


def test_report_says_why_the_list_is_ordered_and_what_the_budget_bought() -> None:
    """#18: the top of the list was all medium risk and nothing said why. The report states
    the ordering and shows the picked customers, cost and gain per risk band."""
    scores = _tiny_scores()
    html = render_report(scores, _tiny_targets(scores), None, None, None, ReportConfig())
    ordering = _element_text(html, "ordering")
    assert "expected gain = churn risk × 12-month value × save rate − contact cost" in ordering
    assert "not by risk alone" in ordering
    bands = _element_text(html, "bands-picked")
    # A and B (high) picked: 2 of 2, £10, £61; C (medium) is control; D, E (low) not picked.
    assert "high 2 2 (100.0%) £10 £61 6.10" in bands
    assert "medium 0 1 (0.0%) £0 £0 n/a" in bands
    assert "low 0 2 (0.0%) £0 £0 n/a" in bands
    assert "all 2 5 (40.0%) £10 £61 6.10" in bands
    definitions = _element_text(html, "definitions")
    assert "One risk number" in definitions and "Picked for value" in definitions


def test_a_targets_table_of_candidates_only_reports_the_same() -> None:
    """`churn export` on Spark writes only the customers worth contacting (D and E have no
    positive gain here): the report still counts every scored customer per band."""
    scores = _tiny_scores()
    targets = _tiny_targets(scores)
    candidates = targets[targets["customer_id"].isin(["A", "B", "C"])]
    whole = render_report(scores, targets, None, None, None, ReportConfig())
    pushed = render_report(scores, candidates, None, None, None, ReportConfig())
    assert _element_text(pushed, "bands-picked") == _element_text(whole, "bands-picked")
    assert "low 0 2 (0.0%)" in _element_text(pushed, "bands-picked")


def test_hostile_text_is_escaped_everywhere() -> None:
    scores = _tiny_scores()
    scores.loc[0, "customer_id"] = HOSTILE_ID
    scores.loc[0, "reason_1"] = HOSTILE_REASON
    scores.loc[0, "segment"] = HOSTILE_SEGMENT  # goes into a chart label and a table
    html = render_report(scores, _tiny_targets(scores), None, None, None, ReportConfig())
    assert "<script" not in html
    assert "<img" not in html
    assert "<b>Evil" not in html
    assert "&lt;script&gt;alert(&#34;id&#34;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; more" in html
    assert html.count("&lt;b&gt;Evil&lt;/b&gt; segment") >= 3  # two charts and the table
    assert HOSTILE_ID in _element_text(html, "top-targets")  # shown as text, intact


def test_a_run_with_no_target_and_little_history_still_renders() -> None:
    scores = _tiny_scores()
    targets = _tiny_targets(scores).assign(selected=False)
    transactions = pd.DataFrame(
        {
            "customer_id": ["A", "A", "B"],
            "order_id": ["a1", "a2", "b1"],
            "ts": pd.to_datetime(["2026-09-01", "2026-09-20", "2026-09-25"]),
            "amount": [10.0, 20.0, 5.0],
        }
    )
    html = render_report(scores, targets, transactions, None, None, ReportConfig())
    assert "No customer was selected under the budget." in html
    assert "Not enough history yet for cohort retention curves." in html
    assert _value(html, "budget-used") == "£0"
    assert _value(html, "kpi-repeat-rate") == "50.0%"  # A bought twice, B once


def test_tables_from_an_older_pipeline_name_the_missing_columns() -> None:
    scores = _tiny_scores().drop(columns=["risk_band", "value_at_risk"])
    with pytest.raises(UserError, match="score table lacks column"):
        render_report(scores, _tiny_targets(_tiny_scores()), None, None, None, ReportConfig())


# --- a small shop shaped like the pipeline's tables -----------------------------------


def _shop_scores(transactions: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """A score table with the contract's columns, risk rising with days since last order."""
    tx = transactions[transactions["ts"] < as_of]
    per = tx.groupby("customer_id").agg(
        last=("ts", "max"), n_orders=("order_id", "nunique"), revenue=("amount", "sum")
    )
    per = per[per["last"] > as_of - pd.Timedelta(days=365)]
    recency = (as_of - per["last"]).dt.days.astype(float)
    probability = 1 / (1 + np.exp(-(recency - 150) / 50))
    value = per["revenue"].clip(lower=0) * (0.2 + 0.15 * per["n_orders"].clip(upper=6))
    segment = np.select(
        [
            (recency < 60) & (per["n_orders"] >= 3),
            recency < 60,
            (recency < 150) & (per["n_orders"] >= 2),
            recency < 150,
            per["n_orders"] >= 3,
            per["n_orders"] >= 2,
            recency < 250,
        ],
        [
            "Champions",
            "New",
            "Loyal",
            "Need attention",
            "Can't lose them",
            "At risk",
            "Hibernating",
        ],
        default="Lost",
    )
    assert set(segment) <= set(SEGMENTS)
    scores = pd.DataFrame(
        {
            "customer_id": per.index.astype(str),
            "as_of": as_of,
            "churn_probability": probability.to_numpy(),
            "risk_band": pd.cut(probability, [0, 0.3, 0.6, 1], labels=["low", "medium", "high"])
            .astype(str)
            .to_numpy(),
            "p_alive": (1 - probability).to_numpy(),
            "expected_value_12m": value.to_numpy(),
            "segment": segment,
            "recency_days": recency.to_numpy(),
            "n_orders": per["n_orders"].to_numpy(),
            "revenue": per["revenue"].to_numpy(),
            "reason_1": np.where(recency > 120, "long time since last order", "few orders"),
            "reason_2": np.where(per["n_orders"] < 2, "bought only once", ""),
            "reason_3": "",
            "model_name": "churn-classifier",
            "model_version": "3",
            "model_uri": "models:/churn-classifier@champion",
        }
    )
    scores["value_at_risk"] = scores["churn_probability"] * scores["expected_value_12m"]
    scores = scores.sort_values(["churn_probability", "customer_id"], ascending=[False, True])
    scores["risk_rank"] = range(1, len(scores) + 1)
    return scores.reset_index(drop=True)


def _shop_targets(scores: pd.DataFrame, budget: float) -> pd.DataFrame:
    """Gain = 30 % of the value at risk saved minus the cost; greedy under the budget."""
    targets = scores.copy()
    high = targets["risk_band"] == "high"
    targets["action"] = np.where(high, "10% voucher", "reminder e-mail")
    targets["contact_cost"] = np.where(high, 4.0, 1.0)
    targets["expected_gain"] = 0.3 * targets["value_at_risk"] - targets["contact_cost"]
    targets["control_group"] = targets["risk_rank"] % 10 == 0
    candidates = targets[~targets["control_group"] & (targets["expected_gain"] > 0)]
    order = candidates.sort_values("expected_gain", ascending=False)
    chosen = order.index[order["contact_cost"].cumsum() <= budget]
    targets["selected"] = targets.index.isin(chosen)
    return targets


def _shop_labelled(transactions: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The churn label at a few monthly cutoffs, as in the training snapshots."""
    frames = []
    for months_back in range(4, 10):
        cutoff = as_of - pd.DateOffset(months=months_back)
        ts = transactions["ts"]
        base = transactions.loc[(ts <= cutoff) & (ts > cutoff - pd.Timedelta(days=365))]
        later = transactions.loc[(ts > cutoff) & (ts <= cutoff + pd.Timedelta(days=90))]
        ids = base["customer_id"].unique()
        frames.append(
            pd.DataFrame(
                {
                    "cutoff": cutoff,
                    "split": "train",
                    "churned": ~pd.Series(ids).isin(set(later["customer_id"])).to_numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def shop() -> dict[str, pd.DataFrame]:
    transactions = canonical_transactions(seed=11, n_customers=1_500)
    scores = _shop_scores(transactions, AS_OF)
    return {
        "transactions": transactions,
        "labelled": _shop_labelled(transactions, AS_OF),
        "scores": scores,
        "previous": _shop_scores(transactions, AS_OF - pd.Timedelta(days=30)),
        "targets": _shop_targets(scores, budget=400.0),
    }


def _render_shop(shop: dict[str, pd.DataFrame]) -> str:
    return render_report(
        shop["scores"],
        shop["targets"],
        shop["transactions"],
        shop["labelled"],
        shop["previous"],
        ReportConfig(top_targets=25),
        budget=400.0,
    )


@pytest.fixture(scope="module")
def shop_html(shop: dict[str, pd.DataFrame]) -> str:
    return _render_shop(shop)


def test_report_is_self_contained(shop_html: str) -> None:
    lowered = shop_html.lower()
    for banned in ("<script", "<link", "<img", "<iframe", "<object", "@import", "@font-face"):
        assert banned not in lowered, banned
    assert not re.search(r"(https?:)?//[a-z0-9]", lowered)  # no absolute or protocol-relative URL
    assert not re.search(r"\b(src|srcset)\s*=", lowered)
    assert set(re.findall(r"href=\"([^\"]*)\"", lowered)) <= {
        h for h in re.findall(r"href=\"(#[^\"]*)\"", lowered)
    }  # only links inside the page (SVG markers)
    assert set(re.findall(r"url\(([^)]*)\)", lowered)) <= set(
        re.findall(r"url\((#[^)]*)\)", lowered)
    )
    assert shop_html.count("<svg") == 5


def test_report_is_reproducible(shop: dict[str, pd.DataFrame], shop_html: str) -> None:
    """Same inputs, same bytes: DVC sees no change and two runs can be diffed."""
    again = _render_shop(shop)
    assert again == shop_html


def test_report_shows_the_marketing_kpis(shop: dict[str, pd.DataFrame], shop_html: str) -> None:
    from churn.scoring import kpis

    rate = kpis.repeat_purchase_rate(shop["transactions"][shop["transactions"]["ts"] < AS_OF])
    assert _value(shop_html, "kpi-repeat-rate") == f"{100 * rate:.1f}%"
    monthly = _element_text(shop_html, "monthly")
    assert "Sep 2026" in monthly
    assert "Cohort retention" in shop_html
    assert "churn rate at model cutoffs" in shop_html
    assert len(re.findall(r"<tr><td class=\"num\">", shop_html)) == 25  # top targets shown


@pytest.fixture
def chromium() -> str:
    """The browser binary; missing is a skip on a laptop and a failure in CI."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed but CI is set (.ci/run installs it)")
    pytest.skip("chromium not installed (run `make browser`)")


def _run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


def test_report_renders_in_headless_chromium(
    chromium: str, shop: dict[str, pd.DataFrame], shop_html: str, tmp_path: Path
) -> None:
    binary = chromium
    page = tmp_path / "retention_report.html"
    page.write_text(shop_html, encoding="utf-8")
    url = page.as_uri()

    dom = _run_chromium(binary, tmp_path / "profile-dom", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    numbers = headline(shop["scores"], shop["targets"], budget=400.0)
    assert _value(dom.stdout, "customers-at-risk") == f"{numbers.customers_at_risk:,}"
    assert _value(dom.stdout, "value-at-risk") == fmt_money(numbers.value_at_risk, "£")
    assert _value(dom.stdout, "budget-used") == fmt_money(numbers.budget_used, "£")
    assert _value(dom.stdout, "expected-gain") == fmt_money(numbers.expected_gain, "£")
    assert dom.stdout.count("<svg") == 5  # every chart survived parsing

    screenshot = tmp_path / "retention_report.png"
    shot = _run_chromium(
        binary,
        tmp_path / "profile-shot",
        f"--screenshot={screenshot}",
        "--window-size=1280,2400",
        url,
    )
    assert shot.returncode == 0 and screenshot.exists(), shot.stderr[-2000:]
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(screenshot, ARTIFACTS / "retention_report.png")
    shutil.copy(page, ARTIFACTS / "retention_report.html")

    with Image.open(screenshot) as image:
        assert image.size == (1280, 2400)
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    colours = {tuple(p) for p in pixels[::97]}
    assert len(colours) > 50, "a blank or failed render"
    header = np.all(np.abs(pixels.astype(int) - HEADER_RGB) <= 2, axis=1).mean()
    assert header > 0.01, "the header band is missing"
    risk_red = np.all(np.abs(pixels.astype(int) - (0xD1, 0x49, 0x5B)) <= 3, axis=1).sum()
    assert risk_red > 500, "the charts did not draw"


def test_cli_writes_the_report_atomically(shop: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    shop["scores"].to_parquet(tmp_path / "scores.parquet")
    shop["targets"].to_parquet(tmp_path / "targets.parquet")
    shop["previous"].to_parquet(tmp_path / "previous.parquet")
    shop["transactions"].to_parquet(tmp_path / "transactions.parquet")
    (tmp_path / "params.yaml").write_text(
        "paths:\n"
        "  scores: scores.parquet\n"
        "  targets_table: targets.parquet\n"
        "  transactions: transactions.parquet\n"
        "  train_features: missing.parquet\n"
        "  report: out/report.html\n"
        "report:\n  top_targets: 5\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "churn", "report", "--previous", "previous.parquet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    # A comparison is a one-off: named by the previous run's date, beside the tracked report
    previous_as_of = pd.Timestamp(shop["previous"]["as_of"].iloc[0]).date()
    name = f"report.previous={previous_as_of}.html"
    html = (tmp_path / "out" / name).read_text(encoding="utf-8")
    assert "against the previous run" in html
    assert "churn rate at model cutoffs" not in html  # no training snapshots given
    assert [p.name for p in (tmp_path / "out").iterdir()] == [name]  # no temp left


def test_cli_missing_targets_says_which_stage_to_run(tmp_path: Path) -> None:
    _tiny_scores().to_parquet(tmp_path / "scores.parquet")
    (tmp_path / "params.yaml").write_text(
        "paths:\n  scores: scores.parquet\n  targets_table: nowhere.parquet\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "churn", "report"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "nowhere.parquet not found" in proc.stderr
    assert "Traceback" not in proc.stderr
