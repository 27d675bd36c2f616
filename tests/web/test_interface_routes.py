"""``InterfaceRoutes``: POSTs to the interface paths are answered straight from the ASGI call by the
same ``answered`` the routes use; every other request (another method or path, a ``root_path``,
a lifespan or websocket scope) goes on to the application untouched."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from tzsb.web.server import InterfaceRoutes

Handler = Callable[[bytes, str, str, str | None], bytes]


def _exchange(_body: bytes, _content_type: str, _client: str, _cert: str | None) -> bytes:
    return b"exchange"


def _log(_body: bytes, _content_type: str, _client: str, _cert: str | None) -> bytes:
    return b"log"


class _Recorded:
    def __init__(self) -> None:
        self.app_calls: list[Scope] = []
        self.answered: list[tuple[str, Handler]] = []

    async def app(self, scope: Scope, _receive: Receive, send: Send) -> None:
        self.app_calls.append(scope)
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})

    async def answer(self, request: Request, handler: Handler) -> Response:
        body = await request.body()
        self.answered.append((request.url.path, handler))
        return Response(handler(body, "application/json", "peer", None), media_type="application/json")


def _call(method: str, path: str, **extra: Any) -> tuple[_Recorded, list[Message]]:
    recorded = _Recorded()
    routes = InterfaceRoutes(
        recorded.app, answered=recorded.answer, handlers={"/tzsb/exchange": _exchange, "/tzsb/log": _log}
    )
    scope: Scope = {"type": "http", "method": method, "path": path, "headers": [], "query_string": b"", **extra}
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    anyio.run(routes, scope, receive, send)
    return recorded, sent


@pytest.mark.parametrize(
    ("path", "handler", "answer"), [("/tzsb/exchange", _exchange, b"exchange"), ("/tzsb/log", _log, b"log")]
)
def test_a_post_to_an_interface_path_is_answered_without_the_application(
    path: str, handler: Handler, answer: bytes
) -> None:
    recorded, sent = _call("POST", path)
    assert recorded.app_calls == []
    assert recorded.answered == [(path, handler)]
    assert sent[0]["status"] == 200
    assert sent[-1]["body"] == answer


@pytest.mark.parametrize(
    ("method", "path", "extra"),
    [
        ("GET", "/tzsb/exchange", {}),  # ?wsdl
        ("POST", "/tzsb/exchange/", {}),  # no redirect, no answer: the application's 404
        ("POST", "/uddi/inquiry", {}),
        ("POST", "/tzsb/exchange", {"root_path": "/node"}),  # the router strips it; left to the router
    ],
)
def test_any_other_request_goes_on_to_the_application(method: str, path: str, extra: dict[str, Any]) -> None:
    recorded, sent = _call(method, path, **extra)
    assert [scope["path"] for scope in recorded.app_calls] == [path]
    assert recorded.answered == []
    assert sent[-1]["body"] == b"app"


def test_lifespan_goes_on_to_the_application() -> None:
    recorded = _Recorded()
    seen: list[str] = []

    async def app(scope: Scope, _receive: Receive, _send: Send) -> None:
        seen.append(scope["type"])

    routes = InterfaceRoutes(app, answered=recorded.answer, handlers={"/tzsb/exchange": _exchange})

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(_message: Message) -> None:
        return None

    anyio.run(routes, {"type": "lifespan"}, receive, send)
    assert seen == ["lifespan"]
