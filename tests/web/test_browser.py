"""`churn serve` in real headless Chromium (Debian's, driven by Playwright): filter the
list, open a customer, download what is shown as CSV and Excel and check the files hold
exactly the rows on the page. Screenshots go to test-artifacts/screenshots/.

Like the report's render test, it skips without Chromium and fails when CI is set.
Playwright never downloads a browser here: it drives /usr/bin/chromium.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from openpyxl import load_workbook

from churn.cells import neutralise
from churn.schema import EXPORT_HEADERS
from churn.web.cells import NUMERIC, display

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ID = EXPORT_HEADERS["customer_id"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium through Playwright; missing is a skip on a laptop and a failure in CI."""
    found = Path(CHROMIUM).is_file() or shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        found = False
    if not found:
        if os.environ.get("CI"):
            pytest.fail("chromium or playwright is missing but CI is set (.ci/run installs it)")
        pytest.skip("chromium not installed (run `make browser`)")
    path = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _table(page: Any) -> pd.DataFrame:
    headers = page.locator("#list thead th").all_inner_texts()
    cells = page.locator("#list tbody tr").evaluate_all(
        "rows => rows.map(r => Array.from(r.cells).map(c => c.innerText))"
    )
    return pd.DataFrame(cells, columns=headers)


def _as_shown(frame: pd.DataFrame, headers: list[str]) -> pd.DataFrame:
    """A downloaded list written as the page writes it, in the page's columns."""
    return pd.DataFrame(
        [
            [display(h, v, "£") for h, v in zip(headers, row, strict=True)]
            for row in frame[headers].itertuples(index=False)
        ],
        columns=headers,
    )


def _as_written(shown: pd.DataFrame) -> pd.DataFrame:
    """The page's text as the safe writers store it: text that a spreadsheet would run
    as a formula is neutralised in the files (the page shows it as it is, escaped)."""
    return shown.apply(lambda col: col if col.name in NUMERIC else col.map(neutralise))


def _xlsx_as_percent_points(path: Path) -> pd.DataFrame:
    """The downloaded sheet, with percent-formatted cells read as the page shows them: the
    workbook stores 0.754 under a `0%` format where the page (and the CSV) say 75.4."""
    sheet = load_workbook(path).active
    rows = [
        [
            cell.value * 100
            if isinstance(cell.value, float) and cell.number_format.endswith("%")
            else cell.value
            for cell in row
        ]
        for row in sheet.iter_rows()
    ]
    return pd.DataFrame(rows[1:], columns=rows[0]).fillna("")


def _download(page: Any, button: str, folder: Path) -> Path:
    with page.expect_download() as event:
        page.click(button)
    target = folder / event.value.suggested_filename
    event.value.save_as(target)
    return target


def test_filter_open_a_customer_and_download_what_is_shown(
    browser: Any, page_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(page_url + "/")
    everyone = _table(page)
    assert len(everyone) > 20
    _shot(page, "list")

    page.select_option("select[name=band]", ["high"])
    page.select_option("select[name=action]", ["Personal call"])
    page.fill("input[name=top]", "12")
    page.click("#apply")
    page.wait_for_url("**/?*band=high*")
    shown = _table(page)
    assert 0 < len(shown) <= 12
    assert set(shown[EXPORT_HEADERS["risk_band"]]) == {"high"}
    assert set(shown[EXPORT_HEADERS["action"]]) == {"Personal call"}
    assert shown[EXPORT_HEADERS["priority"]].tolist() == [str(i) for i in range(1, len(shown) + 1)]
    _shot(page, "list-filtered")

    csv_file = _download(page, "#download-csv", tmp_path)
    assert csv_file.name.endswith(".band-high.action-personal-call.top-12.csv")
    from_csv = pd.read_csv(csv_file, keep_default_na=False, dtype={ID: str})
    pd.testing.assert_frame_equal(_as_shown(from_csv, list(shown.columns)), _as_written(shown))

    xlsx_file = _download(page, "#download-xlsx", tmp_path)
    from_xlsx = _xlsx_as_percent_points(xlsx_file)
    pd.testing.assert_frame_equal(_as_shown(from_xlsx, list(shown.columns)), _as_written(shown))

    first = shown[ID].iloc[0]
    page.click("#list tbody tr:first-child a")
    page.wait_for_selector("#customer")
    assert page.inner_text("#customer") == f"Customer {first}"
    facts = page.inner_text("#facts")
    assert "(high)" in facts and f"{first}@shop.example" in facts
    assert page.locator("#reasons li").count() >= 1
    _shot(page, "customer")

    page.click("nav a[href='/results']")
    page.wait_for_selector("#did-it-work")
    _shot(page, "results")
    page.click("nav a[href='/report']")
    page.wait_for_url("**/report")
    assert "Top targets" in page.content()
    _shot(page, "report")
    context.close()
    with capsys.disabled():
        print(f"\nscreenshots of `churn serve`: {SCREENSHOTS}")
