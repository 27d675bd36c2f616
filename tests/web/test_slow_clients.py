"""Slow senders against a served node: a head must arrive in time, a body may not pause too long, and
connections past --limit-concurrency get 503 (web/headers.py). Real `tzsb serve`, real sockets."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.web.servers import init_province, serving, tzsb

# Short time-outs keep the module fast; the logic does not depend on their size.
TIMEOUTS = {"TZSB_HEADER_TIMEOUT_SECONDS": "1", "TZSB_BODY_TIMEOUT_SECONDS": "1"}
PARTIAL_HEAD = b"POST /tzsb/exchange HTTP/1.1\r\nHost: node\r\n"


def _connect(base: str, data: bytes = b"") -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    if data:
        sock.sendall(data)
    return sock


def _closed_by_node(sock: socket.socket, within: float) -> bytes | None:
    """What the node sent before closing ``sock`` within ``within`` seconds; None if it is still open."""
    sock.settimeout(within)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return received


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    home = tmp_path_factory.mktemp("slow") / "node"
    init_province(home)
    log = home.parent / "serve.log"
    with serving(home, log, env=TIMEOUTS) as base:
        yield base, home


def test_slow_heads_are_cut_off_while_others_are_served(node: tuple[str, Path]) -> None:
    base, _home = node
    started = time.monotonic()
    attackers = [_connect(base, PARTIAL_HEAD) for _ in range(200)]
    # A drip of a byte every 0.3 s keeps no head alive: the deadline counts from the first byte.
    dripping = _connect(base, b"GET /healthz HTTP/1.1\r\n")
    for _ in range(3):
        dripping.sendall(b"X")
        time.sleep(0.3)
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    answers = [_closed_by_node(sock, within=5) for sock in [*attackers, dripping]]
    elapsed = time.monotonic() - started
    assert all(answer is not None for answer in answers), "connections still open"
    assert elapsed < 5
    for answer in answers:
        assert answer is not None
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        assert "请求发送超时，请重新发送 / Request not sent in time; send it again".encode() in answer
        assert b"connection: close" in answer
    for sock in [*attackers, dripping]:
        sock.close()


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(node: tuple[str, Path]) -> None:
    base, _home = node
    silent = _connect(base)
    assert _closed_by_node(silent, within=4) == b""
    silent.close()


def test_a_body_that_pauses_too_long_is_cut_off_and_nothing_is_handled(node: tuple[str, Path]) -> None:
    base, home = node
    before = tzsb("log", "--home", str(home), "--json", "--limit", "1000").stdout
    paused = _connect(
        base,
        b"POST /tzsb/exchange HTTP/1.1\r\nHost: node\r\ncontent-type: application/json\r\n"
        b'content-length: 100\r\n\r\n{"appid":',
    )
    assert _closed_by_node(paused, within=4) == b""
    paused.close()
    assert tzsb("log", "--home", str(home), "--json", "--limit", "1000").stdout == before
    assert "Traceback" not in (home.parent / "serve.log").read_text()


def test_a_slow_body_that_keeps_flowing_is_handled(node: tuple[str, Path]) -> None:
    """The body's limit is a pause between reads, not a total: 2 s of steady chunks get an answer."""
    base, _home = node
    body = b'{"appid": "nobody", "busicode": "140101"' + b" " * 30 + b"}"
    flowing = _connect(
        base,
        b"POST /tzsb/exchange HTTP/1.1\r\nHost: node\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n",
    )
    for start in range(0, len(body), len(body) // 4 + 1):
        flowing.sendall(body[start : start + len(body) // 4 + 1])
        time.sleep(0.5)
    flowing.settimeout(5)
    answer = b""
    while b'"sign"' not in answer and (chunk := flowing.recv(65536)):
        answer += chunk
    flowing.close()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b'"result":"0000"' in answer


def test_past_the_concurrency_cap_requests_get_503_until_slots_free(tmp_path: Path) -> None:
    home = tmp_path / "node"
    init_province(home)
    with serving(home, tmp_path / "serve.log", env=TIMEOUTS, args=("--limit-concurrency", "20")) as base:
        holders = [_connect(base, PARTIAL_HEAD) for _ in range(20)]
        time.sleep(0.2)
        refused = httpx.get(f"{base}/healthz", timeout=5)
        assert refused.status_code == 503
        for sock in holders:
            assert _closed_by_node(sock, within=4) is not None
            sock.close()
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
