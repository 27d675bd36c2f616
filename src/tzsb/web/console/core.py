"""What the console's pages share: the session, the account's console app, rendering, messages."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Any, Final
from urllib.parse import quote

import anyio.to_thread
import orjson
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from tzsb.app import Node, load_master_key
from tzsb.audit import InteractionLog
from tzsb.catalog import BusinessType
from tzsb.clock import business_timestamp
from tzsb.errors import ConfigurationError
from tzsb.exchange import is_id_or_mobile, masker
from tzsb.protocol import APPID_PATTERN, SignAlgorithm, sign
from tzsb.registry import Account, AccountStore, AppSpec, Role, SessionTokens
from tzsb.rules import BatchReport
from tzsb.web.console.imports import ImportRunner

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
UPLOAD_TOO_LARGE: Final = "文件过大，请拆分后分别导入 / the file is too large: split it and import the parts"
UPLOAD_INCOMPLETE: Final = "请选择业务类型、导入方式和文件 / choose a business type, a mode and a file"
KEY_LOOKS_PERSONAL: Final = (
    "查找的主键是身份证号或手机号，您的角色只能看到脱敏数据，不能按它查找 / the key looks like an ID or mobile "
    "number, which your role sees masked: it cannot search by it"
)
KEY_SEARCH_MASKED: Final = (
    "此业务类型的主键是身份证号，您的角色只能看到脱敏数据，不能按主键查找 / the key of this type is an ID number, "
    "which your role sees masked: it cannot search by key"
)
CHAIN_WHOLE_NODE: Final = (
    "日志摘要链贯穿全节点的日志，只有全节点账号可以校验 / the log's hash chain runs through the whole node's "
    "log: only an account of the node's whole area may verify it"
)
NO_RECORD: Final = "您的范围内没有这条记录 / no such record in your scope"
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
# One segment of a link's path: a key may hold "/", "?", "#" or "%" (Jinja's urlencode keeps "/").
_environment.filters["segment"] = lambda value: quote(str(value), safe="")


@dataclass(frozen=True, slots=True)
class Signed:
    """The account a request's session belongs to, with its token (CSRF tokens are bound to it)."""

    account: Account
    token: str


Handler = Callable[[Request, "Signed"], Awaitable[Response]]


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
        self.session_lifetime = session_lifetime
        self.log = InteractionLog(node.store, writes=False)
        self.imports = ImportRunner(node.store, node.clock)
        self._maskers = {code: masker(node.catalog[code]) for code in node.catalog}

    @cached_property
    def tokens(self) -> SessionTokens:
        """Read at the first page, not at start: a node serves (and /readyz reports) even when its
        master key is missing; the console then fails on its own pages only."""
        key = load_master_key(self.node.settings).derive("console-session")
        return SessionTokens(key, self.accounts, self.session_lifetime)

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
        harden(response)
        return response

    # -- sessions ---------------------------------------------------------------------------------

    def signed(self, request: Request) -> Signed | None:
        token = request.cookies.get(SESSION_COOKIE, "")
        account = self.tokens.account(token) if token else None
        return None if account is None else Signed(account, token)

    def csrf_ok(self, signed: Signed, form: FormData) -> bool:
        return self.tokens.check_csrf(signed.token, str(form.get("csrf", "")))

    def guarded(self, permission: str | None, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Signed in (else to the sign-in page), allowed by role (else 403). Each POST handler checks
        its form's CSRF token itself (``csrf_ok``), once it has read the form within its limit."""

        async def endpoint(request: Request) -> Response:
            signed = await anyio.to_thread.run_sync(self.signed, request)
            if signed is None:
                if request.method == "GET":
                    return RedirectResponse("/console/login", status_code=303)
                return self.page(request, "console/denied.html", None, 401, reason=SIGN_IN_FIRST)
            if permission is not None and not signed.account.may(permission):
                return self.page(request, "console/denied.html", signed, 403, reason=role_refused(signed.account.role))
            return await handler(request, signed)

        return endpoint

    # -- data entry -------------------------------------------------------------------------------

    def console_app_secret(self, account: Account) -> tuple[str, str]:
        """The account's console app (created at its first entry) and its secret.

        The app has the account's region, not the node's, and receives sensitive fields unmasked
        only when the account's role sees them: what the exchange tells a writer of the records
        it collides with (a key held, a natural key taken) is then exactly what the account may
        learn, and an add is no oracle for records outside its region. It follows the account: a
        changed region or role changes the app at the next entry."""
        appid = console_appid(account.username)
        region = account.region
        unmasked = frozenset(self.node.catalog) if self.sees_unmasked(account) else frozenset[str]()
        registry = self.node.registry
        app = registry.get(appid)
        if app is None:
            try:
                app, _ = registry.create(
                    AppSpec(
                        appid=appid,
                        # The node's own regulator (purpose 11 is for nothing else), for the part
                        # of its area the account has.
                        region=region,
                        busicodes=frozenset(CONSOLE_PURPOSE + code for code in self.node.catalog),
                        actions=frozenset({"01", "02"}),
                        name=f"控制台账号 {account.username} / console account",
                        unmasked=unmasked,
                        level=self.node.settings.level,
                    )
                )
            except ConfigurationError:  # another worker created it meanwhile
                app = registry.get(appid)
                assert app is not None
        if app.level != self.node.settings.level:
            raise ConfigurationError(f"console app {appid} has level {app.level}, not this node's")
        if (app.region, app.unmasked) != (region, unmasked):
            app = registry.set_scope(appid, region, unmasked)
        return appid, app.secret

    def enter(
        self, account: Account, business: BusinessType, records: list[dict[str, str]], client: str
    ) -> dict[str, Any]:
        """Add ``records`` through the exchange as the account's console app; the answer's datalist."""
        appid, secret = self.console_app_secret(account)
        params = {
            "appid": appid,
            "busicode": CONSOLE_PURPOSE + business.code,
            "action": "01",
            "busilist": orjson.dumps(records).decode(),
            "random": uuid.uuid4().hex,
        }
        body = orjson.dumps({**params, "sign": sign(params, secret, SignAlgorithm.MD5)})
        answer = orjson.loads(self.node.exchange.handle(body, "application/json", client))
        datalist: dict[str, Any] = answer["datalist"]
        return datalist

    def preflight(
        self, account: Account, business: BusinessType, records: list[dict[str, str]], client: str, unsent: set[int]
    ) -> tuple[BatchReport, bool]:
        """An import's batch checked as an add by the account's console app would meet it (nothing written)."""
        appid, _ = self.console_app_secret(account)
        app = self.node.registry.get(appid)
        assert app is not None
        validator = self.node.rules.current().validators[business.code]
        now = business_timestamp(self.node.clock.now())
        return self.node.exchange.local.preflight_add(app, validator, records, now, client, unsent)

    # -- records ----------------------------------------------------------------------------------

    @staticmethod
    def sees_unmasked(account: Account) -> bool:
        return account.role in (Role.ADMIN, Role.OPERATOR)

    def shown(self, account: Account, business: str, data: dict[str, Any]) -> dict[str, Any]:
        """A record as this account may see it: unmasked for admins and operators only."""
        if self.sees_unmasked(account):
            return data
        return self._maskers[business](data)

    def personal_key(self, account: Account, business: BusinessType, key: str, shown: dict[str, Any]) -> bool:
        """Whether this record's key is personal data the account sees masked: the type's key is
        sensitive, the key is an ID or mobile number, or masking the record changed its key (a
        certificate number that is its holder's ID number, 0210/0211). Such a key is shown masked,
        its record opened by change sequence, and a search for it finds nothing."""
        if self.sees_unmasked(account):
            return False
        return (
            self.hides_key(account, business) or is_id_or_mobile(key) or str(shown.get(business.primary_key, "")) != key
        )

    def hides_key(self, account: Account, business: BusinessType) -> bool:
        """Whether this account may not see the type's keys (人员: an ID number) in full: its records
        are then listed by masked key, opened by change sequence, and never searched by key (a
        search would confirm a guessed ID number)."""
        return business.primary_key in business.sensitive_fields and not self.sees_unmasked(account)


def minute_label(period: str) -> str:
    return period[11:16]


def hour_label(period: str) -> str:
    return period[11:13] + "时"


def harden(response: Response) -> None:
    response.headers["cache-control"] = "no-store"
    response.headers["x-frame-options"] = "DENY"
    response.headers["x-content-type-options"] = "nosniff"
    response.headers["referrer-policy"] = "same-origin"
    # Every script, style, image and font from the node itself; no inline script at all.
    response.headers["content-security-policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


def set_session_cookie(response: Response, token: str) -> None:
    attributes = dict(SessionTokens.COOKIE_ATTRIBUTES)
    attributes["path"] = "/console"
    response.set_cookie(SESSION_COOKIE, token, **attributes)  # type: ignore[arg-type]


async def read_form(request: Request) -> FormData | None:
    """The posted form, or None when it is larger than a console form may be."""
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit() or int(declared) > MAX_FORM_BYTES:
        return None
    return await request.form(max_files=0, max_fields=1000)
