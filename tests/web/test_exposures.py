"""Small exposures a stranger could use: what /healthz tells, how large a request head may be, and the
trailing-slash redirect. Against a real `tzsb serve`, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import anyio
import httpx
import orjson
import pytest

from tests.support import device
from tests.web.servers import init_province, serving, tzsb
from tzsb.app import Node as AssembledNode
from tzsb.client import build_request
from tzsb.protocol.signing import SignAlgorithm
from tzsb.web import create_asgi

HEADER_LIMIT: Final = 16 * 1024
PAD: Final = b"a" * 4000


@dataclass(frozen=True)
class Node:
    base: str
    secret: str
    home: Path
    log: Path

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.base.removeprefix("http://").split(":")
        return host, int(port)

    def signed_write(self) -> bytes:
        request = build_request("hz-city", self.secret, SignAlgorithm.MD5, "140101", "01", [device(1)])
        return orjson.dumps(request)

    def logged(self) -> list[dict[str, Any]]:
        shown = tzsb("log", "--home", str(self.home), "--json")
        assert shown.returncode == 0, shown.stderr
        rows: list[dict[str, Any]] = json.loads(shown.stdout)
        return rows


Start = Callable[..., AbstractContextManager[Node]]


@pytest.fixture
def start(database_url: str, tmp_path: Path) -> Start:
    """Serve a province node with one app (write and query 140101) in an environment of its own."""

    @contextmanager
    def started(env: dict[str, str] | None = None) -> Iterator[Node]:
        home = tmp_path / "node"
        init_province(home, database_url)
        created = tzsb(
            "app", "create", "--home", str(home), "--appid", "hz-city", "--region", "330100",
            "--busicode", "140101", "--action", "01", "--action", "04", "--json",
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        log = tmp_path / "serve.log"
        with serving(home, log, env) as base:
            yield Node(base, json.loads(created.stdout)["secret"], home, log)

    return started


@pytest.fixture
def node(start: Start) -> Iterator[Node]:
    with start() as served:
        yield served


def exchange(node: Node, request: bytes) -> bytes:
    """Send raw bytes on a new connection; everything the server writes until it closes (or 10 s)."""
    with socket.create_connection(node.address, timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    return received


def head_of(size: int) -> bytes:
    """Headers of about ``size`` bytes, in 4000-byte values."""
    return b"".join(b"x-pad-%d: %s\r\n" % (number, PAD) for number in range(size // (len(PAD) + 12)))


# ------------------------------------------------------------------ /healthz


def test_loopback_sees_the_full_health_answer(node: Node) -> None:
    health = httpx.get(f"{node.base}/healthz").json()
    assert health["status"] == "ok"
    assert {"version", "level", "region", "interface", "business_types"} <= health.keys()


def test_a_stranger_learns_only_the_status(start: Start) -> None:
    # Loopback is not listed here, so the test's own requests come from a stranger.
    with start({"TZSB_HEALTH_DETAILS_FROM": "192.0.2.0/24"}) as node:
        reply = httpx.get(f"{node.base}/healthz")
        assert reply.status_code == 200
        assert reply.json() == {"status": "ok"}
        # Naming a listed address in a header does not help: the peer is no trusted proxy.
        forged = httpx.get(f"{node.base}/healthz", headers={"x-forwarded-for": "192.0.2.1"})
        assert forged.json() == {"status": "ok"}


@pytest.mark.parametrize(("peer", "details"), [("203.0.113.9", False), ("127.0.0.1", True)])
def test_an_unavailable_store_tells_only_listed_callers_why(
    make_node: Callable[..., AssembledNode], peer: str, details: bool
) -> None:
    assembled = make_node()

    def broken() -> None:
        raise ConnectionRefusedError("database down")

    assembled.store.ping = broken  # type: ignore[method-assign]

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_asgi(assembled), client=(peer, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            return await client.get("/healthz")

    reply = anyio.run(get)
    assert reply.status_code == 503
    expected = {"status": "unavailable", "reason": "ConnectionRefusedError"} if details else {"status": "unavailable"}
    assert reply.json() == expected


# ------------------------------------------------------------------ the header cap


def test_200_kb_of_headers_get_431_and_the_connection_closed(node: Node) -> None:
    head = b"GET /healthz HTTP/1.1\r\nhost: node\r\n" + head_of(200_000) + b"\r\n"
    assert len(head) > 190_000
    answer = exchange(node, head)  # returns once the server has closed the connection
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), answer[:200]
    assert b"connection: close" in answer
    assert "请求头过大 / Request header fields too large" in answer.decode()


def test_one_endless_header_gets_431_before_it_ends(node: Node) -> None:
    # No end of the header is ever sent: the server must refuse on size alone, not wait for it.
    head = b"GET /healthz HTTP/1.1\r\nhost: node\r\nx-big: " + b"a" * 200_000
    answer = exchange(node, head)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]


def test_a_signed_write_with_oversized_headers_reaches_nothing(node: Node) -> None:
    body = node.signed_write()
    head = (
        b"POST /tzsb/exchange HTTP/1.1\r\nhost: node\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n" % len(body)
    )
    answer = exchange(node, head + head_of(200_000) + b"\r\n" + body)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert node.logged() == []  # not logged, so never handed to the exchange
    query = build_request("hz-city", node.secret, SignAlgorithm.MD5, "140101", "04", [{}])
    assert httpx.post(f"{node.base}/tzsb/exchange", json=query).json()["datalist"]["busilist"] == []
    output = node.log.read_text()
    assert "Traceback" not in output and "Invalid HTTP request" not in output, output


def test_requests_within_the_limit_are_served(node: Node) -> None:
    padding = {f"x-pad-{number}": PAD.decode() for number in range(3)}  # 12 KB of headers
    reply = httpx.post(
        f"{node.base}/tzsb/exchange",
        content=node.signed_write(),
        headers={"content-type": "application/json", **padding},
    )
    assert reply.json()["datalist"]["result"] == "0001", reply.text
    # A body far larger than the header limit is no header: it is counted against max_body_bytes only.
    records = [device(number, USE_ADDRESS="杭州市" * 60) for number in range(100, 150)]
    request = build_request("hz-city", node.secret, SignAlgorithm.MD5, "140101", "01", records)
    large = httpx.post(f"{node.base}/tzsb/exchange", json=request)
    assert large.json()["datalist"]["result"] == "0001", large.text


def test_the_limit_holds_for_each_request_of_a_kept_alive_connection(node: Node) -> None:
    small = b"GET /healthz HTTP/1.1\r\nhost: node\r\n" + head_of(12_000) + b"\r\n"
    large = b"GET /healthz HTTP/1.1\r\nhost: node\r\n" + head_of(24_000) + b"\r\n"
    answer = exchange(node, small + small + large + small)
    assert answer.count(b"HTTP/1.1 200 OK") == 2, answer
    assert answer.count(b"HTTP/1.1 431 ") == 1, answer
    assert answer.rstrip().endswith("请求头过大 / Request header fields too large".encode())


def test_the_limit_is_a_setting(start: Start) -> None:
    with start({"TZSB_MAX_HEADER_BYTES": "4096"}) as node:
        assert httpx.get(f"{node.base}/healthz").status_code == 200
        padded = httpx.get(f"{node.base}/healthz", headers={"x-pad": PAD.decode() + "a" * 200})
        assert padded.status_code == 431


# ------------------------------------------------------------------ trailing slash


def test_a_trailing_slash_is_404_not_a_redirect(node: Node) -> None:
    for method, path in [("POST", "/tzsb/exchange/"), ("GET", "/healthz/"), ("GET", "/openapi.json/")]:
        reply = httpx.request(method, f"{node.base}{path}", content=b"{}" if method == "POST" else None)
        assert reply.status_code == 404, (method, path, reply.status_code)
        assert "location" not in reply.headers
    assert node.logged() == []
