"""The ASGI application: ``POST /<service>/<interFlag>`` and ``GET /healthz``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager

import anyio.to_thread
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tzsb import __version__, inline, soap
from tzsb.app import Node, build_node, tune_runtime
from tzsb.monitor import AlertLoop, AlertWatcher, NodeMetrics, ReadinessProbe
from tzsb.settings import Settings, load_settings
from tzsb.soap import inquire
from tzsb.sync import SyncScheduler
from tzsb.web.clients import FORWARDED_FOR, ClientAddresses, in_networks, parse_networks
from tzsb.web.console import console_routes
from tzsb.web.openapi import openapi
from tzsb.web.tls import client_fingerprint
from tzsb.web.uddi_registry import registry as uddi_registry

JSON_UTF8 = "application/json; charset=utf-8"


class _BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge(int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge(size)
        chunks.append(chunk)
    return b"".join(chunks)


def create_asgi(node: Node) -> Starlette:
    """The HTTP application of an assembled node."""
    settings = node.settings
    exchange = node.exchange
    addresses = ClientAddresses(settings.trusted_proxies)
    health_details_from = parse_networks(settings.health_details_from)
    # Small interface requests of a SQLite node run on the loop's thread (``tzsb.inline``): the
    # exchange waits there only through the loop (a routed request's provider included), and hands
    # writes to a thread.
    inline_requests = settings.inline_requests and node.store.suits_loop_handlers

    def client_address(request: Request) -> str:
        """The address lock-outs, allow-lists, the log and /healthz judge (see ``web/clients.py``)."""
        peer = request.client.host if request.client else ""
        if not addresses.trusted:  # (no proxy trusted: the headers need not be read)
            return peer
        return addresses.resolve(peer, request.headers.getlist(FORWARDED_FOR))

    async def answered(request: Request, handler: Callable[[bytes, str, str, str | None], bytes]) -> Response:
        """Read the body (within the node's limit) and hand it to ``handler`` in a worker thread, or on
        this thread (``inline_requests``); a SOAP 1.2 envelope (6.2 a) is judged as the JSON body it
        carries and answered as an envelope."""
        client = client_address(request)
        content_type = request.headers.get("content-type", "application/json")
        enveloped = soap.is_soap(content_type)
        try:
            body = await _read_body(request, settings.max_body_bytes)
        except _BodyTooLarge:
            # Refused like every other request (the table's E_LIMIT, a log row), with HTTP's own status.
            answer = await anyio.to_thread.run_sync(exchange.refuse_oversized, client, settings.max_body_bytes)
            if enveloped:
                return Response(soap.render_response(answer), status_code=413, media_type=soap.CONTENT_TYPE)
            return Response(answer, status_code=413, media_type=JSON_UTF8)
        except ClientDisconnect:
            # The client went away, or was cut off for pausing its body too long (web/headers.py): there is
            # no request to handle or log, and no one to answer.
            return Response(status_code=400)
        fingerprint = client_fingerprint(request.scope)
        if enveloped:
            return await anyio.to_thread.run_sync(soap_answer, handler, body, content_type, client, fingerprint)
        if inline_requests and len(body) <= settings.inline_max_bytes and handler == exchange.handle:
            answer = await inline.run_on_loop(handler, body, content_type, client, fingerprint)
        else:
            answer = await anyio.to_thread.run_sync(handler, body, content_type, client, fingerprint)
        return Response(answer, media_type=JSON_UTF8)

    def soap_answer(
        handler: Callable[[bytes, str, str, str | None], bytes],
        body: bytes,
        content_type: str,
        client: str,
        fingerprint: str | None,
    ) -> Response:
        try:
            fields = soap.parse_request(body, content_type)
        except soap.SoapFault as fault:
            # Counted with the unparsable bodies of unidentified callers, as a JSON one would be.
            exchange.refuse_unparsable(client)
            return Response(soap.render_fault(fault), status_code=400, media_type=soap.CONTENT_TYPE)
        answer = handler(soap.json_body(fields), "application/json", client, fingerprint)
        return Response(soap.render_response(answer), media_type=soap.CONTENT_TYPE)

    async def uddi_inquiry(request: Request) -> Response:
        """``POST /uddi/inquiry``: the UDDI v2 inquiry API (SOAP 1.1) over this node and its providers."""
        try:
            body = await _read_body(request, settings.max_body_bytes)
        except _BodyTooLarge:
            return Response(status_code=413)
        except ClientDisconnect:
            return Response(status_code=400)
        base = str(request.base_url).rstrip("/")

        def answer() -> tuple[int, bytes]:
            return inquire(body, uddi_registry(node, base))

        status, envelope = await anyio.to_thread.run_sync(answer)
        return Response(envelope, status_code=status, media_type="text/xml; charset=utf-8")

    async def wsdl_description(request: Request) -> Response:
        """``GET /<service>/<interFlag>?wsdl``: the WSDL 1.1 of the interface at this URL."""
        if "wsdl" not in request.query_params:
            return Response(status_code=405, headers={"allow": "POST"})
        location = str(request.url.replace(query=""))
        return Response(soap.wsdl(location), media_type="text/xml; charset=utf-8")

    async def interface(request: Request) -> Response:
        return await answered(request, exchange.handle)

    async def log_interface(request: Request) -> Response:
        # The interaction log through the same envelope (6.3.1 d).
        return await answered(request, exchange.handle_log)

    async def healthz(request: Request) -> Response:
        # Strangers learn only whether the node serves; the version, level, region and business types
        # would tell an attacker which node this is and what to probe, so only listed networks see them.
        details = in_networks(client_address(request), health_details_from)
        try:
            await anyio.to_thread.run_sync(node.store.ping)
        except Exception as exc:
            answer: dict[str, object] = {"status": "unavailable"}
            if details:
                answer["reason"] = type(exc).__name__
            return JSONResponse(answer, status_code=503)
        rules = node.rules.current()
        disabled = rules.disabled
        # "degraded": serving, but some interfaces are off or the rules file was refused.
        status = "degraded" if disabled or node.rules.last_error else "ok"
        if not details:
            return JSONResponse({"status": status})
        return JSONResponse(
            {
                "status": status,
                "version": __version__,
                "level": settings.level,
                "region": settings.region,
                "interface": settings.service_path,
                "business_types": [code for code in node.catalog if code not in disabled],
                "disabled_interfaces": disabled,
                "rules_error": node.rules.last_error,
            }
        )

    # The sync links' schedule (5.4), started with the application: with several processes each runs
    # one, and a link's lease lets exactly one of them run that link at a time.
    scheduler = SyncScheduler(node.sync, settings.sync_tick_seconds) if settings.sync_schedule else None
    alerts = AlertLoop(AlertWatcher(node), settings.alert_check_seconds)
    metrics = NodeMetrics(node)
    exchange.observe(metrics.observe)
    metrics_from = parse_networks(settings.metrics_from)

    async def metrics_text(request: Request) -> Response:
        if not in_networks(client_address(request), metrics_from):
            return Response(status_code=403)
        text = await anyio.to_thread.run_sync(metrics.exposition)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    probe = ReadinessProbe(node, (lambda: scheduler.alive) if scheduler is not None else None)

    async def readyz(request: Request) -> Response:
        # Strangers learn which checks fail, never why (the reasons name files and errors).
        found = await anyio.to_thread.run_sync(probe.readiness)
        answer: dict[str, object] = {"status": "ready" if found.ready else "not ready", "failing": found.failing}
        if in_networks(client_address(request), health_details_from):
            answer["checks"] = {check.name: {"ok": check.ok, "reason": check.reason} for check in found.checks}
        return JSONResponse(answer, status_code=200 if found.ready else 503)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if scheduler is not None:
            scheduler.start()
        alerts.start()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(alerts.stop)
            if scheduler is not None:
                await anyio.to_thread.run_sync(scheduler.stop)
            # Off the loop: closing waits for writes still running, and they may need the loop to finish.
            await anyio.to_thread.run_sync(node.close)

    description = openapi(settings.service_path)

    async def openapi_json(_request: Request) -> Response:
        return JSONResponse(description)

    app = Starlette(
        routes=[
            Route(settings.service_path, interface, methods=["POST"]),
            Route(settings.service_path, wsdl_description, methods=["GET"]),
            Route(settings.log_path, log_interface, methods=["POST"]),
            Route(settings.log_path, wsdl_description, methods=["GET"]),
            Route("/uddi/inquiry", uddi_inquiry, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_text, methods=["GET"]),
            Route("/openapi.json", openapi_json, methods=["GET"]),
            Route("/console", lambda _request: RedirectResponse("/console/", status_code=308), methods=["GET"]),
            *console_routes(node),
        ],
        lifespan=lifespan,
    )
    # No redirect from /tzsb/exchange/ to /tzsb/exchange: a client that follows a POST's redirect
    # resends it as a GET without its body, and the redirect tells a prober which paths exist. 404.
    app.router.redirect_slashes = False
    app.add_middleware(
        InterfaceRoutes,
        answered=answered,
        handlers={settings.service_path: exchange.handle, settings.log_path: exchange.handle_log},
    )
    app.state.node = node
    return app


class InterfaceRoutes:
    """``POST /<service>/<interFlag>`` (and the log interface) answered straight from the ASGI call,
    past Starlette's exception middleware, router and route wrappers: every request of the spec's
    interface comes this way, and those layers cost it more than its own framing does. What it
    answers is exactly what the routes of the same paths would (``answered`` serves both); any other
    request, and any request under a ``root_path``, goes on to the application."""

    def __init__(
        self,
        app: ASGIApp,
        answered: Callable[[Request, Callable[[bytes, str, str, str | None], bytes]], Awaitable[Response]],
        handlers: Mapping[str, Callable[[bytes, str, str, str | None], bytes]],
    ) -> None:
        self.app = app
        self.answered = answered
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            handler = self.handlers.get(scope["path"])
            if handler is not None:
                response = await self.answered(Request(scope, receive), handler)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(settings: Settings) -> Starlette:
    """Build the node described by ``settings`` and its HTTP application."""
    return create_asgi(build_node(settings))


def worker_app() -> Starlette:
    """One worker process of ``tzsb serve --workers N`` (uvicorn's factory): its own node, built from
    ``TZSB_HOME`` and the ``TZSB_*`` environment the serving command set."""
    application = create_app(load_settings())
    tune_runtime()
    return application
