"""The console's administration pages: apps (create with the secret shown once, grants, disable,
rotate), accounts, the rule sets with the outcome of their test cases, and the log's hash chain.

Everything an admin does here is kept to the admin's region: apps and accounts outside it are
neither listed nor changed, and new ones must lie inside it.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any, Final

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tzsb import audit
from tzsb.errors import ConfigurationError
from tzsb.protocol import BUSINESS_TYPES, PURPOSES, SignAlgorithm, covers, is_region_code
from tzsb.registry import App, AppSpec, Role
from tzsb.web.console.core import CHAIN_WHOLE_NODE, FORM_EXPIRED, ROLE_NAMES, Console, Signed, read_form

ACTION_NAMES: Final = {"01": "新增", "02": "修改", "03": "删除", "04": "查询"}
APP_FIELDS: Final = ("appid", "name", "region", "busicodes", "unmasked", "sign", "max_records")
NO_APP: Final = "您的范围内没有这个应用 / no such app in your scope"
NO_ACCOUNT: Final = "您的范围内没有这个账号 / no such account in your scope"
#: The longest grace a rotated secret may keep verifying.
MAX_GRACE_HOURS: Final = 24 * 30


def _codes(text: str) -> frozenset[str]:
    return frozenset(part for part in text.replace("，", ",").replace(" ", ",").split(",") if part)


def admin_routes(console: Console) -> list[Route]:
    node = console.node

    def in_scope(signed: Signed, app: App | None) -> bool:
        return app is not None and covers(signed.account.region, app.region)

    async def expired(request: Request, signed: Signed) -> Response:
        return console.page(request, "console/denied.html", signed, 403, reason=FORM_EXPIRED)

    async def apps(request: Request, signed: Signed) -> Response:
        found = await anyio.to_thread.run_sync(node.registry.list)
        shown = [app for app in found if covers(signed.account.region, app.region)]
        return console.page(request, "console/apps.html", signed, apps=shown)

    def new_values(values: dict[str, Any], error: str | None) -> dict[str, Any]:
        return {
            "values": values, "error": error, "purposes": PURPOSES, "actions": ACTION_NAMES,
            "algorithms": [algorithm.value for algorithm in SignAlgorithm], "business_types": BUSINESS_TYPES,
        }  # fmt: skip

    async def app_new(request: Request, signed: Signed) -> Response:
        if request.method == "GET":
            defaults = {"region": signed.account.region, "actions": ["04"], "sign": "MD5", "max_records": "1000"}
            return console.page(request, "console/app_new.html", signed, **new_values(defaults, None))
        form = await read_form(request)
        if form is None or not console.csrf_ok(signed, form):
            return await expired(request, signed)
        values: dict[str, Any] = {key: str(form.get(key, "")).strip() for key in APP_FIELDS}
        values["actions"] = [str(value) for value in form.getlist("actions")]
        if not covers(signed.account.region, values["region"]) or not is_region_code(values["region"]):
            scope = signed.account.region
            error = f"地区必须在您的范围（{scope}）内 / the region must lie inside your scope {scope}"
            return console.page(request, "console/app_new.html", signed, 400, **new_values(values, error))
        try:
            spec = AppSpec(
                appid=values["appid"], name=values["name"], region=values["region"],
                busicodes=_codes(values["busicodes"]), actions=frozenset(values["actions"]),
                sign_algorithm=SignAlgorithm(values["sign"]), unmasked=_codes(values["unmasked"]),
                max_records=int(values["max_records"]) if values["max_records"].isdigit() else 0,
            )  # fmt: skip
            app, secret = await anyio.to_thread.run_sync(node.registry.create, spec)
        except (ConfigurationError, ValueError) as refused:
            return console.page(request, "console/app_new.html", signed, 400, **new_values(values, str(refused)))
        # The secret is shown on this answer only (no-store), never again.
        return console.page(request, "console/app_detail.html", signed, app=app.describe(), secret=secret, error=None)

    async def app_detail(request: Request, signed: Signed) -> Response:
        app = await anyio.to_thread.run_sync(node.registry.get, request.path_params["appid"])
        if app is None or not in_scope(signed, app):
            return console.page(request, "console/denied.html", signed, 404, reason=NO_APP)
        return console.page(request, "console/app_detail.html", signed, app=app.describe(), secret=None, error=None)

    async def app_change(request: Request, signed: Signed) -> Response:
        appid, verb = request.path_params["appid"], request.path_params["verb"]
        form = await read_form(request)
        if form is None or not console.csrf_ok(signed, form):
            return await expired(request, signed)
        app = await anyio.to_thread.run_sync(node.registry.get, appid)
        if app is None or not in_scope(signed, app) or verb not in ("enable", "disable", "rotate"):
            return console.page(request, "console/denied.html", signed, 404, reason=NO_APP)
        if verb == "rotate":
            hours = str(form.get("grace_hours", "0"))
            grace = timedelta(hours=min(int(hours), MAX_GRACE_HOURS)) if hours.isdigit() else timedelta(0)
            secret = await anyio.to_thread.run_sync(node.registry.rotate_secret, appid, grace)
            fresh = await anyio.to_thread.run_sync(node.registry.get, appid)
            assert fresh is not None
            return console.page(request, "console/app_detail.html", signed, app=fresh.describe(), secret=secret,
                                error=None)  # fmt: skip
        await anyio.to_thread.run_sync(node.registry.set_enabled, appid, verb == "enable")
        return RedirectResponse(f"/console/apps/{appid}", status_code=303)

    async def accounts(request: Request, signed: Signed) -> Response:
        error: str | None = None
        status = 200
        if request.method == "POST":
            form = await read_form(request)
            if form is None or not console.csrf_ok(signed, form):
                return await expired(request, signed)
            username, region = str(form.get("username", "")).strip(), str(form.get("region", "")).strip()
            role, password = str(form.get("role", "")), str(form.get("password", ""))
            if not covers(signed.account.region, region) or not is_region_code(region):
                error, status = (
                    f"地区必须在您的范围（{signed.account.region}）内 / the region must lie inside your scope",
                    400,
                )
            elif role not in {item.value for item in Role}:
                error, status = "请选择角色 / choose a role", 400
            else:
                try:
                    await anyio.to_thread.run_sync(console.accounts.create, username, password, Role(role), region)
                except ConfigurationError as refused:
                    error, status = str(refused), 400
            if error is None:
                return RedirectResponse("/console/accounts", status_code=303)
        found = await anyio.to_thread.run_sync(console.accounts.list)
        shown = [account for account in found if covers(signed.account.region, account.region)]
        return console.page(request, "console/accounts.html", signed, status, accounts=shown, roles=ROLE_NAMES,
                            error=error)  # fmt: skip

    async def account_change(request: Request, signed: Signed) -> Response:
        username, verb = request.path_params["username"], request.path_params["verb"]
        form = await read_form(request)
        if form is None or not console.csrf_ok(signed, form):
            return await expired(request, signed)
        account = await anyio.to_thread.run_sync(console.accounts.get, username)
        if account is None or not covers(signed.account.region, account.region) or verb not in ("enable", "disable"):
            return console.page(request, "console/denied.html", signed, 404, reason=NO_ACCOUNT)
        if username == signed.account.username:
            return console.page(request, "console/denied.html", signed, 400,
                                reason="不能停用自己的账号 / you cannot disable your own account")  # fmt: skip
        await anyio.to_thread.run_sync(console.accounts.set_enabled, username, verb == "enable")
        return RedirectResponse("/console/accounts", status_code=303)

    async def rules(request: Request, signed: Signed) -> Response:
        compiled = node.rules.current()
        rows = []
        for code in node.catalog:
            results = compiled.results.get(code, ())
            rows.append({
                "code": code, "name": node.catalog[code].name, "cases": len(results),
                "passed": sum(1 for result in results if result.passed), "failures": compiled.failures(code),
                "disabled": compiled.disabled.get(code, []),
            })  # fmt: skip
        return console.page(request, "console/rules.html", signed, rows=rows, last_error=node.rules.last_error)

    verifying = threading.Lock()

    async def chain(request: Request, signed: Signed) -> Response:
        if not covers(signed.account.region, node.settings.region):
            # The chain runs through every region's entries; its report names entries anywhere.
            return console.page(request, "console/denied.html", signed, 403, reason=CHAIN_WHOLE_NODE)
        if request.method == "GET":
            return console.page(request, "console/chain.html", signed, report=None, busy=False)
        form = await read_form(request)
        if form is None or not console.csrf_ok(signed, form):
            return await expired(request, signed)
        # A verification reads the whole log: one at a time in this worker, never queued behind
        # each other (a held-down button must not occupy every thread).
        if not verifying.acquire(blocking=False):
            return console.page(request, "console/chain.html", signed, 429, report=None, busy=True)
        try:
            report = await anyio.to_thread.run_sync(audit.verify, node.store)
        finally:
            verifying.release()
        return console.page(request, "console/chain.html", signed, report=report, busy=False)

    def route(path: str, permission: str, handler: Any, methods: list[str]) -> Route:
        return Route(path, console.guarded(permission, handler), methods=methods)

    return [
        route("/apps", "manage_apps", apps, ["GET"]),
        route("/apps/new", "manage_apps", app_new, ["GET", "POST"]),
        route("/apps/{appid}", "manage_apps", app_detail, ["GET"]),
        route("/apps/{appid}/{verb}", "manage_apps", app_change, ["POST"]),
        route("/accounts", "manage_accounts", accounts, ["GET", "POST"]),
        route("/accounts/{username}/{verb}", "manage_accounts", account_change, ["POST"]),
        route("/rules", "manage_rules", rules, ["GET"]),
        route("/chain", "view_logs", chain, ["GET", "POST"]),
    ]
