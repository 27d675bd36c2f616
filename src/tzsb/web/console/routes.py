"""The console's pages: each a Starlette route whose work runs in a worker thread."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

import anyio.to_thread
import orjson
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from tzsb.app import Node, load_master_key
from tzsb.audit import InteractionLog
from tzsb.catalog import BusinessType
from tzsb.clock import business_timestamp
from tzsb.errors import ConfigurationError, LoginRefused
from tzsb.exchange import masker
from tzsb.protocol import APPID_PATTERN, RESULT_SUCCESS, SignAlgorithm, covers, region_prefix, sign
from tzsb.registry import Account, AccountStore, AppSpec, Role, SessionTokens, password_problem
from tzsb.store import EntryQuery, interaction_log, records_read
from tzsb.web.console.charts import Series, line_chart

SESSION_COOKIE: Final = "tzsb_console"
#: The login form's CSRF token, as a cookie matched against the form (there is no session yet).
LOGIN_COOKIE: Final = "tzsb_console_login"
#: Largest form a console page accepts (a record's fields); uploads have their own limit.
MAX_FORM_BYTES: Final = 256 * 1024
#: The purpose a console app writes with: 本级内部 (the node's own regulator's people).
CONSOLE_PURPOSE: Final = "11"
PAGE: Final = 50

ROLE_NAMES: Final = {
    Role.ADMIN: "管理员",
    Role.OPERATOR: "运维人员",
    Role.DATA_ENTRY: "数据录入员",
    Role.AUDITOR: "审计员",
}

#: What a page says when it cannot do what was asked (Chinese for the operators, English after it).
SIGN_IN_FIRST: Final = "请先登录 / sign in first"
FORM_EXPIRED: Final = "表单已过期，请刷新页面后重试 / the form expired: reload the page and try again"
LOGIN_FAILED: Final = (
    "用户名或密码错误，或账号已被暂时锁定 / wrong name or password, or the account is locked for a while"
)
NO_BUSINESS: Final = "没有这个业务类型 / no such business type"


def outside_scope(region: str, scope: str) -> str:
    return f"地区 {region} 不在您的范围（{scope}）内 / region {region} is outside your scope {scope}"


def role_refused(role: Role) -> str:
    return f"您的角色（{ROLE_NAMES[role]}）无权访问此页 / your role may not open this page"


_environment = Environment(
    loader=PackageLoader("tzsb.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True, slots=True)
class Signed:
    """The account a request's session belongs to, with its token (CSRF tokens are bound to it)."""

    account: Account
    token: str


def console_appid(username: str) -> str:
    """The app an account's entries are signed as: readable when the name fits an appid, else a digest."""
    readable = f"console-{username}"
    if APPID_PATTERN.fullmatch(readable):
        return readable
    return "console-h" + hashlib.sha256(username.encode("utf-8")).hexdigest()[:24]


class Console:
    """What the pages share: the node, its accounts and session tokens."""

    def __init__(self, node: Node, session_lifetime: timedelta = timedelta(hours=8)) -> None:
        self.node = node
        self.accounts = AccountStore(node.store, node.clock)
        self.tokens = SessionTokens(
            load_master_key(node.settings).derive("console-session"), self.accounts, session_lifetime
        )
        self.log = InteractionLog(node.store, writes=False)
        self._maskers = {code: masker(node.catalog[code]) for code in node.catalog}

    # -- rendering --------------------------------------------------------------------------------

    def page(
        self, request: Request, template: str, signed: Signed | None, status: int = 200, **values: Any
    ) -> Response:
        html = _environment.get_template(template).render(
            account=signed.account if signed else None,
            role_name=ROLE_NAMES.get(signed.account.role, "") if signed else "",
            may=(lambda permission: signed is not None and signed.account.may(permission)),
            csrf=self.tokens.csrf_token(signed.token) if signed else "",
            catalog=self.node.catalog,
            node=self.node.settings,
            **values,
        )
        response = HTMLResponse(html, status_code=status)
        _harden(response)
        return response

    # -- sessions ---------------------------------------------------------------------------------

    def signed(self, request: Request) -> Signed | None:
        token = request.cookies.get(SESSION_COOKIE, "")
        account = self.tokens.account(token) if token else None
        return None if account is None else Signed(account, token)

    def csrf_ok(self, signed: Signed, form: FormData) -> bool:
        return self.tokens.check_csrf(signed.token, str(form.get("csrf", "")))

    # -- data entry -------------------------------------------------------------------------------

    def console_app_secret(self, account: Account) -> tuple[str, str]:
        """The account's console app (created at its first entry) and its secret."""
        appid = console_appid(account.username)
        registry = self.node.registry
        app = registry.get(appid)
        if app is None:
            try:
                app, _ = registry.create(
                    AppSpec(
                        appid=appid,
                        # The node's own regulator (purpose 11 is for nothing else); the account's
                        # narrower region is checked by the console before a record is sent.
                        region=self.node.settings.region,
                        busicodes=frozenset(CONSOLE_PURPOSE + code for code in self.node.catalog),
                        actions=frozenset({"01", "02"}),
                        name=f"控制台账号 {account.username} / console account",
                        unmasked=frozenset(self.node.catalog),
                        level=self.node.settings.level,
                    )
                )
            except ConfigurationError:  # another worker created it meanwhile
                app = registry.get(appid)
                assert app is not None
        if app.region != self.node.settings.region:
            raise ConfigurationError(f"console app {appid} has region {app.region}, not this node's")
        return appid, app.secret

    def enter(self, account: Account, business: BusinessType, record: dict[str, str], client: str) -> dict[str, Any]:
        """Add ``record`` through the exchange as the account's console app; the answer's datalist."""
        appid, secret = self.console_app_secret(account)
        params = {
            "appid": appid,
            "busicode": CONSOLE_PURPOSE + business.code,
            "action": "01",
            "busilist": orjson.dumps([record]).decode(),
            "random": uuid.uuid4().hex,
        }
        body = orjson.dumps({**params, "sign": sign(params, secret, SignAlgorithm.MD5)})
        answer = orjson.loads(self.node.exchange.handle(body, "application/json", client))
        datalist: dict[str, Any] = answer["datalist"]
        return datalist

    # -- records ----------------------------------------------------------------------------------

    def shown(self, account: Account, business: str, data: dict[str, Any]) -> dict[str, Any]:
        """A record as this account may see it: unmasked for admins and operators only."""
        if account.role in (Role.ADMIN, Role.OPERATOR):
            return data
        return self._maskers[business](data)


def _minute_label(period: str) -> str:
    return period[11:16]


def _hour_label(period: str) -> str:
    return period[11:13] + "时"


def _harden(response: Response) -> None:
    response.headers["cache-control"] = "no-store"
    response.headers["x-frame-options"] = "DENY"
    response.headers["x-content-type-options"] = "nosniff"
    response.headers["referrer-policy"] = "same-origin"
    # Every script, style, image and font from the node itself; no inline script at all.
    response.headers["content-security-policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


def _set_session(response: Response, token: str) -> None:
    attributes = dict(SessionTokens.COOKIE_ATTRIBUTES)
    attributes["path"] = "/console"
    response.set_cookie(SESSION_COOKIE, token, **attributes)  # type: ignore[arg-type]


async def _form(request: Request) -> FormData | None:
    """The posted form, or None when it is larger than a console form may be."""
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit() or int(declared) > MAX_FORM_BYTES:
        return None
    return await request.form(max_files=0, max_fields=1000)


Handler = Callable[[Request, Signed], Awaitable[Response]]


def console_routes(node: Node, *, session_lifetime: timedelta = timedelta(hours=8)) -> list[BaseRoute]:
    """The routes of the console, to mount at ``/console``."""
    console = Console(node, session_lifetime)

    def client(request: Request) -> str:
        return request.client.host if request.client else ""

    def guarded(permission: str | None, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Signed in (else to the sign-in page), allowed by role (else 403), CSRF-checked on POST."""

        async def endpoint(request: Request) -> Response:
            signed = await anyio.to_thread.run_sync(console.signed, request)
            if signed is None:
                if request.method == "GET":
                    return RedirectResponse("/console/login", status_code=303)
                return console.page(request, "console/denied.html", None, 401, reason=SIGN_IN_FIRST)
            if permission is not None and not signed.account.may(permission):
                return console.page(
                    request, "console/denied.html", signed, 403,
                    reason=role_refused(signed.account.role),
                )  # fmt: skip
            return await handler(request, signed)

        return endpoint

    async def login_page(request: Request) -> Response:
        nonce = secrets.token_urlsafe(24)
        response = console.page(request, "console/login.html", None, login_csrf=nonce, error=None)
        response.set_cookie(LOGIN_COOKIE, nonce, httponly=True, secure=True, samesite="strict", path="/console")
        return response

    async def login(request: Request) -> Response:
        form = await _form(request)
        cookie = request.cookies.get(LOGIN_COOKIE, "")
        if form is None or not cookie or not hmac.compare_digest(cookie, str(form.get("csrf", ""))):
            return console.page(
                request,
                "console/denied.html",
                None,
                403,
                reason=FORM_EXPIRED,
            )
        username, password = str(form.get("username", "")), str(form.get("password", ""))

        def attempt() -> str | None:
            try:
                account = console.accounts.authenticate(username, password)
                return console.tokens.issue(account)
            except LoginRefused:
                return None

        token = await anyio.to_thread.run_sync(attempt)
        if token is None:
            nonce = secrets.token_urlsafe(24)
            response = console.page(
                request, "console/login.html", None, 401, login_csrf=nonce,
                error=LOGIN_FAILED,
            )  # fmt: skip
            response.set_cookie(LOGIN_COOKIE, nonce, httponly=True, secure=True, samesite="strict", path="/console")
            return response
        response = RedirectResponse("/console/", status_code=303)
        _set_session(response, token)
        response.delete_cookie(LOGIN_COOKIE, path="/console")
        return response

    async def logout(request: Request, signed: Signed) -> Response:
        form = await _form(request)
        if form is None or not console.csrf_ok(signed, form):
            return console.page(request, "console/denied.html", signed, 403, reason=FORM_EXPIRED)
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/console", secure=True, httponly=True, samesite="strict")
        return response

    async def password_page(request: Request, signed: Signed) -> Response:
        if request.method == "GET":
            return console.page(request, "console/password.html", signed, error=None)
        form = await _form(request)
        if form is None or not console.csrf_ok(signed, form):
            return console.page(request, "console/denied.html", signed, 403, reason=FORM_EXPIRED)
        current, new, again = (str(form.get(name, "")) for name in ("current", "new", "again"))

        def change() -> str | None:
            try:
                console.accounts.authenticate(signed.account.username, current)
            except LoginRefused:
                return "当前密码错误 / the current password is wrong"
            if new != again:
                return "两次输入的新密码不一致 / the new passwords differ"
            problem = password_problem(new)
            if problem:
                return problem
            console.accounts.set_password(signed.account.username, new)
            return None

        error = await anyio.to_thread.run_sync(change)
        if error is not None:
            return console.page(request, "console/password.html", signed, 400, error=error)
        # The change ended every session of the account (SessionTokens): sign in again.
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/console")
        return response

    def dashboard_values(account: Account) -> dict[str, Any]:
        now = node.clock.now()
        charts = []
        for title, since, width, label in (
            ("最近一小时 / last hour", now - timedelta(hours=1), 16, _minute_label),
            ("最近一天 / last day", now - timedelta(days=1), 13, _hour_label),
        ):
            with node.store.read() as connection:
                buckets = interaction_log.traffic(connection, since.isoformat(timespec="milliseconds"), width)
            periods = sorted({bucket.period for bucket in buckets})
            businesses = sorted({bucket.business for bucket in buckets})
            at = {(bucket.period, bucket.business): bucket for bucket in buckets}
            rows = []
            for business in businesses:
                found = [at.get((period, business)) for period in periods]
                requests = sum(bucket.requests for bucket in found if bucket)
                refused = sum(bucket.refused for bucket in found if bucket)
                total_ms = sum(bucket.mean_ms * bucket.requests for bucket in found if bucket)
                name = node.catalog[business].name if business in node.catalog else business or "—"
                rows.append({
                    "business": business, "name": name, "requests": requests, "refused": refused,
                    "error_rate": refused / requests if requests else 0.0,
                    "mean_ms": total_ms / requests if requests else 0.0,
                    "max_ms": max((bucket.max_ms for bucket in found if bucket), default=0.0),
                })  # fmt: skip
            labels = [label(period) for period in periods]
            totals = [sum(at[(p, b)].requests for b in businesses if (p, b) in at) for p in periods]
            errors = [sum(at[(p, b)].refused for b in businesses if (p, b) in at) for p in periods]
            slowest = [max((at[(p, b)].max_ms for b in businesses if (p, b) in at), default=0.0) for p in periods]
            charts.append({
                "title": title, "rows": rows,
                "requests_svg": line_chart(f"请求数 / requests — {title}", labels, [
                    Series("请求 / requests", [float(n) for n in totals], "#1f5fa8"),
                    Series("拒绝 / refused", [float(n) for n in errors], "#c0392b"),
                ], "次 / requests"),
                "latency_svg": line_chart(f"最长耗时 / slowest — {title}", labels, [
                    Series("最长 / max", list(slowest), "#8e44ad"),
                ], "毫秒 / ms"),
            })  # fmt: skip
        from tzsb.monitor import reporters

        overdue = [item for item in reporters(node) if item.overdue and covers(account.region, item.region)]
        return {"charts": charts, "overdue": overdue, "links": node.links.list(), "now": business_timestamp(now)}

    async def dashboard(request: Request, signed: Signed) -> Response:
        values = await anyio.to_thread.run_sync(dashboard_values, signed.account)
        return console.page(request, "console/dashboard.html", signed, **values)

    async def entry_choice(request: Request, signed: Signed) -> Response:
        return console.page(request, "console/entry_choice.html", signed)

    async def entry(request: Request, signed: Signed) -> Response:
        business = node.catalog.get(request.path_params["business"])
        if business is None:
            return console.page(request, "console/denied.html", signed, 404, reason=NO_BUSINESS)
        values: dict[str, str] = {business.timestamp_field: business_timestamp(node.clock.now())}
        if len(signed.account.region) == 6 and not signed.account.region.endswith("00"):
            values[business.region_field] = signed.account.region
        if request.method == "GET":
            return console.page(request, "console/entry.html", signed, business=business, values=values, errors={},
                                warnings={}, message=None, saved=None)  # fmt: skip
        form = await _form(request)
        if form is None or not console.csrf_ok(signed, form):
            return console.page(request, "console/denied.html", signed, 403, reason=FORM_EXPIRED)
        submitted = {spec.code: str(form.get(spec.code, "")).strip() for spec in business.fields}
        record = {code: value for code, value in submitted.items() if value}
        region = record.get(business.region_field, "")
        if region and not covers(signed.account.region, region):
            # Before the exchange: the console app is the node's, the account may hold less of it.
            return console.page(
                request, "console/entry.html", signed, 400, business=business, values=submitted,
                errors={business.region_field: [outside_scope(region, signed.account.region)]}, warnings={},
                message=outside_scope(region, signed.account.region), saved=None,
            )  # fmt: skip
        datalist = await anyio.to_thread.run_sync(console.enter, signed.account, business, record, client(request))
        errors: dict[str, list[str]] = {}
        warnings: dict[str, list[str]] = {}
        for fault in datalist.get("busilist") or []:
            if not isinstance(fault, dict):
                continue
            for kind, into in (("errors", errors), ("warnings", warnings)):
                for item in fault.get(kind) or []:
                    into.setdefault(str(item.get("field", "")), []).append(str(item.get("message", "")))
        if datalist.get("result") == RESULT_SUCCESS:
            key = record.get(business.primary_key, "")
            return console.page(request, "console/entry.html", signed, business=business, values=values, errors={},
                                warnings=warnings, message=str(datalist.get("message", "")),
                                saved=key)  # fmt: skip
        return console.page(
            request, "console/entry.html", signed, 400, business=business, values=submitted, errors=errors,
            warnings=warnings, message=f"{datalist.get('code', '')} {datalist.get('message', '')}", saved=None,
        )  # fmt: skip

    async def records(request: Request, signed: Signed) -> Response:
        account = signed.account
        params = request.query_params
        code = params.get("business") or next(iter(node.catalog))
        business = node.catalog.get(code)
        if business is None:
            return console.page(request, "console/denied.html", signed, 404, reason=NO_BUSINESS)
        key = params.get("key", "").strip() or None
        region = params.get("region", "").strip()
        updated_from = params.get("from", "").strip() or None
        updated_to = params.get("to", "").strip() or None
        deleted = params.get("deleted") == "1" and account.role is Role.ADMIN
        prefixes = [region_prefix(account.region)]
        if region:
            if not (region.isdigit() and len(region) == 6 and covers(account.region, region)):
                return console.page(request, "console/records.html", signed, 400, business=business, found=[],
                                    params=params, error=outside_scope(region, account.region),
                                    more=None)  # fmt: skip
            prefixes.append(region_prefix(region))
        after_region, after_key = params.get("after_region"), params.get("after_key")
        query = records_read.RecordQuery(
            business=business.code, region_prefixes=tuple(prefixes), key=key,
            updated_from=updated_from, updated_to=updated_to, include_deleted=deleted,
            after=(after_region, after_key) if after_region is not None and after_key is not None else None,
            limit=PAGE + 1,
        )  # fmt: skip

        def read() -> list[records_read.StoredRecord]:
            with node.store.read() as connection:
                return records_read.select_records(connection, query)

        rows = await anyio.to_thread.run_sync(read)
        more = rows[PAGE - 1] if len(rows) > PAGE else None
        found = [(row, console.shown(account, business.code, row.data)) for row in rows[:PAGE]]
        return console.page(request, "console/records.html", signed, business=business, found=found, params=params,
                            error=None, more=more)  # fmt: skip

    async def record(request: Request, signed: Signed) -> Response:
        business = node.catalog.get(request.path_params["business"])
        if business is None:
            return console.page(request, "console/denied.html", signed, 404, reason=NO_BUSINESS)
        key = request.path_params["key"]
        account = signed.account

        def read() -> list[records_read.RecordVersion]:
            with node.store.read() as connection:
                return records_read.versions(connection, business.code, key, region_prefix(account.region), limit=200)

        versions = await anyio.to_thread.run_sync(read)
        if not versions or (versions[0].deleted and account.role is not Role.ADMIN):
            return console.page(request, "console/denied.html", signed, 404,
                                reason="您的范围内没有这条记录 / no such record in your scope")  # fmt: skip
        shown = [(version, console.shown(account, business.code, version.data)) for version in versions]
        return console.page(request, "console/record.html", signed, business=business, key=key, versions=shown)

    async def logs(request: Request, signed: Signed) -> Response:
        params = request.query_params
        before = params.get("before", "")
        query = EntryQuery(
            appid=params.get("appid") or None,
            region_prefix=region_prefix(signed.account.region),
            busicode=params.get("busicode") or None,
            action=params.get("action") or None,
            result=params.get("result") or None,
            code=params.get("code") or None,
            random=params.get("random") or None,
            at_from=params.get("from") or None,
            at_to=params.get("to") or None,
            before_id=int(before) if before.isdigit() else None,
            limit=PAGE + 1,
        )
        entries = await anyio.to_thread.run_sync(console.log.entries, query)
        more = entries[PAGE - 1]["id"] if len(entries) > PAGE else None
        return console.page(request, "console/logs.html", signed, entries=entries[:PAGE], params=params, more=more)

    async def log_entry(request: Request, signed: Signed) -> Response:
        number = request.path_params["number"]

        def read() -> dict[str, Any] | None:
            found = console.log.entries(
                EntryQuery(region_prefix=region_prefix(signed.account.region), before_id=number + 1, limit=1)
            )
            return found[0] if found and found[0]["id"] == number else None

        entry = await anyio.to_thread.run_sync(read)
        if entry is None:
            return console.page(request, "console/denied.html", signed, 404, reason="没有这条日志 / no such log entry")
        related: list[dict[str, Any]] = []
        if entry.get("correlation"):
            related = await anyio.to_thread.run_sync(lambda: console.log.recent(20, correlation=entry["correlation"]))
        return console.page(request, "console/log_entry.html", signed, entry=entry, related=related)

    def route(path: str, permission: str | None, handler: Handler, methods: list[str]) -> Route:
        return Route(path, guarded(permission, handler), methods=methods)

    return [
        Mount(
            "/console",
            routes=[
                Route("/login", login_page, methods=["GET"]),
                Route("/login", login, methods=["POST"]),
                route("/logout", None, logout, ["POST"]),
                route("/password", None, password_page, ["GET", "POST"]),
                route("/", None, dashboard, ["GET"]),
                route("/entry", "enter_data", entry_choice, ["GET"]),
                route("/entry/{business}", "enter_data", entry, ["GET", "POST"]),
                route("/records", "view_records", records, ["GET"]),
                route("/records/{business}/{key}", "view_records", record, ["GET"]),
                route("/logs", "view_logs", logs, ["GET"]),
                route("/logs/{number:int}", "view_logs", log_entry, ["GET"]),
                Mount("/static", app=StaticFiles(packages=[("tzsb.web", "static")]), name="console-static"),
            ],
        )
    ]
