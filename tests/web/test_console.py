"""The console over real HTTP (uvicorn on loopback): sign-in, cookies, CSRF on every form, each
route with each role, session expiry, lock-out, oversized forms, and data entry through the
exchange pipeline (logged, region-checked, nothing written when refused)."""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.exchange.test_masking_oracles import CERT_HOLDER, NATIONAL, id_number, person
from tests.support import body, call, device, grant, log_rows, snapshot
from tests.sync.nodes import Served, serve_in_thread
from tzsb import audit, refusals
from tzsb.app import Node
from tzsb.audit import InteractionLog, LogEntry
from tzsb.clock import FixedClock
from tzsb.exchange import reassign_record
from tzsb.registry import AccountStore, AppSpec, Role
from tzsb.registry import accounts as registry_accounts
from tzsb.rules import shipped_rule_sets
from tzsb.web.console.core import (
    CHAIN_WHOLE_NODE,
    FORM_EXPIRED,
    KEY_LOOKS_PERSONAL,
    KEY_SEARCH_MASKED,
    LOGIN_FAILED,
    SESSION_COOKIE,
    console_appid,
    outside_scope,
    role_refused,
)

PASSWORD = "Correct-Horse-42!"
USERS = {
    "admin": (Role.ADMIN, "330000"),
    "ops": (Role.OPERATOR, "330000"),
    "clerk": (Role.DATA_ENTRY, "330100"),
    "auditor": (Role.AUDITOR, "330000"),
}


@pytest.fixture(autouse=True)
def fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_accounts, "SCRYPT_COST", registry_accounts.ScryptCost(n=2**10, r=8, p=1))


_OPEN: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


@pytest.fixture
def served(node: Node) -> Iterator[Served]:
    accounts = AccountStore(node.store, node.clock)
    for username, (role, region) in USERS.items():
        accounts.create(username, PASSWORD, role, region)
    with serve_in_thread(node) as served:
        yield served


class Browser:
    """An HTTP client that keeps the console's cookies as a browser on loopback would (httpx's jar
    does not send Secure cookies over plain HTTP)."""

    def __init__(self, served: Served) -> None:
        self.base = served.url.split("/tzsb/")[0]
        self.client = httpx.Client(base_url=self.base, follow_redirects=False, timeout=10)
        _OPEN.append(self.client)
        self.cookies: dict[str, str] = {}
        self.set_cookie_headers: list[str] = []

    def _keep(self, response: httpx.Response) -> httpx.Response:
        for header in response.headers.get_list("set-cookie"):
            self.set_cookie_headers.append(header)
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0].strip('"')
            if "max-age=0" in header.lower() or "expires=thu, 01 jan 1970" in header.lower():
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return response

    def _header(self) -> dict[str, str]:
        return {"cookie": "; ".join(f"{name}={value}" for name, value in self.cookies.items())} if self.cookies else {}

    def get(self, path: str) -> httpx.Response:
        return self._keep(self.client.get(path, headers=self._header()))

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        return self._keep(self.client.post(path, data=data, headers=self._header()))

    def csrf(self, path: str) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.get(path).text)
        assert found, path
        return found.group(1)

    def sign_in(self, username: str, password: str = PASSWORD) -> httpx.Response:
        return self.post(
            "/console/login", {"csrf": self.csrf("/console/login"), "username": username, "password": password}
        )


def signed_in(served: Served, username: str) -> Browser:
    browser = Browser(served)
    assert browser.sign_in(username).status_code == 303
    return browser


def test_signing_in_sets_a_hardened_session_cookie_and_opens_the_dashboard(served: Served) -> None:
    browser = Browser(served)
    assert browser.get("/console/").headers["location"] == "/console/login"
    answer = browser.sign_in("admin")
    assert (answer.status_code, answer.headers["location"]) == (303, "/console/")
    [session] = [header for header in browser.set_cookie_headers if header.startswith(SESSION_COOKIE + "=")]
    attributes = {part.strip().lower() for part in session.split(";")[1:]}
    assert {"httponly", "secure", "samesite=strict", "path=/console"} <= attributes
    page = browser.get("/console/")
    assert page.status_code == 200 and "概览" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    assert "https://" not in page.text and "http://" not in page.text.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_a_wrong_password_is_refused_and_repeated_failures_lock_the_account(served: Served) -> None:
    browser = Browser(served)
    for _ in range(5):
        refused = browser.sign_in("admin", "wrong-password-1")
        assert refused.status_code == 401 and LOGIN_FAILED in refused.text
    locked = browser.sign_in("admin")  # the right password, but locked for a while: the same words
    assert locked.status_code == 401 and LOGIN_FAILED in locked.text
    assert SESSION_COOKIE not in browser.cookies


def test_the_login_form_needs_its_csrf_token(served: Served) -> None:
    browser = Browser(served)
    browser.get("/console/login")
    answer = browser.post("/console/login", {"csrf": "forged", "username": "admin", "password": PASSWORD})
    assert answer.status_code == 403 and FORM_EXPIRED in answer.text
    assert SESSION_COOKIE not in browser.cookies


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/console/", {"admin", "ops", "clerk", "auditor"}),
        ("/console/password", {"admin", "ops", "clerk", "auditor"}),
        ("/console/entry", {"admin", "clerk"}),
        ("/console/entry/0101", {"admin", "clerk"}),
        ("/console/records", {"admin", "ops", "clerk", "auditor"}),
        ("/console/logs", {"admin", "ops", "auditor"}),
        ("/console/chain", {"admin", "ops", "auditor"}),
        ("/console/import", {"admin", "clerk"}),
        ("/console/apps", {"admin", "ops"}),
        ("/console/apps/new", {"admin", "ops"}),
        ("/console/accounts", {"admin"}),
        ("/console/rules", {"admin", "ops"}),
    ],
)
def test_each_page_with_each_role(served: Served, path: str, allowed: set[str]) -> None:
    assert Browser(served).get(path).headers["location"] == "/console/login"
    for username, (role, _) in USERS.items():
        answer = signed_in(served, username).get(path)
        if username in allowed:
            assert answer.status_code == 200, (path, username)
        else:
            assert answer.status_code == 403 and role_refused(role) in answer.text, (path, username)


def test_a_session_expires(served: Served, clock: FixedClock) -> None:
    browser = signed_in(served, "auditor")
    assert browser.get("/console/logs").status_code == 200
    clock.advance(timedelta(hours=8, seconds=1))
    assert browser.get("/console/logs").headers["location"] == "/console/login"


def test_every_form_refuses_a_missing_or_forged_csrf_token(served: Served) -> None:
    grant(served.node)
    browser = signed_in(served, "admin")
    before = snapshot(served.node)
    apps_before = [app.describe() for app in served.node.registry.list()]
    for path, fields in [
        ("/console/entry/0101", {key: str(value) for key, value in device(7).items()}),
        ("/console/password", {"current": PASSWORD, "new": "Another-Horse-43!", "again": "Another-Horse-43!"}),
        (
            "/console/apps/new",
            {
                "appid": "forged-app",
                "region": "330000",
                "busicodes": "140101",
                "actions": "04",
                "sign": "MD5",
                "max_records": "100",
            },
        ),
        ("/console/apps/hz-city/disable", {}),
        ("/console/apps/hz-city/rotate", {"grace_hours": "0"}),
        ("/console/accounts", {"username": "forged", "role": "admin", "region": "330000", "password": PASSWORD}),
        ("/console/accounts/clerk/disable", {}),
        ("/console/chain", {}),
        ("/console/logout", {}),
    ]:
        for forged in ({}, {"csrf": "0" * 64}):
            answer = browser.post(path, {**fields, **forged})
            assert answer.status_code == 403 and FORM_EXPIRED in answer.text, path
    assert snapshot(served.node)["records"] == before["records"]
    assert [app.describe() for app in served.node.registry.list()] == apps_before
    assert [account.username for account in AccountStore(served.node.store, served.node.clock).list()] == sorted(USERS)
    assert browser.get("/console/").status_code == 200  # still signed in: the password did not change


def test_an_oversized_form_is_refused_and_nothing_is_written(served: Served) -> None:
    browser = signed_in(served, "admin")
    before = snapshot(served.node)
    csrf = browser.csrf("/console/entry/0101")
    answer = browser.post("/console/entry/0101", {"csrf": csrf, "EQP_NAME": "x" * 300_000})
    assert answer.status_code == 403
    assert snapshot(served.node)["records"] == before["records"]


def test_a_record_entered_with_an_error_is_shown_beside_its_field_then_saved_when_fixed(served: Served) -> None:
    browser = signed_in(served, "clerk")  # a Hangzhou (330100) data-entry account
    fields = {key: str(value) for key, value in device(7).items()}
    csrf = browser.csrf("/console/entry/0101")
    before = snapshot(served.node)

    wrong = browser.post("/console/entry/0101", {**fields, "csrf": csrf, "EQP_CODE": "not-a-code"})

    assert wrong.status_code == 400 and "未保存" in wrong.text
    field = re.search(r'<div class="field has-error" id="field-EQP_CODE">(.*?)</div>', wrong.text, re.S)
    assert field and "field-error" in field.group(1)
    assert snapshot(served.node)["records"] == before["records"]

    saved = browser.post("/console/entry/0101", {**fields, "csrf": csrf})

    assert saved.status_code == 200 and "已保存" in saved.text, saved.text
    key = fields["EQP_CODE"]
    rows = [row for row in log_rows(served.node) if row["appid"] == console_appid("clerk")]
    assert [(row["action"], row["result"]) for row in rows] == [("01", "0000"), ("01", "0001")]
    record = browser.get(f"/console/records/0101/{key}")
    assert record.status_code == 200 and key in record.text and console_appid("clerk") in record.text
    # A data-entry account sees sensitive fields masked.
    assert device(7)["SAFETY_MANAGER_PHONE"] not in record.text


def test_a_record_outside_the_accounts_region_is_refused_and_not_written(served: Served) -> None:
    browser = signed_in(served, "clerk")
    fields = {key: str(value) for key, value in device(8, AREA_CODE="330205").items()}  # Ningbo
    before = snapshot(served.node)
    answer = browser.post("/console/entry/0101", {**fields, "csrf": browser.csrf("/console/entry/0101")})
    assert answer.status_code == 400 and outside_scope("330205", "330100") in answer.text
    assert snapshot(served.node)["records"] == before["records"]


def test_records_and_log_entries_outside_the_accounts_region_are_not_shown(served: Served) -> None:
    admin = signed_in(served, "admin")
    fields = {key: str(value) for key, value in device(9, AREA_CODE="330205").items()}
    assert admin.post("/console/entry/0101", {**fields, "csrf": admin.csrf("/console/entry/0101")}).status_code == 200
    clerk = signed_in(served, "clerk")
    assert clerk.get(f"/console/records/0101/{fields['EQP_CODE']}").status_code == 404
    assert fields["EQP_CODE"] not in clerk.get("/console/records?business=0101").text
    outside = clerk.get("/console/records?business=0101&region=330205")
    assert outside.status_code == 400
    [entry] = [row for row in log_rows(served.node) if row["appid"] == console_appid("admin")]
    assert admin.get(f"/console/logs/{entry['id']}").status_code == 200


def test_changing_the_password_ends_the_session(served: Served) -> None:
    browser = signed_in(served, "ops")
    csrf = browser.csrf("/console/password")
    new = "Another-Horse-43!"
    answer = browser.post("/console/password", {"csrf": csrf, "current": PASSWORD, "new": new, "again": new})
    assert answer.headers["location"] == "/console/login"
    assert browser.get("/console/").headers["location"] == "/console/login"
    assert Browser(served).sign_in("ops", new).status_code == 303


def test_an_app_made_in_the_console_shows_its_secret_once_and_the_secret_works(served: Served) -> None:
    browser = signed_in(served, "ops")
    fields = {"appid": "hz-system", "name": "杭州系统", "region": "330100", "busicodes": "140101", "actions": "04",
              "sign": "MD5", "max_records": "100", "unmasked": ""}  # fmt: skip
    made = browser.post("/console/apps/new", {**fields, "csrf": browser.csrf("/console/apps/new")})
    found = re.search(r'<code id="secret">(\w+)</code>', made.text)
    assert made.status_code == 200 and found
    secret = found.group(1)
    answer = call(served.node, body("hz-system", secret, "140101", "04", [{"EQP_CODE": device(1)["EQP_CODE"]}]))
    assert answer["datalist"]["result"] == "0001"
    assert secret not in browser.get("/console/apps/hz-system").text

    rotated = browser.post("/console/apps/hz-system/rotate", {"csrf": browser.csrf("/console/apps/hz-system"),
                                                               "grace_hours": "0"})  # fmt: skip
    newer = re.search(r'<code id="secret">(\w+)</code>', rotated.text)
    assert newer and newer.group(1) != secret
    old = call(served.node, body("hz-system", secret, "140101", "04", [{"EQP_CODE": device(1)["EQP_CODE"]}]))
    assert old["datalist"]["code"] == "E_SIGN"


def test_apps_and_accounts_outside_the_admins_region_are_refused(served: Served, node: Node) -> None:
    AccountStore(node.store, node.clock).create("hz-admin", PASSWORD, Role.ADMIN, "330100")
    grant(node, appid="nb-system", region="330200")
    browser = signed_in(served, "hz-admin")
    assert "nb-system" not in browser.get("/console/apps").text
    assert browser.get("/console/apps/nb-system").status_code == 404
    csrf = browser.csrf("/console/accounts")
    assert browser.post("/console/apps/nb-system/disable", {"csrf": csrf}).status_code == 404
    assert node.registry.get("nb-system").enabled  # type: ignore[union-attr]
    made = browser.post("/console/apps/new", {"csrf": csrf, "appid": "nb-2", "region": "330200",
                                              "busicodes": "140101", "actions": "04", "sign": "MD5"})  # fmt: skip
    assert made.status_code == 400 and node.registry.get("nb-2") is None
    refused = browser.post("/console/accounts", {"csrf": csrf, "username": "nb-clerk", "role": "data_entry",
                                                 "region": "330200", "password": PASSWORD})  # fmt: skip
    assert refused.status_code == 400 and AccountStore(node.store, node.clock).get("nb-clerk") is None
    made_account = browser.post("/console/accounts", {"csrf": csrf, "username": "hz-clerk", "role": "data_entry",
                                                      "region": "330106", "password": PASSWORD})  # fmt: skip
    assert made_account.status_code == 303
    assert signed_in(served, "hz-clerk").get("/console/entry").status_code == 200


def test_the_chain_is_verified_from_the_console(served: Served) -> None:
    browser = signed_in(served, "auditor")
    secret = grant(served.node)
    for number in range(3):
        call(served.node, body("hz-city", secret, "140101", "04", [{"EQP_CODE": device(number)["EQP_CODE"]}]))
    page = browser.post("/console/chain", {"csrf": browser.csrf("/console/chain")})
    assert 'class="ok"' in page.text and "the chain holds" in page.text
    with served.node.store.write() as connection:
        connection.execute(
            sa.text("UPDATE interaction_log SET message = 'edited' WHERE id = (SELECT MIN(id) FROM interaction_log)")
        )
    page = browser.post("/console/chain", {"csrf": browser.csrf("/console/chain")})
    assert "the chain is broken" in page.text and "edited" in page.text


def test_the_rules_page_lists_each_business_type_and_its_cases(served: Served) -> None:
    page = signed_in(served, "ops").get("/console/rules").text
    assert "0101" in page and page.count("<tr") >= len(served.node.catalog)


def test_the_dashboard_shows_the_nodes_alerts(make_node: Any) -> None:
    node = make_node(alert_error_rate=0.5)
    AccountStore(node.store, node.clock).create("auditor", PASSWORD, Role.AUDITOR, "330000")
    with serve_in_thread(node) as served:
        browser = signed_in(served, "auditor")
        assert "no alerts" in browser.get("/console/").text
        secret = grant(node)
        call(node, body("hz-city", secret, "140101", "04", [{"NO_SUCH_FIELD": "x"}]))  # refused: E_PARAM
        page = browser.get("/console/").text
    assert 'data-kind="error_rate"' in page


def test_an_id_number_key_is_never_shown_whole_nor_confirmed_to_a_masked_role(served: Served) -> None:
    """0103 (人员) is keyed by ID number: an auditor sees it masked in the list, the link, the paging
    and the record's page, and cannot search by it or open a record by it."""
    loader = grant(served.node, appid="loader", busicodes=frozenset({"140103"}))
    numbers = [id_number("19800101", order) for order in range(1, 4)]
    assert (
        call(served.node, body("loader", loader, "140103", "01", [person(n) for n in numbers]))["datalist"]["result"]
        == "0001"
    )
    auditor = signed_in(served, "auditor")
    listing = auditor.get("/console/records?business=0103").text
    assert not any(number in listing for number in numbers)
    links = re.findall(r'href="(/console/sequence/0103/\d+)"', listing)
    assert len(links) == 3
    record = auditor.get(links[0]).text
    assert not any(number in record for number in numbers) and "*" in record
    searched = auditor.get(f"/console/records?business=0103&key={numbers[0]}")
    assert searched.status_code == 400 and KEY_SEARCH_MASKED in searched.text
    assert auditor.get(f"/console/records/0103/{numbers[0]}").status_code == 404
    # An admin sees and opens them by key.
    admin = signed_in(served, "admin")
    assert numbers[0] in admin.get("/console/records?business=0103").text
    assert admin.get(f"/console/records/0103/{numbers[0]}").status_code == 200
    assert admin.get(links[0]).status_code == 200  # by change sequence too


def test_an_entry_colliding_with_a_record_outside_the_accounts_region_learns_nothing_of_it(served: Served) -> None:
    """The clerk's console app has the clerk's region (Hangzhou), not the node's: an add whose key
    a Ningbo record holds is refused without naming that record, its region or its source, just as
    for any app of that region; and nothing is written."""
    admin = signed_in(served, "admin")
    ningbo = {key: str(value) for key, value in device(11, AREA_CODE="330205").items()}
    assert admin.post("/console/entry/0101", {**ningbo, "csrf": admin.csrf("/console/entry/0101")}).status_code == 200
    clerk = signed_in(served, "clerk")
    before = snapshot(served.node)

    answer = clerk.post(
        "/console/entry/0101", {**ningbo, "AREA_CODE": "330106", "csrf": clerk.csrf("/console/entry/0101")}
    )

    assert answer.status_code == 400
    assert refusals.keys_held_elsewhere().message in html.unescape(answer.text)
    assert "330205" not in answer.text and console_appid("admin") not in answer.text
    assert snapshot(served.node)["records"] == before["records"]
    app = served.node.registry.get(console_appid("clerk"))
    assert app is not None and (app.region, app.unmasked) == ("330100", frozenset())


def test_a_console_app_made_with_the_nodes_region_is_narrowed_to_its_accounts(served: Served) -> None:
    """Console apps made before they followed their account (the node's region, every type unmasked)
    are narrowed at the account's next entry."""
    node = served.node
    node.registry.create(
        AppSpec(
            appid=console_appid("clerk"),
            region="330000",
            busicodes=frozenset("11" + code for code in node.catalog),
            actions=frozenset({"01", "02"}),
            unmasked=frozenset(node.catalog),
            level="province",
        )
    )
    clerk = signed_in(served, "clerk")
    fields = {key: str(value) for key, value in device(12).items()}
    assert clerk.post("/console/entry/0101", {**fields, "csrf": clerk.csrf("/console/entry/0101")}).status_code == 200
    app = node.registry.get(console_appid("clerk"))
    assert app is not None and (app.region, app.unmasked) == ("330100", frozenset())
    admin = signed_in(served, "admin")
    more = {key: str(value) for key, value in device(13, AREA_CODE="330205").items()}
    assert admin.post("/console/entry/0101", {**more, "csrf": admin.csrf("/console/entry/0101")}).status_code == 200
    app = node.registry.get(console_appid("admin"))
    assert app is not None and (app.region, app.unmasked) == ("330000", frozenset(node.catalog))


def test_a_certificate_number_that_is_its_holders_id_number_is_treated_as_one(served: Served) -> None:
    """0210's key (CERT_NO) is not a sensitive field, but a certificate number is often its holder's
    ID number: to a masked role such a key is shown masked, linked by change sequence, never
    confirmed by a search or a URL; an ordinary certificate number stays searchable."""
    writer = grant(served.node, appid="national", **NATIONAL)
    by_id = {**CERT_HOLDER, "CERT_NO": CERT_HOLDER["ID_NO"]}
    ordinary = {**CERT_HOLDER, "ID_NO": id_number("19700101", 7)}
    for record in (by_id, ordinary):
        assert call(served.node, body("national", writer, "130210", "01", [record]))["datalist"]["result"] == "0001"
    auditor = signed_in(served, "auditor")
    listing = auditor.get("/console/records?business=0210").text
    assert CERT_HOLDER["ID_NO"] not in listing
    assert f'href="/console/records/0210/{CERT_HOLDER["CERT_NO"]}"' in listing
    [link] = re.findall(r'href="(/console/sequence/0210/\d+)"', listing)
    opened = auditor.get(link)
    assert opened.status_code == 200 and CERT_HOLDER["ID_NO"] not in opened.text
    searched = auditor.get(f"/console/records?business=0210&key={CERT_HOLDER['ID_NO']}")
    assert searched.status_code == 400 and KEY_LOOKS_PERSONAL in searched.text
    assert CERT_HOLDER["ID_NO"] not in searched.text.replace(f'value="{CERT_HOLDER["ID_NO"]}"', "")
    assert auditor.get(f"/console/records/0210/{CERT_HOLDER['ID_NO']}").status_code == 404
    found = auditor.get(f"/console/records?business=0210&key={CERT_HOLDER['CERT_NO']}")
    assert found.status_code == 200 and f'/console/records/0210/{CERT_HOLDER["CERT_NO"]}"' in found.text
    admin = signed_in(served, "admin")
    assert CERT_HOLDER["ID_NO"] in admin.get("/console/records?business=0210").text
    assert admin.get(f"/console/records/0210/{CERT_HOLDER['ID_NO']}").status_code == 200


def test_keys_with_reserved_characters_are_linked_and_paged_encoded(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key may hold "/", "&", "#", "%" or "=" (0401's report number is free text): links carry it
    percent-encoded, open the record, and the next page starts after it."""
    monkeypatch.setattr("tzsb.web.console.routes.PAGE", 1)
    loader = grant(served.node, appid="loader", busicodes=frozenset({"140401"}))
    keys = ["A/B&C#D%E", "A/B&C#D%F=1"]
    reports = [{**dict(shipped_rule_sets()["0401"].valid_cases[0]), "REPORT_NO": key} for key in keys]
    assert call(served.node, body("loader", loader, "140401", "01", reports))["datalist"]["result"] == "0001"
    admin = signed_in(served, "admin")
    first = admin.get("/console/records?business=0401").text
    assert 'href="/console/records/0401/A%2FB%26C%23D%25E"' in first
    assert admin.get("/console/records/0401/A%2FB%26C%23D%25E").status_code == 200
    [more] = re.findall(r'<a href="(\?[^"]+)">下一页', first)
    second = admin.get("/console/records" + html.unescape(more)).text
    assert 'href="/console/records/0401/A%2FB%26C%23D%25F%3D1"' in second and "A%2FB%26C%23D%25E" not in second


def test_signing_out_ends_the_token_itself(served: Served) -> None:
    """Not only the cookie: a copy of the token taken before the sign-out is refused after it, as is
    the account's session in another browser."""
    browser = signed_in(served, "ops")
    elsewhere = signed_in(served, "ops")
    copied = dict(browser.cookies)
    assert browser.post("/console/logout", {"csrf": browser.csrf("/console/")}).status_code == 303
    replay = Browser(served)
    replay.cookies = copied
    assert replay.get("/console/").headers["location"] == "/console/login"
    assert elsewhere.get("/console/").headers["location"] == "/console/login"
    assert signed_in(served, "ops").get("/console/").status_code == 200  # signing in again works


def test_an_account_of_part_of_the_area_sees_its_regions_traffic_and_no_node_wide_alerts(make_node: Any) -> None:
    node = make_node(alert_error_rate=0.5)
    accounts = AccountStore(node.store, node.clock)
    accounts.create("clerk", PASSWORD, Role.DATA_ENTRY, "330100")
    accounts.create("auditor", PASSWORD, Role.AUDITOR, "330000")
    ningbo = grant(node, appid="nb-city", region="330200")
    for _ in range(3):  # refused (E_PARAM): Ningbo's traffic, and the node's error-rate alert
        call(node, body("nb-city", ningbo, "140101", "04", [{"NO_SUCH_FIELD": "x"}]))
    hangzhou = grant(node, appid="hz-city", region="330100")
    call(node, body("hz-city", hangzhou, "140101", "04", [{"EQP_CODE": device(1)["EQP_CODE"]}]))
    with serve_in_thread(node) as served:
        clerk = signed_in(served, "clerk").get("/console/").text
        auditor = signed_in(served, "auditor").get("/console/").text
    assert 'data-kind="error_rate"' in auditor and "Sync links" in auditor
    assert 'data-kind="error_rate"' not in clerk and "Sync links" not in clerk and "330100" in clerk
    requests = [int(n) for n in re.findall(r'class="num requests">(\d+)<', clerk)]
    assert requests == [1, 1]  # the last hour and the last day: Hangzhou's one request only
    assert [int(n) for n in re.findall(r'class="num requests">(\d+)<', auditor)] == [4, 4]


def test_the_other_legs_of_a_request_are_shown_within_the_accounts_region_only(served: Served) -> None:
    entries = [
        LogEntry(
            at=served.node.clock.now().isoformat(),
            appid=appid,
            busicode="140101",
            action="04",
            random="r" * 32,
            client_addr="127.0.0.1",
            record_count=1,
            result="0001",
            code="",
            message="",
            duration_ms=1.0,
            direction=direction,
            region=region,
            correlation="c" * 32,
        )
        for appid, region, direction in (("hz-city", "330100", "in"), ("nb-provider", "330200", "out"))
    ]
    log = InteractionLog(served.node.store)
    for entry in entries:
        log.record(entry)
    rows = {row["appid"]: row["id"] for row in log_rows(served.node)}
    AccountStore(served.node.store, served.node.clock).create("hz-auditor", PASSWORD, Role.AUDITOR, "330100")
    page = signed_in(served, "hz-auditor").get(f"/console/logs/{rows['hz-city']}").text
    assert "nb-provider" not in page
    admin = signed_in(served, "admin").get(f"/console/logs/{rows['hz-city']}").text
    assert "nb-provider" in admin


def test_the_chain_is_verified_by_accounts_of_the_whole_node_one_at_a_time(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    AccountStore(served.node.store, served.node.clock).create("hz-auditor", PASSWORD, Role.AUDITOR, "330100")
    regional = signed_in(served, "hz-auditor")
    refused = regional.get("/console/chain")
    assert refused.status_code == 403 and CHAIN_WHOLE_NODE in html.unescape(refused.text)
    entered, release = threading.Event(), threading.Event()

    def slow_verify(store: Any) -> Any:
        entered.set()
        release.wait(10)
        return audit.verify(store)

    monkeypatch.setattr("tzsb.web.console.admin.audit", type("Audit", (), {"verify": staticmethod(slow_verify)}))
    first, second = signed_in(served, "auditor"), signed_in(served, "admin")
    answers: list[httpx.Response] = []
    running = threading.Thread(
        target=lambda: answers.append(first.post("/console/chain", {"csrf": first.csrf("/console/chain")}))
    )
    csrf = second.csrf("/console/chain")
    running.start()
    assert entered.wait(10)
    busy = second.post("/console/chain", {"csrf": csrf})
    release.set()
    running.join(10)
    assert busy.status_code == 429 and "already running" in busy.text
    assert answers[0].status_code == 200 and "the chain holds" in answers[0].text


def test_a_record_moved_out_of_the_accounts_region_is_no_longer_shown(served: Served) -> None:
    """Its versions from before the move are not the record: the page is not found, as for any
    record outside the account's region (it would show an old version as current)."""
    admin = signed_in(served, "admin")
    fields = {key: str(value) for key, value in device(14).items()}  # Hangzhou
    assert admin.post("/console/entry/0101", {**fields, "csrf": admin.csrf("/console/entry/0101")}).status_code == 200
    clerk = signed_in(served, "clerk")
    assert clerk.get(f"/console/records/0101/{fields['EQP_CODE']}").status_code == 200
    node = served.node
    reassign_record(node.store, node.catalog, node.clock, "0101", fields["EQP_CODE"], "330205")
    assert clerk.get(f"/console/records/0101/{fields['EQP_CODE']}").status_code == 404
    assert admin.get(f"/console/records/0101/{fields['EQP_CODE']}").status_code == 200


def test_a_key_that_starts_with_an_at_sign_opens_its_own_record(served: Served) -> None:
    """Records opened by change sequence have a route of their own: a key "@1" is a key."""
    loader = grant(served.node, appid="loader", busicodes=frozenset({"140401"}))
    reports = [{**dict(shipped_rule_sets()["0401"].valid_cases[0]), "REPORT_NO": key} for key in ("X-1", "@1")]
    assert call(served.node, body("loader", loader, "140401", "01", reports))["datalist"]["result"] == "0001"
    admin = signed_in(served, "admin")
    assert 'href="/console/records/0401/%401"' in admin.get("/console/records?business=0401").text
    page = admin.get("/console/records/0401/%401")
    assert page.status_code == 200 and "<h1>" in page.text and "@1" in page.text.split("<h1>", 1)[1].split("</h1>")[0]
