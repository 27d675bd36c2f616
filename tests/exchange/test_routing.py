"""Routing (5.2, 5.2.2): a county's query at its city node answered by the province node registered
as the provider, masked for the county and signed for it; a provider that is down, slow, unsigned,
wrongly signed or out of shape is E_UPSTREAM, never a hang; a circuit breaker pauses a failing one."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from tests.support import body, call, device, grant, log_rows, snapshot
from tests.sync.nodes import Served, free_port, serve_in_thread
from tzsb import inline, refusals
from tzsb.app import Node
from tzsb.cli.main import app as cli
from tzsb.errors import ConfigurationError
from tzsb.protocol import SignAlgorithm, encode_response, failure_datalist, response_signed_params, verify
from tzsb.registry import ServiceSpec

PROVIDER_SECRET_APP = "city-330100"


@pytest.fixture
def provider(open_node: Callable[..., Node]) -> Iterator[Served]:
    """The province node holding the devices: one in Xihu (330106), one in Shangcheng (330102)."""
    node = open_node("province", "province", "330000")
    loader = grant(node, appid="loader", region="330100", busicodes=frozenset({"140101"}))
    for record in (device(1), device(2, AREA_CODE="330102")):
        assert call(node, body("loader", loader, "140101", "01", [record]))["datalist"]["result"] == "0001"
    with serve_in_thread(node) as served:
        yield served


@pytest.fixture
def city(open_node: Callable[..., Node], provider: Served) -> Node:
    """The city node in the middle, routing 0101 queries to the province as app city-330100."""
    node = open_node("city", "city", "330100", route_failures_to_pause=2)
    secret = grant(
        provider.node, appid=PROVIDER_SECRET_APP, region="330100", busicodes=frozenset({"140101"}),
        actions=frozenset({"04"}), unmasked=frozenset({"0101"}),
    )  # fmt: skip
    node.services.add(
        ServiceSpec(name="province-devices", businesses=("0101",), url=provider.url, appid=PROVIDER_SECRET_APP,
                    secret=secret, timeout_seconds=5)
    )  # fmt: skip
    return node


def _county(city: Node, **options: Any) -> str:
    options.setdefault("unmasked", frozenset())
    return grant(city, appid="xihu", region="330106", busicodes=frozenset({"140101"}), **options)


def _verified(answer: dict[str, Any], secret: str) -> dict[str, Any]:
    assert verify(response_signed_params(answer), secret, SignAlgorithm.MD5, answer["sign"]), answer
    datalist: dict[str, Any] = answer["datalist"]
    return datalist


def test_a_query_is_answered_by_the_provider_masked_and_signed_for_the_requester(city: Node, provider: Served) -> None:
    secret = _county(city)
    key = device(1)["EQP_CODE"]

    answer = call(city, body("xihu", secret, "140101", "04", [{"EQP_CODE": key}], random="routed-query-0001"))

    datalist = _verified(answer, secret)
    assert datalist["result"] == "0001", datalist
    [record] = datalist["busilist"]
    assert record["EQP_CODE"] == key
    assert record["SAFETY_MANAGER_PHONE"] != device(1)["SAFETY_MANAGER_PHONE"]  # masked for the county
    assert "*" in record["SAFETY_MANAGER_PHONE"]
    # Both legs logged here under one correlation id; the provider saw this node's app and a fresh random.
    legs = [row for row in log_rows(city) if row["correlation"]]
    assert [(row["direction"], row["appid"], row["result"]) for row in legs] == [
        ("out", PROVIDER_SECRET_APP, "0001"), ("in", "xihu", "0001"),
    ]  # fmt: skip
    assert legs[0]["correlation"] == legs[1]["correlation"] == legs[0]["random"]
    assert legs[1]["random"] == "routed-query-0001"
    shown = CliRunner().invoke(
        cli, ["log", "--home", str(city.settings.home), "--correlation", legs[0]["correlation"], "--json"]
    )
    assert [(row["direction"], row["random"]) for row in orjson.loads(shown.stdout)] == [
        ("in", "routed-query-0001"), ("out", legs[0]["random"]),
    ]  # fmt: skip
    seen = [row for row in log_rows(provider.node) if row["appid"] == PROVIDER_SECRET_APP]
    assert [(row["random"], row["action"], row["result"]) for row in seen] == [(legs[0]["random"], "04", "0001")]
    # Nothing of it was stored at the city.
    assert snapshot(city)["records"] == []


def test_records_outside_the_requesters_region_are_dropped_and_unmasked_grants_are_kept(
    city: Node, provider: Served
) -> None:
    secret = _county(city, unmasked=frozenset({"0101"}))
    elsewhere = device(2)["EQP_CODE"]
    outside = _verified(call(city, body("xihu", secret, "140101", "04", [{"EQP_CODE": elsewhere}])), secret)
    assert outside["result"] == "0001" and outside["busilist"] == []

    found = _verified(call(city, body("xihu", secret, "140101", "04", [{"_region": "330100"}])), secret)
    assert [record["EQP_CODE"] for record in found["busilist"]] == [device(1)["EQP_CODE"]]
    assert found["busilist"][0]["SAFETY_MANAGER_PHONE"] == device(1)["SAFETY_MANAGER_PHONE"]


def test_the_same_random_gets_the_first_answer_and_the_provider_is_not_asked_twice(
    city: Node, provider: Served
) -> None:
    secret = _county(city)
    request = body("xihu", secret, "140101", "04", [{"EQP_CODE": device(1)["EQP_CODE"]}], random="asked-once-0001")
    first = city.exchange.handle(request, "application/json", "127.0.0.1")
    asked = len(log_rows(provider.node))

    again = city.exchange.handle(request, "application/json", "127.0.0.1")

    assert again == first
    assert len(log_rows(provider.node)) == asked


def test_a_provider_refusal_is_passed_on_signed_for_the_requester(city: Node, provider: Served) -> None:
    secret = _county(city)
    answer = call(city, body("xihu", secret, "140101", "04", [{"NO_SUCH_FIELD": "x"}]))
    datalist = _verified(answer, secret)
    assert datalist == failure_datalist(refusals.query_field_unknown("NO_SUCH_FIELD", "0101"))
    assert [row["code"] for row in log_rows(city) if row["correlation"]] == ["E_PARAM", "E_PARAM"]


class FakeProvider:
    """A provider on loopback that can be told to be slow, sign wrongly, not sign, or talk nonsense."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.mode = "ok"
        self.requests = 0
        #: In mode "together", each request waits here for another to arrive (so two are out at once).
        self.together = threading.Barrier(2, timeout=0.8)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake.requests += 1
                request = orjson.loads(self.rfile.read(int(self.headers["content-length"])))
                status, payload = fake.answer(request)
                if fake.mode == "slow":
                    time.sleep(3)
                if fake.mode == "together":
                    fake.together.wait()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tzsb/exchange"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, request: dict[str, Any]) -> tuple[int, bytes]:
        # "large": a page of 1,000 records (400 KB), past what the routing node handles on its event loop.
        records = [device(n) for n in range(1000)] if self.mode == "large" else [device(1)]
        datalist = {"result": "0001", "message": "ok", "busilist": records}
        secret = "f" * 32 if self.mode == "wrong-sign" else self.secret
        signed = encode_response(
            request["appid"], request["busicode"], request["random"], datalist,
            None if self.mode == "unsigned" else secret, SignAlgorithm.MD5,
        )  # fmt: skip
        if self.mode == "not-json":
            return 200, b"<html>gateway error: internal details</html>"
        if self.mode == "shape":
            return 200, orjson.dumps({"appid": request["appid"], "datalist": "nope"})
        if self.mode == "other-random":
            return 200, encode_response(
                request["appid"], request["busicode"], "another-random", datalist, secret, SignAlgorithm.MD5
            )
        if self.mode == "status":
            return 502, b"bad gateway"
        return 200, signed

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake(open_node: Callable[..., Node]) -> Iterator[tuple[Node, FakeProvider]]:
    node = open_node("city", "city", "330100", route_failures_to_pause=3, route_pause_seconds=30)
    provider = FakeProvider("0123456789abcdef0123456789abcdef")
    node.services.add(
        ServiceSpec(name="flaky", businesses=("0101",), url=provider.url, appid="city-330100",
                    secret=provider.secret, timeout_seconds=1)
    )  # fmt: skip
    yield node, provider
    provider.close()


@pytest.mark.parametrize(
    ("mode", "zh", "en"),
    [
        ("slow", "1 秒内未应答", "no answer within 1 s"),
        ("wrong-sign", "应答签名验证失败", "the answer's signature does not verify"),
        ("unsigned", "应答未签名（提供方未认可本节点的凭据？）",
         "the answer is unsigned (did the provider refuse this node's credentials?)"),
        ("not-json", "应答不是 JSON", "the answer is not JSON"),
        ("shape", "应答不符合接口规范的格式", "the answer is not in the spec's shape"),
        ("other-random", "应答与请求不对应", "the answer is not the answer to this request"),
        ("status", "HTTP 状态 502", "HTTP status 502"),
    ],
)  # fmt: skip
def test_a_provider_that_fails_is_e_upstream_and_nothing_is_written(
    fake: tuple[Node, FakeProvider], mode: str, zh: str, en: str
) -> None:
    node, provider = fake
    secret = _county(node)
    provider.mode = mode
    before = snapshot(node)
    began = time.monotonic()

    answer = call(node, body("xihu", secret, "140101", "04", [{"EQP_CODE": device(1)["EQP_CODE"]}]))

    assert time.monotonic() - began < 2.9  # never waits past the service's timeout
    assert _verified(answer, secret) == failure_datalist(refusals.upstream_failed("flaky", zh, en))
    assert "internal details" not in orjson.dumps(answer).decode()
    assert snapshot(node)["records"] == before["records"]
    legs = [(row["direction"], row["code"]) for row in log_rows(node) if row["correlation"]]
    assert legs == [("out", "E_UPSTREAM"), ("in", "E_UPSTREAM")]


def test_a_provider_that_is_down_is_e_upstream(open_node: Callable[..., Node]) -> None:
    node = open_node("city", "city", "330100")
    node.services.add(
        ServiceSpec(name="gone", businesses=("0101",), url=f"http://127.0.0.1:{free_port()}/tzsb/exchange",
                    appid="city-330100", secret="s" * 16)
    )  # fmt: skip
    secret = _county(node)
    answer = call(node, body("xihu", secret, "140101", "04", [{"EQP_CODE": device(1)["EQP_CODE"]}]))
    assert _verified(answer, secret) == failure_datalist(
        refusals.upstream_failed("gone", "无法连接（ConnectError）", "unreachable (ConnectError)")
    )


def test_the_circuit_breaker_pauses_a_failing_provider_and_shows_its_state(fake: tuple[Node, FakeProvider]) -> None:
    node, provider = fake
    secret = _county(node)
    provider.mode = "wrong-sign"
    query = [{"EQP_CODE": device(1)["EQP_CODE"]}]
    for _ in range(3):
        assert call(node, body("xihu", secret, "140101", "04", query))["datalist"]["code"] == "E_UPSTREAM"
    assert provider.requests == 3
    shown = node.services.require("flaky").public()
    assert shown["breaker_state"] == "open"
    assert "signature does not verify" in shown["last_error"]

    provider.mode = "ok"
    paused = call(node, body("xihu", secret, "140101", "04", query))

    assert provider.requests == 3  # not asked while the breaker is open
    assert _verified(paused, secret) == failure_datalist(refusals.upstream_paused("flaky", 30))


def test_requests_to_one_provider_are_out_side_by_side(fake: tuple[Node, FakeProvider]) -> None:
    """The provider holds each request until a second one arrives: asked one at a time, the first
    would wait past the service's 1 s timeout and be E_UPSTREAM."""
    node, provider = fake
    secret = _county(node)
    provider.mode = "together"
    answers: list[dict[str, Any]] = []

    def ask() -> None:
        answers.append(call(node, body("xihu", secret, "140101", "04", [{"EQP_CODE": device(1)["EQP_CODE"]}])))

    askers = [threading.Thread(target=ask) for _ in range(2)]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join(10)
    assert [_verified(answer, secret)["result"] for answer in answers] == ["0001", "0001"]
    assert provider.requests == 2


def test_services_are_checked_when_added_and_one_route_has_one_provider(open_node: Callable[..., Node]) -> None:
    node = open_node("city", "city", "330100")
    good = ServiceSpec(name="p1", businesses=("0101",), url="http://127.0.0.1:9/tzsb/exchange", appid="a", secret="s")
    node.services.add(good)
    for spec, message in [
        (ServiceSpec(**{**_fields(good), "name": "p2"}), "0101/04 already routed to service p1"),
        (ServiceSpec(**{**_fields(good), "name": "bad name!"}), "1-64 letters"),
        (
            ServiceSpec(**{**_fields(good), "name": "p3", "businesses": ("9999",)}),
            "9999 are not in this node's catalog",
        ),
        (ServiceSpec(**{**_fields(good), "name": "p4", "url": "ftp://x/y"}), "http(s)://host:port"),
        (ServiceSpec(**{**_fields(good), "name": "p5", "actions": ("05",)}), "--action"),
        (ServiceSpec(**{**_fields(good), "name": "p6", "upstream_purpose": "99"}), "--upstream-purpose"),
        (ServiceSpec(**{**_fields(good), "name": "p7", "timeout_seconds": 0}), "--timeout"),
        (ServiceSpec(**{**_fields(good), "name": "p8", "sign_algorithm": SignAlgorithm.SM4}), "SM4 secret"),
        (ServiceSpec(**{**_fields(good), "name": "p1"}), "a service named p1 exists"),
    ]:
        with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
            node.services.add(spec)
    node.services.set_enabled("p1", False)
    node.services.add(ServiceSpec(**{**_fields(good), "name": "p2"}))  # p1 no longer routes 0101/04
    with pytest.raises(ConfigurationError, match="already routed to service p2"):
        node.services.set_enabled("p1", True)
    assert "secret" not in node.services.require("p2").public()
    node.services.remove("p1")
    assert [service.name for service in node.services.list()] == ["p2"]


def _fields(spec: ServiceSpec) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in spec.__dataclass_fields__}


def test_routed_queries_from_handlers_on_the_loop_await_their_provider_there(
    fake: tuple[Node, FakeProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``tzsb.inline``: a routed request stays on the event loop's thread and awaits the provider's
    answer there, so the loop serves other requests meanwhile. The provider holds each request until
    a second one arrives: with the loop blocked by the first, both would be E_UPSTREAM."""
    node, provider = fake
    secret = _county(node)
    provider.mode = "together"
    routed = node.exchange.routed
    assert routed is not None
    executed_on: list[int] = []
    original = routed.execute

    def recorded(*args: Any) -> bytes:
        executed_on.append(threading.get_ident())
        return original(*args)

    monkeypatch.setattr(routed, "execute", recorded)
    asked = [body("xihu", secret, "140101", "04", [{"EQP_CODE": device(1)["EQP_CODE"]}]) for _ in range(2)]

    async def main() -> tuple[list[bytes], int]:
        answers = await asyncio.gather(
            *(inline.run_on_loop(node.exchange.handle, payload, "application/json", "127.0.0.1") for payload in asked)
        )
        return answers, threading.get_ident()

    answers, loop_thread = asyncio.run(main())
    assert [_verified(orjson.loads(answer), secret)["result"] for answer in answers] == ["0001", "0001"]
    assert executed_on == [loop_thread, loop_thread] and provider.requests == 2
    # From a thread, the same node asks its provider through inline's own loop, on connections of its own.
    provider.mode = "ok"
    assert _verified(call(node, asked[0]), secret)["result"] == "0001"  # a retry: its first answer
    fresh = body("xihu", secret, "140101", "04", [{"EQP_CODE": device(1)["EQP_CODE"]}])
    assert _verified(call(node, fresh), secret)["result"] == "0001" and provider.requests == 3


def test_a_large_routed_answer_is_read_and_signed_in_a_worker_thread(
    fake: tuple[Node, FakeProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small routed query can bring back a large answer: reading, verifying, masking and signing it
    on the event loop would hold up every other request meanwhile, so past ANSWER_ON_LOOP_BYTES that
    work goes to a worker thread (the wait for the provider stays on the loop)."""
    node, provider = fake
    secret = _county(node)
    routed = node.exchange.routed
    assert routed is not None
    threads: dict[str, list[int]] = {"_verified": [], "_answered": []}
    for name, seen in threads.items():
        original = getattr(routed, name)

        def recorded(*args: Any, original: Any = original, seen: list[int] = seen) -> Any:
            seen.append(threading.get_ident())
            return original(*args)

        monkeypatch.setattr(routed, name, recorded)

    async def ask() -> tuple[dict[str, Any], int]:
        asked = body("xihu", secret, "140101", "04", [{"EQP_CODE": device(1)["EQP_CODE"]}])
        answer = await inline.run_on_loop(node.exchange.handle, asked, "application/json", "127.0.0.1")
        return orjson.loads(answer), threading.get_ident()

    for mode, records, on_loop in (("ok", 1, True), ("large", 1000, False)):
        provider.mode = mode
        answer, loop_thread = asyncio.run(ask())
        datalist = _verified(answer, secret)
        assert (datalist["result"], len(datalist["busilist"])) == ("0001", records)
        assert all((seen[-1] == loop_thread) is on_loop for seen in threads.values()), (mode, threads)
