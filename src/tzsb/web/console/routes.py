"""The console's pages: each a Starlette route whose work runs in a worker thread."""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlencode

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from tzsb.app import Node
from tzsb.clock import business_timestamp
from tzsb.errors import LoginRefused
from tzsb.exchange import is_id_or_mobile
from tzsb.monitor import evaluate, reporters
from tzsb.protocol import RESULT_SUCCESS, covers, region_prefix
from tzsb.registry import Account, Role, password_problem
from tzsb.rules import BatchReport
from tzsb.store import EntryQuery, import_jobs, interaction_log, records_read
from tzsb.web.console.admin import admin_routes
from tzsb.web.console.charts import Series, line_chart
from tzsb.web.console.core import (
    FORM_EXPIRED,
    KEY_LOOKS_PERSONAL,
    KEY_SEARCH_MASKED,
    LOGIN_COOKIE,
    LOGIN_FAILED,
    NO_BUSINESS,
    NO_RECORD,
    PAGE,
    SESSION_COOKIE,
    UPLOAD_INCOMPLETE,
    UPLOAD_TOO_LARGE,
    Console,
    Handler,
    Signed,
    hour_label,
    minute_label,
    outside_scope,
    read_form,
    set_session_cookie,
)
from tzsb.web.console.imports import MAX_UPLOAD_BYTES, MODES, job_view, template_csv, template_xlsx


def console_routes(node: Node, *, session_lifetime: timedelta = timedelta(hours=8)) -> list[BaseRoute]:
    """The routes of the console, to mount at ``/console``."""
    console = Console(node, session_lifetime)

    def client(request: Request) -> str:
        return request.client.host if request.client else ""

    async def login_page(request: Request) -> Response:
        nonce = secrets.token_urlsafe(24)
        response = console.page(request, "console/login.html", None, login_csrf=nonce, error=None)
        response.set_cookie(LOGIN_COOKIE, nonce, httponly=True, secure=True, samesite="strict", path="/console")
        return response

    async def login(request: Request) -> Response:
        form = await read_form(request)
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
        set_session_cookie(response, token)
        response.delete_cookie(LOGIN_COOKIE, path="/console")
        return response

    async def logout(request: Request, signed: Signed) -> Response:
        form = await read_form(request)
        if form is None or not console.csrf_ok(signed, form):
            return console.page(request, "console/denied.html", signed, 403, reason=FORM_EXPIRED)
        # Not only the cookie: the token itself stops validating (a copy of it is worth nothing), and
        # with it the account's sessions in other browsers.
        await anyio.to_thread.run_sync(console.accounts.end_sessions, signed.account.username)
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/console", secure=True, httponly=True, samesite="strict")
        return response

    async def password_page(request: Request, signed: Signed) -> Response:
        if request.method == "GET":
            return console.page(request, "console/password.html", signed, error=None)
        form = await read_form(request)
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
        whole_node = covers(account.region, node.settings.region)
        # An account of the whole node sees every entry, those of unidentified callers (region "")
        # and of peers outside the node's region included; others, their region's apps.
        scope = "" if whole_node else region_prefix(account.region)
        charts = []
        for title, since, width, label in (
            ("最近一小时 / last hour", now - timedelta(hours=1), 16, minute_label),
            ("最近一天 / last day", now - timedelta(days=1), 13, hour_label),
        ):
            with node.store.read() as connection:
                buckets = interaction_log.traffic(connection, since.isoformat(timespec="milliseconds"), width, scope)
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
        overdue = [item for item in reporters(node) if item.overdue and covers(account.region, item.region)]
        # The node-wide alerts (error rate, latency, failed links: their messages name other regions'
        # apps and peers) and the sync links are for accounts of the node's whole area; overdue apps
        # are listed below, in scope.
        alerts = [alert for alert in evaluate(node) if alert.name != "overdue"] if whole_node else []
        return {
            "charts": charts, "overdue": overdue, "alerts": alerts, "whole_node": whole_node,
            "links": node.links.list() if whole_node else [], "now": business_timestamp(now),
        }  # fmt: skip

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
        form = await read_form(request)
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
        datalist = await anyio.to_thread.run_sync(console.enter, signed.account, business, [record], client(request))
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
                                saved=key, saved_link=not console.personal_key(
                                    signed.account, business, key, console.shown(signed.account, business.code, record)
                                ))  # fmt: skip
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
        masked = not console.sees_unmasked(account)
        if key and console.hides_key(account, business):
            return console.page(request, "console/records.html", signed, 400, business=business, found=[],
                                params=params, error=KEY_SEARCH_MASKED, more=None)  # fmt: skip
        if key and masked and is_id_or_mobile(key):
            return console.page(request, "console/records.html", signed, 400, business=business, found=[],
                                params=params, error=KEY_LOOKS_PERSONAL, more=None)  # fmt: skip
        after: tuple[str, str] | tuple[int] | None = None
        after_seq = params.get("after_seq", "")
        after_region, after_key = params.get("after_region"), params.get("after_key")
        if masked and after_seq.isdigit():
            # A masked role pages by change sequence: a key in the link could be personal data.
            after = (int(after_seq),)
        elif not masked and after_region is not None and after_key is not None:
            after = (after_region, after_key)
        query = records_read.RecordQuery(
            business=business.code, region_prefixes=tuple(prefixes), key=key,
            updated_from=updated_from, updated_to=updated_to, include_deleted=deleted,
            after=after, by_seq=masked, limit=PAGE + 1,
        )  # fmt: skip

        def read() -> list[records_read.StoredRecord]:
            with node.store.read() as connection:
                return records_read.select_records(connection, query)

        rows = await anyio.to_thread.run_sync(read)
        found = []
        for row in rows[:PAGE]:
            data = console.shown(account, business.code, row.data)
            if not console.personal_key(account, business, row.key, data):
                found.append((row, data, row.key, f"/console/records/{business.code}/{quote(row.key, safe='')}"))
            elif not key:  # a search for a personal key finds nothing: it must not confirm one
                found.append(
                    (row, data, str(data.get(business.primary_key, "")), f"/console/sequence/{business.code}/{row.seq}")
                )
        more = None
        if len(rows) > PAGE:
            last = rows[PAGE - 1]
            paging = {name: params.get(name, "") for name in ("business", "key", "region", "from", "to", "deleted")}
            paging.update(
                {"after_seq": str(last.seq)} if masked else {"after_region": last.region, "after_key": last.key}
            )
            more = "?" + urlencode(paging)
        return console.page(request, "console/records.html", signed, business=business, found=found, params=params,
                            error=None, more=more)  # fmt: skip

    async def record(request: Request, signed: Signed) -> Response:
        business = node.catalog.get(request.path_params["business"])
        if business is None:
            return console.page(request, "console/denied.html", signed, 404, reason=NO_BUSINESS)
        # By key (/records/<business>/<key>), or by change sequence (/sequence/<business>/<seq>): how
        # a masked account opens a record whose key it may not see.
        by_seq = "seq" in request.path_params
        key = "" if by_seq else str(request.path_params["key"])
        account = signed.account
        if not by_seq and (
            console.hides_key(account, business) or (not console.sees_unmasked(account) and is_id_or_mobile(key))
        ):
            # A masked account opens such records by change sequence only; by key, it would learn
            # whether a guessed ID number is held.
            return console.page(request, "console/denied.html", signed, 404, reason=NO_RECORD)

        def read() -> list[records_read.RecordVersion]:
            with node.store.read() as connection:
                stored_key = key
                if by_seq:
                    seq = int(request.path_params["seq"])
                    query = records_read.RecordQuery(
                        business=business.code, region_prefixes=(region_prefix(account.region),), since=seq - 1,
                        include_deleted=True, limit=1,
                    )  # fmt: skip
                    rows = [row for row in records_read.select_records(connection, query) if row.seq == seq]
                    if not rows or rows[0].departed:
                        return []
                    stored_key = rows[0].key
                current = records_read.fetch(connection, business.code, [stored_key]).get(stored_key)
                if current is None or not covers(account.region, current.region):
                    # Moved out of the account's region: its versions from before the move are
                    # history, not the record; it is, to this account, a record it does not hold.
                    return []
                return records_read.versions(
                    connection, business.code, stored_key, region_prefix(account.region), limit=200
                )

        versions = await anyio.to_thread.run_sync(read)
        if not versions or (versions[0].deleted and account.role is not Role.ADMIN):
            return console.page(request, "console/denied.html", signed, 404, reason=NO_RECORD)
        shown = [(version, console.shown(account, business.code, version.data)) for version in versions]
        stored_key = versions[0].key
        personal = console.personal_key(account, business, stored_key, shown[0][1])
        if personal and not by_seq:  # as not found: opening it by key would confirm the key
            return console.page(request, "console/denied.html", signed, 404, reason=NO_RECORD)
        title = str(shown[0][1].get(business.primary_key, "")) if personal else stored_key
        return console.page(request, "console/record.html", signed, business=business, key=title, versions=shown)

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
        more = None
        if len(entries) > PAGE:
            names = ("appid", "busicode", "action", "result", "code", "random", "from", "to")
            more = "?" + urlencode(
                {**{name: params.get(name, "") for name in names}, "before": entries[PAGE - 1]["id"]}
            )
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
            legs = await anyio.to_thread.run_sync(lambda: console.log.recent(20, correlation=entry["correlation"]))
            # The other legs as the account may see any entry: within its region.
            whole_node = covers(signed.account.region, node.settings.region)
            related = [
                leg
                for leg in legs
                if whole_node or (leg["region"] and covers(signed.account.region, str(leg["region"])))
            ]
        return console.page(request, "console/log_entry.html", signed, entry=entry, related=related)

    async def import_page(request: Request, signed: Signed) -> Response:
        jobs = await anyio.to_thread.run_sync(recent_jobs, signed.account)
        return console.page(request, "console/import.html", signed, modes=MODES, jobs=jobs, error=None,
                            limit_mb=MAX_UPLOAD_BYTES // 1024 // 1024)  # fmt: skip

    def recent_jobs(account: Account) -> list[import_jobs.ImportJob]:
        console.imports.end_stalled()
        with node.store.read() as connection:
            return import_jobs.recent(
                connection,
                region_prefix(account.region),
                username=None if sees_jobs_of_all(account) else account.username,
            )

    def sees_jobs_of_all(account: Account) -> bool:
        # A job's report quotes the rows of its file (keys, ID numbers): its uploader's, and the
        # admins' (who see every record unmasked anyway; operators do not import).
        return account.role is Role.ADMIN

    async def import_template(request: Request, signed: Signed) -> Response:
        business = node.catalog.get(request.path_params["business"])
        kind = request.path_params["kind"]
        if business is None or kind not in ("xlsx", "csv"):
            return console.page(request, "console/denied.html", signed, 404, reason=NO_BUSINESS)
        if kind == "xlsx":
            content = await anyio.to_thread.run_sync(template_xlsx, business)
            media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        else:
            content, media = template_csv(business), "text/csv; charset=utf-8"
        name = f"template-{business.code}.{kind}"
        return Response(content, media_type=media, headers={"content-disposition": f'attachment; filename="{name}"'})

    async def import_upload(request: Request, signed: Signed) -> Response:
        declared = request.headers.get("content-length")
        if declared is None or not declared.isdigit() or int(declared) > MAX_UPLOAD_BYTES + 64 * 1024:
            jobs = await anyio.to_thread.run_sync(recent_jobs, signed.account)
            return console.page(request, "console/import.html", signed, 413, modes=MODES, jobs=jobs,
                                error=UPLOAD_TOO_LARGE, limit_mb=MAX_UPLOAD_BYTES // 1024 // 1024)  # fmt: skip
        try:
            form = await request.form(max_files=1, max_fields=10)
        except Exception:  # a malformed multipart body: nothing to import
            form = None
        if form is None:
            return console.page(request, "console/denied.html", signed, 403, reason=FORM_EXPIRED)
        try:
            if not console.csrf_ok(signed, form):
                return console.page(request, "console/denied.html", signed, 403, reason=FORM_EXPIRED)
            business = node.catalog.get(str(form.get("business", "")))
            mode = str(form.get("mode", ""))
            upload = form.get("file")
            if business is None or mode not in MODES or isinstance(upload, str) or upload is None:
                jobs = await anyio.to_thread.run_sync(recent_jobs, signed.account)
                return console.page(request, "console/import.html", signed, 400, modes=MODES, jobs=jobs,
                                    error=UPLOAD_INCOMPLETE, limit_mb=MAX_UPLOAD_BYTES // 1024 // 1024)  # fmt: skip
            data = await upload.read(MAX_UPLOAD_BYTES + 1)
            # Only what a name may hold: no control characters (a NUL would not even store on PostgreSQL).
            file_name = "".join(char for char in upload.filename or "" if char.isprintable())
        finally:
            await form.close()  # the spooled upload's file
        account, address = signed.account, client(request)

        def send(records: list[dict[str, str]]) -> dict[str, Any]:
            return console.enter(account, business, records, address)

        def preflight(records: list[dict[str, str]], unsent: set[int]) -> tuple[BatchReport, bool]:
            return console.preflight(account, business, records, address, unsent)

        job_id = await anyio.to_thread.run_sync(
            lambda: console.imports.start(
                account.username, account.region, business, file_name, data, mode, preflight, send
            )
        )
        return RedirectResponse(f"/console/import/jobs/{job_id}", status_code=303)

    async def import_job(request: Request, signed: Signed) -> Response:
        job_id = request.path_params["job"]

        def read() -> import_jobs.ImportJob | None:
            console.imports.end_stalled()
            with node.store.read() as connection:
                return import_jobs.find(connection, job_id)

        job = await anyio.to_thread.run_sync(read)
        account = signed.account
        if (
            job is None
            or not covers(account.region, job.region)
            or (job.username != account.username and not sees_jobs_of_all(account))
        ):
            return console.page(request, "console/denied.html", signed, 404, reason="没有这个导入任务 / no such import")
        return console.page(request, "console/import_job.html", signed, business=node.catalog.get(job.business),
                            **job_view(job))  # fmt: skip

    def route(path: str, permission: str | None, handler: Handler, methods: list[str]) -> Route:
        return Route(path, console.guarded(permission, handler), methods=methods)

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
                route("/import", "enter_data", import_page, ["GET"]),
                route("/import", "enter_data", import_upload, ["POST"]),
                route("/import/{business}/template.{kind}", "enter_data", import_template, ["GET"]),
                route("/import/jobs/{job}", "enter_data", import_job, ["GET"]),
                route("/records", "view_records", records, ["GET"]),
                route("/records/{business}/{key:path}", "view_records", record, ["GET"]),
                route("/sequence/{business}/{seq:int}", "view_records", record, ["GET"]),
                route("/logs", "view_logs", logs, ["GET"]),
                route("/logs/{number:int}", "view_logs", log_entry, ["GET"]),
                *admin_routes(console),
                Mount("/static", app=StaticFiles(packages=[("tzsb.web", "static")]), name="console-static"),
            ],
        )
    ]
