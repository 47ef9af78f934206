"""The page over HTTP, without a browser: the same rows as the published list, filters
that say why nothing is left, typos refused, everything escaped, nothing external, the
newest nightly run preferred, and the campaign results once outcomes exist."""

from __future__ import annotations

import io
import re
import shutil
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from page_server import serving
from served_project import HOSTILE_NAME, HOSTILE_REASON

from churn.config import Params
from churn.schema import EXPORT_HEADERS

ID, BAND, PRIORITY = (EXPORT_HEADERS[c] for c in ("customer_id", "risk_band", "priority"))


@pytest.fixture(scope="module")
def url(project_params: Params) -> object:
    with serving(project_params, None) as base:
        yield base


def _get(address: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(address, timeout=30) as response:
            return response.status, response.headers.get("content-type", ""), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("content-type", ""), exc.read()


def test_a_filtered_download_is_the_published_list_filtered(
    url: str, project_params: Params
) -> None:
    published = pd.read_csv(project_params.paths.targets, keep_default_na=False)
    status, kind, body = _get(f"{url}/download.csv?band=high&top=5")
    assert status == 200 and kind.startswith("text/csv")
    got = pd.read_csv(io.BytesIO(body), keep_default_na=False)
    wanted = published[published[BAND] == "high"].head(5).reset_index(drop=True)
    assert got[ID].tolist() == wanted[ID].tolist() and len(got) == 5
    assert got[PRIORITY].tolist() == [1, 2, 3, 4, 5]  # numbered as an export of this cut
    pd.testing.assert_frame_equal(got.drop(columns=PRIORITY), wanted.drop(columns=PRIORITY))


def test_a_filter_that_leaves_nobody_says_which_and_a_typo_is_refused(url: str) -> None:
    status, _, body = _get(f"{url}/?band=high&min_value=1000000")
    page = body.decode()
    assert status == 200 and 'id="list"' not in page
    assert re.search(
        r"Nobody to show: --min-value 1e\+06 left 0 of [\d,]+ selected customers"
        r" \(after --band &#39;high&#39;: \d+\)",
        page,
    )
    status, _, body = _get(f"{url}/?band=nope")
    assert status == 400
    assert "--band &#39;nope&#39; is not one of: &#39;low&#39;, &#39;medium&#39;" in body.decode()
    status, _, body = _get(f"{url}/download.xlsx?top=ten")
    assert status == 400 and "top &#39;ten&#39; is not a whole number" in body.decode()


class _References(HTMLParser):
    """Every address an element would load or follow, and every CSS url()/@import."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._style = tag == "style"
        for name, value in attrs:
            if name in ("src", "href", "action", "srcset", "poster", "data", "formaction"):
                self.found.append(value or "")
            if name == "style" and value:
                self.handle_data(value)

    def handle_data(self, data: str) -> None:
        if self._style or "url(" in data:
            self.found += re.findall(r"url\(\s*['\"]?([^'\")]*)", data)
            self.found += re.findall(r"@import\s+['\"]([^'\"]*)", data)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/?band=high&segment=At+risk",
        "/customer/c0",
        "/customer/nobody",
        "/results",
        "/report",
        "/?band=nope",
    ],
)
def test_no_external_resource_and_everything_escaped(url: str, path: str) -> None:
    _, kind, body = _get(url + path)
    assert kind.startswith("text/html")
    page = body.decode()
    parser = _References()
    parser.feed(page)
    outside = [
        ref
        for ref in parser.found
        if re.match(r"\s*(https?:)?//", ref, re.I) and not ref.startswith(url + "/")
    ]
    assert outside == [], path
    assert "<script" not in page.lower()  # the page has no script, and data cannot add one
    assert HOSTILE_REASON not in page and "<b>click" not in page
    if path in ("/", "/customer/c0"):  # c0 is on the list, with a hostile name and reason
        assert (
            "=HYPERLINK(&#34;http://evil.example/x&#34;,&#34;&lt;b&gt;click&lt;/b&gt;&#34;)" in page
        )
        assert "&lt;script&gt;alert(&#39;reason&#39;)&lt;/script&gt; &amp; more" in page


def test_a_download_carries_no_formula_from_data(url: str) -> None:
    body = _get(f"{url}/download.csv")[2]
    names = pd.read_csv(io.BytesIO(body), keep_default_na=False).set_index(ID)["Name"]
    assert names["c0"] != HOSTILE_NAME and names["c0"].endswith(HOSTILE_NAME)
    assert not names["c0"].startswith(("=", "+", "-", "@"))


def test_a_customer_page_gives_risk_value_and_reasons(url: str) -> None:
    status, _, body = _get(f"{url}/customer/c0")
    page = body.decode()
    assert status == 200
    assert "<dt>Churn risk</dt><dd>90.0 % (high)</dd>" in page
    assert "<dt>Expected value, next 12 months</dt><dd>£900.00</dd>" in page
    assert "<li>&lt;script&gt;alert(&#39;reason&#39;)&lt;/script&gt; &amp; more</li>" in page
    assert "On the list: contact with the recommended action." in page
    status, _, body = _get(f"{url}/customer/nobody")
    assert status == 404 and "customer &#39;nobody&#39; is not in the scored list" in body.decode()


def test_the_campaign_results_show_once_outcomes_exist(
    project_params: Params, tmp_path: Path
) -> None:
    with serving(project_params, None) as base:
        page = _get(f"{base}/results")[2].decode()
    assert '<section id="did-it-work">' in page
    # the report's own wording: the sample's control groups are under outcomes.min_control
    assert "Purchases seen up to 2026-08-29" in page
    assert re.search(r"Personal call: too few customers were held out to tell \(\d+ in the", page)
    missing = tmp_path / "outcomes.json"
    paths = project_params.paths.model_copy(update={"outcomes_metrics": missing})
    with serving(project_params.model_copy(update={"paths": paths}), None) as base:
        page = _get(f"{base}/results")[2].decode()
    assert "did-it-work" not in page and "No campaign measured yet" in page


def test_the_newest_nightly_run_is_served(project_params: Params, tmp_path: Path) -> None:
    root = tmp_path / "nightly"
    for day, top in (("2026-09-02", 3), ("2026-09-03", 7)):  # the later one wins
        folder = root / f"as_of={day}"
        folder.mkdir(parents=True)
        targets = pd.read_parquet(project_params.paths.targets_table)
        keep = targets["customer_id"].isin(targets.loc[targets["selected"], "customer_id"][:top])
        targets.assign(selected=keep, as_of=pd.Timestamp(day)).to_parquet(
            folder / "targets.parquet"
        )
        shutil.copy(project_params.paths.report, folder / "retention_report.html")
        (folder / "manifest.json").write_text("{}")
    nightly = project_params.nightly.model_copy(update={"output_root": root})
    with serving(project_params.model_copy(update={"nightly": nightly}), None) as base:
        page = _get(f"{base}/")[2].decode()
        download = _get(f"{base}/download.csv")[2]
    assert "nightly run of 2026-09-03" in page
    assert "List of 2026-09-03: 7 customers shown of 7 on the list" in page
    assert len(pd.read_csv(io.BytesIO(download))) == 7
