"""Small interface requests of a SQLite node are answered on the event loop's thread (``tzsb.inline``):
while one of them waits for the database, the served node goes on answering, and with
``inline_requests`` off it answers the same through worker threads."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.exceptions import StarletteDeprecationWarning

from tests.support import body, call, claimed, device, grant, snapshot
from tests.web.servers import init_province, serving, tzsb
from tzsb import inline, refusals
from tzsb.app import Node
from tzsb.client import build_request
from tzsb.errors import ExchangeError
from tzsb.protocol.signing import SignAlgorithm
from tzsb.store import interaction_log, open_store
from tzsb.web import create_asgi

with warnings.catch_warnings():
    # Starlette asks for httpx2 for its test client; httpx (what this project installs) still works.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient


def _create_app(home: Path) -> str:
    created = tzsb(
        "app", "create", "--home", str(home), "--appid", "viewer", "--region", "330100",
        "--busicode", "140101", "--action", "01", "--action", "04", "--json",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    return str(json.loads(created.stdout)["secret"])


def _post(url: str, secret: str, action: str, busilist: list[dict[str, Any]]) -> dict[str, Any]:
    body = orjson.dumps(build_request("viewer", secret, SignAlgorithm.MD5, "140101", action, busilist))
    reply = httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=60)
    datalist: dict[str, Any] = reply.json()["datalist"]
    return datalist


@pytest.mark.parametrize("inline_requests", ["true", "false"])
def test_the_node_answers_others_while_a_query_waits_for_the_writers_lock(tmp_path: Path, inline_requests: str) -> None:
    home = tmp_path / "node"
    init_province(home, "")
    secret = _create_app(home)
    environment = {"TZSB_INLINE_REQUESTS": inline_requests}
    with serving(home, tmp_path / "serve.log", environment) as base:
        url = f"{base}/tzsb/exchange"
        assert _post(url, secret, "01", [device(1), device(2)])["result"] == "0001"
        # A writer of another process (a CLI command, another worker) holds the database's writers' lock.
        other = open_store(f"sqlite:///{home / 'tzsb.db'}")
        holding, release = threading.Event(), threading.Event()

        def hold() -> None:
            with other.write() as connection:
                interaction_log.append(connection, {
                    "at": "2026-12-05T10:00:00.000+08:00", "appid": "cli", "busicode": "", "action": "",
                    "random": "held", "client_addr": "", "record_count": 0, "result": "0001", "code": "",
                    "message": "held", "duration_ms": 0.0,
                })  # fmt: skip
                holding.set()
                release.wait(20)

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert holding.wait(10)
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                key = device(1)["EQP_CODE"]
                queries = [pool.submit(_post, url, secret, "04", [{"EQP_CODE": key}]) for _ in range(3)]
                # A refusal writes too: its log row, and the failure counted toward the caller's lock-out.
                forged = pool.submit(_post, url, "not-the-secret", "04", [{"EQP_CODE": key}])
                time.sleep(0.3)
                assert not any(query.done() for query in queries)  # their claims wait for the lock
                started = time.monotonic()
                assert httpx.get(f"{base}/healthz", timeout=5).json()["status"] == "ok"
                assert time.monotonic() - started < 2
                release.set()
                answers = [query.result(timeout=30) for query in queries]
                refused = forged.result(timeout=30)
        finally:
            release.set()
            holder.join()
            other.dispose()
        assert [answer["result"] for answer in answers] == ["0001"] * 3
        assert [answer["busilist"][0]["EQP_CODE"] for answer in answers] == [key] * 3
        expected = refusals.signature_mismatch("MD5")
        assert (refused["code"], refused["message"]) == (expected.code.value, expected.message)


@pytest.mark.parametrize("inline_requests", [True, False])
def test_only_small_interface_requests_of_a_sqlite_node_run_on_the_loop(
    make_node: Callable[..., Node], monkeypatch: pytest.MonkeyPatch, inline_requests: bool
) -> None:
    node = make_node(inline_requests=inline_requests)
    ran: list[tuple[str, bool]] = []

    def spied(name: str, original: Callable[..., bytes]) -> Callable[..., bytes]:
        def recorded(body: bytes, content_type: str, client_addr: str, client_cert: str | None = None) -> bytes:
            ran.append((name, inline.on_loop()))
            return original(body, content_type, client_addr, client_cert)

        return recorded

    monkeypatch.setattr(node.exchange, "handle", spied("interface", node.exchange.handle))
    monkeypatch.setattr(node.exchange, "handle_log", spied("log", node.exchange.handle_log))
    client = TestClient(create_asgi(node))
    limit = node.settings.inline_max_bytes
    for size in (limit, limit + 1):
        reply = client.post(node.settings.service_path, content=b" " * size)  # refused, as any body that is not JSON
        assert reply.json()["datalist"]["result"] == "0000"
    client.post(node.settings.log_path, content=b"{}")

    on_loop = inline_requests and node.store.is_sqlite
    assert ran == [("interface", on_loop), ("interface", False), ("log", False)]


def _unknown_parameter(secret: str) -> bytes:
    request = build_request("hz-city", secret, SignAlgorithm.MD5, "140101", "04", [{"EQP_CODE": device(1)["EQP_CODE"]}])
    return orjson.dumps({**request, "extra": "1"})


BAD_REQUESTS_ON_THE_LOOP: list[tuple[str, Callable[[str], bytes], ExchangeError]] = [
    ("not JSON", lambda _secret: b"{not json", refusals.body_not_json()),
    (
        "wrong signature",
        lambda _secret: body("hz-city", "not-the-secret", "140101", "04", [{"EQP_CODE": device(1)["EQP_CODE"]}]),
        refusals.signature_mismatch("MD5"),
    ),
    ("unknown parameter", _unknown_parameter, refusals.unknown_parameters(["extra"])),
    (
        "two query conditions",
        lambda secret: body("hz-city", secret, "140101", "04", [{"EQP_CODE": "a"}, {"EQP_CODE": "b"}]),
        refusals.query_needs_one_condition(),
    ),
]


@pytest.mark.parametrize(
    ("case", "payload", "expected"), BAD_REQUESTS_ON_THE_LOOP, ids=[c[0] for c in BAD_REQUESTS_ON_THE_LOOP]
)
def test_a_bad_request_on_the_loop_is_refused_as_from_a_thread_and_writes_nothing(
    make_node: Callable[..., Node], case: str, payload: Callable[[str], bytes], expected: ExchangeError
) -> None:
    node = make_node()
    secret = grant(node)
    assert call(node, body("hz-city", secret, "140101", "01", [device(1)]))["datalist"]["result"] == "0001"
    before = snapshot(node)

    reply = TestClient(create_asgi(node)).post(node.settings.service_path, content=payload(secret))

    answer = reply.json()
    datalist = answer["datalist"]
    assert (datalist["result"], datalist["code"], datalist["message"]) == (
        "0000",
        expected.code.value,
        expected.message,
    )
    # Nothing written but, for a caller that proved who it is, its random: a refusal is a first answer too.
    assert snapshot(node) == claimed(before, answer if answer["sign"] else None), case
