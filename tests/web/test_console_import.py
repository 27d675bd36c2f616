"""Importing CSV and XLSX files from the console over real HTTP: templates with Chinese headers, a
report by row and field, nothing imported until the file is clean unless the operator asks for the
valid rows only, and hostile files (oversized, malformed, formulas, XML entities) refused with
nothing written."""

from __future__ import annotations

import csv
import html
import io
import re
import time
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import openpyxl
import pytest

from tests.support import body, call, device, grant, log_rows, snapshot
from tests.sync.nodes import Served, serve_in_thread
from tests.web.test_console import PASSWORD, Browser, close_clients  # noqa: F401 - closes the clients
from tzsb.app import Node
from tzsb.clock import FixedClock
from tzsb.registry import AccountStore, Role
from tzsb.registry import accounts as registry_accounts
from tzsb.store import import_jobs, records_read
from tzsb.web.console.core import UPLOAD_TOO_LARGE, console_appid
from tzsb.web.console.imports import HELD_ELSEWHERE, INTERRUPTED, MAX_UPLOAD_BYTES

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def served(node: Node, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    monkeypatch.setattr(registry_accounts, "SCRYPT_COST", registry_accounts.ScryptCost(n=2**10, r=8, p=1))
    accounts = AccountStore(node.store, node.clock)
    accounts.create("clerk", PASSWORD, Role.DATA_ENTRY, "330100")
    accounts.create("auditor", PASSWORD, Role.AUDITOR, "330000")
    with serve_in_thread(node) as served:
        yield served


@pytest.fixture
def clerk(served: Served) -> Browser:
    browser = Browser(served)
    assert browser.sign_in("clerk").status_code == 303
    return browser


def _held(node: Node) -> set[str]:
    with node.store.read() as connection:
        return set(records_read.fetch(connection, "0101", [device(n)["EQP_CODE"] for n in range(100)]))


def _names(node: Node) -> list[str]:
    return [spec.name for spec in node.catalog["0101"].fields]


def _rows(node: Node, records: list[dict[str, Any]]) -> list[list[str]]:
    codes = [spec.code for spec in node.catalog["0101"].fields]
    return [[str(record.get(code, "")) for code in codes] for record in records]


def xlsx(node: Node, records: list[dict[str, Any]], *, formula_in_row: int | None = None) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(_names(node))
    for index, row in enumerate(_rows(node, records)):
        if index == formula_in_row:
            row[_names(node).index(node.catalog["0101"].by_code["EQP_NAME"].name)] = "=1+1"
        sheet.append(row)
    output = io.BytesIO()
    book.save(output)
    return output.getvalue()


def upload(browser: Browser, name: str, content: bytes, mode: str, media: str = XLSX) -> httpx.Response:
    csrf = browser.csrf("/console/import")
    return browser._keep(
        browser.client.post(
            "/console/import",
            data={"csrf": csrf, "business": "0101", "mode": mode},
            files={"file": (name, content, media)},
            headers=browser._header(),
        )
    )


def finished(browser: Browser, answer: httpx.Response) -> str:
    """The job page once the job has ended."""
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    deadline = time.monotonic() + 120
    while True:
        page = browser.get(location).text
        state = re.search(r'data-state="(\w+)"', page)
        assert state
        if state.group(1) not in ("reading", "checking", "importing"):
            return page
        assert time.monotonic() < deadline, "the import did not end"
        time.sleep(0.2)


def figure(page: str, name: str) -> int:
    found = re.search(rf'id="{name}">(\d+)<', page)
    assert found, name
    return int(found.group(1))


def test_templates_carry_the_chinese_headers(served: Served, clerk: Browser) -> None:
    book = openpyxl.load_workbook(io.BytesIO(clerk.get("/console/import/0101/template.xlsx").content))
    assert [cell.value for cell in book["数据"][1]] == _names(served.node)
    assert book["说明"]["B2"].value == served.node.catalog["0101"].fields[0].code
    text = clerk.get("/console/import/0101/template.csv").content
    assert text.startswith(b"\xef\xbb\xbf")
    assert next(csv.reader(io.StringIO(text.decode("utf-8-sig")))) == _names(served.node)


def test_a_file_with_bad_rows_imports_nothing_then_the_clean_file_imports_all(served: Served, clerk: Browser) -> None:
    records = [device(n) for n in range(1, 6)]
    bad = [dict(record) for record in records]
    bad[1]["EQP_CODE"] = "not-a-code"
    bad[3]["AREA_CODE"] = "330205"  # Ningbo: outside the clerk's Hangzhou
    before = snapshot(served.node)

    page = finished(clerk, upload(clerk, "bad.xlsx", xlsx(served.node, bad), "clean"))

    assert 'data-state="refused"' in page and figure(page, "error-rows") == 2 and figure(page, "imported") == 0
    report = re.findall(r'<tr class="refused"><td class="num">(\d+)</td>\s*<td>[^<]*<code>(\w+)</code>', page)
    assert ("3", "EQP_CODE") in report and ("5", "AREA_CODE") in report
    assert snapshot(served.node)["records"] == before["records"]

    page = finished(clerk, upload(clerk, "clean.xlsx", xlsx(served.node, records), "clean"))

    assert 'data-state="done"' in page and figure(page, "imported") == 5, page
    held = _held(served.node)
    assert {record["EQP_CODE"] for record in records} <= held
    assert [row["result"] for row in log_rows(served.node) if row["appid"] == console_appid("clerk")] == ["0001"]


def test_only_the_valid_rows_when_the_operator_asks(served: Served, clerk: Browser) -> None:
    records = [device(n) for n in range(10, 14)]
    records[2]["EQP_CODE"] = "not-a-code"
    page = finished(clerk, upload(clerk, "mixed.xlsx", xlsx(served.node, records), "valid_rows"))
    assert 'data-state="done"' in page and figure(page, "imported") == 3 and figure(page, "error-rows") == 1
    held = _held(served.node)
    assert device(10)["EQP_CODE"] in held and "not-a-code" not in held


def test_check_only_writes_nothing(served: Served, clerk: Browser) -> None:
    before = snapshot(served.node)
    page = finished(clerk, upload(clerk, "check.xlsx", xlsx(served.node, [device(20)]), "check"))
    assert 'data-state="done"' in page and figure(page, "checked") == 1 and figure(page, "imported") == 0
    assert snapshot(served.node)["records"] == before["records"]


def test_a_gb18030_csv_with_chinese_headers_imports(served: Served, clerk: Browser) -> None:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(_names(served.node))
    writer.writerows(_rows(served.node, [device(30), device(31)]))
    page = finished(clerk, upload(clerk, "excel.csv", text.getvalue().encode("gb18030"), "clean", "text/csv"))
    assert 'data-state="done"' in page and figure(page, "imported") == 2, page


def test_a_formula_is_a_row_error_and_is_not_evaluated(served: Served, clerk: Browser) -> None:
    before = snapshot(served.node)
    page = finished(clerk, upload(clerk, "formula.xlsx", xlsx(served.node, [device(40)], formula_in_row=0), "clean"))
    assert 'data-state="refused"' in page and "formula" in page
    assert snapshot(served.node)["records"] == before["records"]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("damaged.xlsx", b"PK\x03\x04 this is not a workbook", "the XLSX cannot be read"),
        ("empty.csv", b"", "the file is empty"),
        ("other.csv", "名称,颜色\n甲,红\n".encode(), "columns not in business type 0101"),
        ("binary.csv", b"\xff\xfe\x00\x00\x81\x00", "the file is neither UTF-8 nor GB18030"),
        ("nul.csv", b"a\x00b,c\n", "the file is not a text CSV"),
    ],
)
def test_a_malformed_file_is_refused_and_nothing_is_written(
    served: Served, clerk: Browser, name: str, content: bytes, expected: str
) -> None:
    before = snapshot(served.node)
    page = finished(clerk, upload(clerk, name, content, "clean", "application/octet-stream"))
    assert 'data-state="refused"' in page and expected in page, page
    assert snapshot(served.node)["records"] == before["records"]


def test_an_xlsx_with_an_xml_entity_is_refused(served: Served, clerk: Browser) -> None:
    """An XXE in the sheet: defusedxml stops openpyxl from resolving it; the file is refused."""
    original = xlsx(served.node, [device(50)])
    rebuilt = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(original)) as source, zipfile.ZipFile(rebuilt, "w") as target:
        for member in source.infolist():
            data = source.read(member)
            if member.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(
                    b"<worksheet", b'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><worksheet', 1
                )
            target.writestr(member, data)
    before = snapshot(served.node)
    page = finished(clerk, upload(clerk, "xxe.xlsx", rebuilt.getvalue(), "clean"))
    assert 'data-state="refused"' in page and "root:" not in page
    assert snapshot(served.node)["records"] == before["records"]


def test_an_oversized_upload_is_refused_before_it_is_read(served: Served, clerk: Browser) -> None:
    before = snapshot(served.node)
    answer = upload(clerk, "huge.csv", b"x" * (MAX_UPLOAD_BYTES + 200_000), "clean", "text/csv")
    assert answer.status_code == 413 and UPLOAD_TOO_LARGE in answer.text
    assert snapshot(served.node)["records"] == before["records"]


def test_the_upload_needs_its_csrf_token_and_the_role(served: Served, clerk: Browser) -> None:
    answer = clerk._keep(
        clerk.client.post(
            "/console/import", data={"csrf": "forged", "business": "0101", "mode": "clean"},
            files={"file": ("a.csv", b"x", "text/csv")}, headers=clerk._header(),
        )
    )  # fmt: skip
    assert answer.status_code == 403
    auditor = Browser(served)
    assert auditor.sign_in("auditor").status_code == 303
    assert auditor.get("/console/import").status_code == 403


def test_a_large_file_runs_in_the_background_and_shows_progress(served: Served, clerk: Browser) -> None:
    records = [device(n) for n in range(1000, 6000)]
    answer = upload(clerk, "large.xlsx", xlsx(served.node, records), "clean")
    assert answer.status_code == 303
    # The server answers other pages while the import runs.
    assert clerk.get("/console/").status_code == 200
    first = clerk.get(answer.headers["location"]).text
    assert figure(first, "total") in (0, 5000)
    page = finished(clerk, answer)
    assert 'data-state="done"' in page and figure(page, "imported") == 5000
    assert [row["record_count"] for row in log_rows(served.node) if row["appid"] == console_appid("clerk")] == [
        1000
    ] * 5


def test_a_job_and_its_report_are_shown_to_its_uploader_and_admins_only(served: Served, clerk: Browser) -> None:
    """A report quotes the file's rows (keys, ID numbers): another data-entry account of the same
    region neither sees the job listed nor opens it."""
    AccountStore(served.node.store, served.node.clock).create("clerk2", PASSWORD, Role.DATA_ENTRY, "330100")
    AccountStore(served.node.store, served.node.clock).create("boss", PASSWORD, Role.ADMIN, "330000")
    answer = upload(clerk, "mine.xlsx", xlsx(served.node, [device(60)]), "check")
    finished(clerk, answer)
    location = answer.headers["location"]
    other = Browser(served)
    assert other.sign_in("clerk2").status_code == 303
    assert other.get(location).status_code == 404
    assert location not in other.get("/console/import").text and "mine.xlsx" not in other.get("/console/import").text
    boss = Browser(served)
    assert boss.sign_in("boss").status_code == 303
    assert boss.get(location).status_code == 200 and location in boss.get("/console/import").text


def test_a_key_held_outside_the_clerks_view_refuses_the_file_without_naming_the_row(
    served: Served, clerk: Browser
) -> None:
    """Every batch is checked against the store before the first is written: a key a Ningbo record
    holds refuses the whole file (nothing imported, though the key's batch is the last), and the
    page does not say which row, as an add would not."""
    ningbo = device(70, AREA_CODE="330205")
    writer = grant(served.node, appid="ningbo", region="330200", busicodes=frozenset({"140101"}))
    assert call(served.node, body("ningbo", writer, "140101", "01", [ningbo]))["datalist"]["result"] == "0001"
    records = [device(n) for n in range(2000, 3000)] + [{**ningbo, "AREA_CODE": "330106"}]
    before = snapshot(served.node)

    page = finished(clerk, upload(clerk, "held.xlsx", xlsx(served.node, records), "clean"))

    assert 'data-state="refused"' in page and HELD_ELSEWHERE in html.unescape(page)
    assert ningbo["EQP_CODE"] not in page and "1002" not in page  # row 1002 of the file: the held key's
    assert figure(page, "imported") == 0 and figure(page, "error-rows") == 0
    assert snapshot(served.node)["records"] == before["records"]


def test_a_key_repeated_in_the_file_is_reported_once_by_file_row(served: Served, clerk: Browser) -> None:
    records = [device(80), device(81), device(80)]
    page = finished(clerk, upload(clerk, "twice.xlsx", xlsx(served.node, records), "check"))
    report = re.findall(r'<tr class="refused"><td class="num">(\d+)</td>', page)
    assert report == ["4"] and "the same key as row 2" in page
    assert device(80)["EQP_CODE"] not in page.split("<table", 1)[-1]


def test_an_xlsx_whose_dimension_understates_its_rows_is_read_whole(served: Served, clerk: Browser) -> None:
    """openpyxl's read-only mode trusts a sheet's <dimension>; a file saying A1:A1 still has every
    row read (else rows would be skipped silently)."""
    original = xlsx(served.node, [device(90), device(91), device(92)])
    rebuilt = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(original)) as source, zipfile.ZipFile(rebuilt, "w") as target:
        for member in source.infolist():
            data = source.read(member)
            if member.filename == "xl/worksheets/sheet1.xml":
                data, count = re.subn(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:A1"', data)
                assert count == 1
            target.writestr(member, data)
    page = finished(clerk, upload(clerk, "dimension.xlsx", rebuilt.getvalue(), "check"))
    assert 'data-state="done"' in page and figure(page, "checked") == 3, page


def test_a_job_whose_thread_ended_with_its_process_is_shown_interrupted(
    served: Served, clerk: Browser, clock: FixedClock
) -> None:
    job = import_jobs.ImportJob(
        id="f" * 32, username="clerk", region="330100", business="0101", file_name="lost.xlsx", mode="clean",
        state="importing", total=5000, checked=5000, imported=2000, error_rows=0, warning_rows=0, report=[],
        message="", created_at=clock.now().isoformat(timespec="seconds"),
        updated_at=clock.now().isoformat(timespec="seconds"),
    )  # fmt: skip
    with served.node.store.write() as connection:
        import_jobs.add(connection, job)
    assert 'data-state="importing"' in clerk.get(f"/console/import/jobs/{job.id}").text
    clock.advance(timedelta(minutes=11))
    page = clerk.get(f"/console/import/jobs/{job.id}").text
    assert 'data-state="failed"' in page and INTERRUPTED in html.unescape(page) and figure(page, "imported") == 2000


def test_control_characters_in_the_file_name_are_dropped(served: Served, clerk: Browser) -> None:
    """A raw NUL or escape in the multipart file name (httpx would percent-encode them; a hand-made
    client need not): dropped, so the name stores on PostgreSQL too and prints safely."""
    boundary = "tzsbboundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in (("csrf", clerk.csrf("/console/import")), ("business", "0101"), ("mode", "check"))
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a\x00b\x1bc.xlsx"\r\n'
        f"Content-Type: {XLSX}\r\n\r\n".encode()
        + xlsx(served.node, [device(95)])
        + f"\r\n--{boundary}--\r\n".encode()
    )
    answer = clerk._keep(
        clerk.client.post(
            "/console/import",
            content=b"".join(parts),
            headers={**clerk._header(), "content-type": f"multipart/form-data; boundary={boundary}"},
        )
    )
    page = finished(clerk, answer)
    assert 'data-state="done"' in page and "导入：abc.xlsx" in page


def test_a_locked_out_console_app_checks_no_file(served: Served, clerk: Browser) -> None:
    """A check is a look-up of the store like an add: while the clerk's console app is locked out
    (for probing keys held elsewhere), an upload is refused before any row is looked up."""
    upload(clerk, "first.xlsx", xlsx(served.node, [device(96)]), "check")  # makes the console app
    served.node.exchange.local.collisions.lockouts.lock_app(console_appid("clerk"), 10)
    before = snapshot(served.node)
    page = finished(clerk, upload(clerk, "probe.xlsx", xlsx(served.node, [device(97)]), "check"))
    assert 'data-state="refused"' in page and "E_LOCKED" in page and figure(page, "checked") == 0, page
    assert snapshot(served.node)["records"] == before["records"]


def test_a_row_with_errors_is_not_looked_for_among_held_keys(served: Served, clerk: Browser) -> None:
    """In valid-rows mode a row with errors is not sent, so its key is not checked against the
    store (nor counted as a collision): the rest imports."""
    ningbo = device(98, AREA_CODE="330205")
    writer = grant(served.node, appid="ningbo", region="330200", busicodes=frozenset({"140101"}))
    assert call(served.node, body("ningbo", writer, "140101", "01", [ningbo]))["datalist"]["result"] == "0001"
    broken = {**ningbo}  # its region is outside the clerk's: a row with an error
    page = finished(clerk, upload(clerk, "mixed.xlsx", xlsx(served.node, [broken, device(99)]), "valid_rows"))
    assert 'data-state="done"' in page and figure(page, "imported") == 1 and figure(page, "error-rows") == 1, page
