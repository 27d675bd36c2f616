"""The console in a real browser: Debian's Chromium driven by Playwright (``executable_path``; no
browser download) against the node served over HTTP. Sign in, enter a record with an error and then
fix it, find the record, open its log entry, and see the dashboard move. A screenshot of each page
is saved under a folder the test prints."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import device
from tests.sync.nodes import Served, serve_in_thread
from tzsb.app import Node
from tzsb.registry import AccountStore, Role
from tzsb.registry import accounts as registry_accounts

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PASSWORD = "Correct-Horse-42!"

if CHROMIUM is None and os.environ.get("TZSB_REQUIRE_BROWSER"):
    raise RuntimeError("Chromium is required (TZSB_REQUIRE_BROWSER) but not installed: apt-get install chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the browser drives the pages; the same pages on PostgreSQL are driven over HTTP
    by test_console.py and test_console_import.py."""
    return f"sqlite:///{tmp_path / 'tzsb.db'}"


@pytest.fixture
def served(node: Node, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    monkeypatch.setattr(registry_accounts, "SCRYPT_COST", registry_accounts.ScryptCost(n=2**10, r=8, p=1))
    AccountStore(node.store, node.clock).create("admin", PASSWORD, Role.ADMIN, "330000")
    with serve_in_thread(node) as served:
        yield served


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("console-screenshots")


def test_sign_in_enter_fix_find_and_trace_a_record(
    served: Served, screenshots: Path, record_property: Callable[[str, object], None]
) -> None:
    record_property("show: console screenshots", str(screenshots))  # printed in the summary (conftest)
    from playwright.sync_api import expect, sync_playwright

    # localhost, not 127.0.0.1: a browser keeps a Secure cookie from plain HTTP only for localhost.
    base = served.url.split("/tzsb/")[0].replace("127.0.0.1", "localhost")
    record = {key: str(value) for key, value in device(11).items()}
    catalog = served.node.catalog["0101"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        try:
            page.goto(f"{base}/console/")
            expect(page).to_have_url(f"{base}/console/login")
            page.screenshot(path=screenshots / "01-login.png")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            expect(page.locator("h1")).to_contain_text("概览")
            page.screenshot(path=screenshots / "02-dashboard.png", full_page=True)
            requests_before = sum(
                int(text) for text in page.locator("table[data-window='1'] td.requests").all_inner_texts()
            )

            page.click("nav >> text=数据录入")
            page.click("text=0101")

            def fill(values: dict[str, str]) -> None:
                for spec in catalog.fields:
                    value = values.get(spec.code, "")
                    if spec.codes:
                        page.select_option(f"#input-{spec.code}", value)
                    else:
                        page.fill(f"#input-{spec.code}", value)
                page.click("form.record-form button[type=submit]")

            fill({**record, "EQP_CODE": "not-a-code"})
            expect(page.locator("#field-EQP_CODE .field-error")).to_be_visible()
            expect(page.locator("p.error[role=alert]")).to_contain_text("未保存")
            page.screenshot(path=screenshots / "03-entry-with-error.png", full_page=True)

            fill(record)
            expect(page.locator("p.ok")).to_contain_text("已保存")
            page.screenshot(path=screenshots / "04-entry-saved.png", full_page=True)

            page.click("nav >> text=记录")
            page.fill("input[name=key]", record["EQP_CODE"])
            page.click("form.filters button[type=submit]")
            page.click(f"text={record['EQP_CODE']}")
            expect(page.locator("h1")).to_contain_text(record["EQP_CODE"])
            expect(page.locator("table.fields")).to_contain_text(record["EQP_NAME"])
            page.screenshot(path=screenshots / "05-record.png", full_page=True)

            page.locator("table.grid").last.locator("a").first.click()  # the change's request in the log
            expect(page.locator("table.log tbody tr")).to_have_count(1)
            page.screenshot(path=screenshots / "06-log.png", full_page=True)
            page.locator("table.log tbody a").first.click()
            expect(page.locator("h1")).to_contain_text("日志 #")
            expect(page.locator("table.fields")).to_contain_text("console-admin")
            page.screenshot(path=screenshots / "07-log-entry.png", full_page=True)

            page.click("nav >> text=概览")
            requests_after = sum(
                int(text) for text in page.locator("table[data-window='1'] td.requests").all_inner_texts()
            )
            assert requests_after == requests_before + 2  # the refused entry and the saved one
            expect(page.locator("svg").first).to_be_visible()
            page.screenshot(path=screenshots / "08-dashboard-after.png", full_page=True)
        finally:
            browser.close()
    assert sorted(path.name for path in screenshots.iterdir() if path.name.endswith(".png"))[:1] == ["01-login.png"]


def test_import_an_xlsx_with_bad_rows_then_a_clean_one(served: Served, screenshots: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.web.test_console_import import xlsx

    base = served.url.split("/tzsb/")[0].replace("127.0.0.1", "localhost")
    records = [device(n) for n in range(60, 64)]
    bad = [dict(record) for record in records]
    bad[2]["EQP_CODE"] = "not-a-code"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        try:
            page.goto(f"{base}/console/login")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.click("nav >> text=导入")
            page.screenshot(path=screenshots / "09-import.png", full_page=True)
            for name, content, state in (("bad.xlsx", xlsx(served.node, bad), "refused"),
                                         ("clean.xlsx", xlsx(served.node, records), "done")):  # fmt: skip
                page.goto(f"{base}/console/import")
                page.select_option("#import-business", "0101")
                page.set_input_files(
                    "input[name=file]",
                    files=[{"name": name, "mimeType": "application/octet-stream", "buffer": content}],
                )
                page.click("form.import-form button[type=submit]")
                expect(page.locator("p.state")).to_have_attribute("data-state", state, timeout=60_000)
                page.screenshot(path=screenshots / f"10-import-{state}.png", full_page=True)
            expect(page.locator("#imported")).to_have_text("4")
            page.goto(f"{base}/console/import")  # the refused file's report names row 4's key
            page.locator("tr", has_text="bad.xlsx").locator("a").click()
            expect(page.locator("table.report")).to_contain_text("EQP_CODE")
        finally:
            browser.close()
