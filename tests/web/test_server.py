"""The node as a user meets it: `tzsb init`, `tzsb app create`, `tzsb serve`, then HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import pytest

from tests.support import device
from tests.web.servers import init_province, serving, tzsb
from tzsb.client import ExchangeClient, ResponseSignatureError, build_request
from tzsb.protocol.signing import SignAlgorithm

BODY_LIMIT = 300_000


@dataclass(frozen=True)
class Server:
    url: str
    base: str
    secret: str
    home: Path


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    home = tmp_path / "node"
    init_province(home, database_url)
    created = tzsb(
        "app", "create", "--home", str(home), "--appid", "hz-city", "--region", "330100",
        "--busicode", "140101", "--busicode", "140102", "--busicode", "140103",
        "--action", "01", "--action", "02", "--action", "03", "--action", "04", "--json",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    secret = json.loads(created.stdout)["secret"]
    with serving(home, tmp_path / "serve.log", {"TZSB_MAX_BODY_BYTES": str(BODY_LIMIT)}) as base:
        yield Server(f"{base}/tzsb/exchange", base, secret, home)


def test_client_round_trip_over_real_server(server: Server) -> None:
    records = [device(number) for number in range(250)]
    with ExchangeClient(server.url, "hz-city", server.secret) as client:
        added = client.send("140101", "01", records)
        assert added.ok, added.message
        assert added.datalist["counts"]["inserted"] == 250

        pulled = list(client.query("140101", {"_region": "330100", "_page_size": 100}))
        assert [record["EQP_CODE"] for record in pulled] == sorted(record["EQP_CODE"] for record in records)

        modified = client.send("140101", "02", [{"EQP_CODE": records[0]["EQP_CODE"], "USE_STATUS": "3"}])
        assert modified.ok and modified.datalist["counts"]["updated"] == 1
        (found,) = client.query("140101", {"EQP_CODE": records[0]["EQP_CODE"]})
        assert found["USE_STATUS"] == "3"

        deleted = client.send("140101", "03", [{"EQP_CODE": records[1]["EQP_CODE"]}])
        assert deleted.ok and deleted.datalist["counts"]["deleted"] == 1
        assert list(client.query("140101", {"EQP_CODE": records[1]["EQP_CODE"]})) == []

        refused = client.send("140101", "01", [device(999, AREA_CODE="110101")])
        assert not refused.ok and refused.code == "E_REGION"


def test_health_and_http_framing(server: Server) -> None:
    health = httpx.get(f"{server.base}/healthz").json()
    assert health["status"] == "ok"
    assert health["region"] == "330000"
    assert health["interface"] == "/tzsb/exchange"
    assert httpx.post(f"{server.base}/tzsb/other", content=b"{}").status_code == 404
    assert httpx.get(server.url).status_code == 405
    reply = httpx.post(server.url, content=b"not json", headers={"content-type": "application/json"})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json; charset=utf-8"
    assert reply.json()["datalist"]["code"] == "E_JSON"
    assert reply.json()["sign"] == ""


def test_body_over_the_limit_is_413_and_writes_nothing(server: Server) -> None:
    records = [device(number, USE_ADDRESS="杭州市" * 60) for number in range(500)]
    payload = orjson.dumps(build_request("hz-city", server.secret, SignAlgorithm.MD5, "140101", "01", records))
    assert len(payload) > BODY_LIMIT
    reply = httpx.post(server.url, content=payload, headers={"content-type": "application/json"})
    assert reply.status_code == 413
    assert reply.json()["datalist"]["code"] == "E_LIMIT"
    with ExchangeClient(server.url, "hz-city", server.secret) as client:
        assert list(client.query("140101", {})) == []


def test_form_encoded_request_over_http(server: Server) -> None:
    request = build_request("hz-city", server.secret, SignAlgorithm.MD5, "140101", "01", [device(7)])
    reply = httpx.post(
        server.url,
        content=urlencode(request).encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert reply.json()["datalist"]["result"] == "0001", reply.text


def test_client_detects_a_tampered_answer(server: Server) -> None:
    def tamper(request: httpx.Request) -> httpx.Response:
        real = httpx.post(str(request.url), content=request.content, headers=dict(request.headers))
        answer: dict[str, Any] = real.json()
        answer["datalist"]["message"] = "tampered"
        return httpx.Response(200, content=orjson.dumps(answer))

    with (
        ExchangeClient(server.url, "hz-city", server.secret, transport=httpx.MockTransport(tamper)) as client,
        pytest.raises(ResponseSignatureError),
    ):
        client.send("140101", "04", [{}])


def test_send_command_against_the_server(server: Server, tmp_path: Path) -> None:
    batch = tmp_path / "devices.json"
    batch.write_text(json.dumps([device(1), device(2)], ensure_ascii=False), encoding="utf-8")
    common = ["--url", server.url, "--appid", "hz-city", "--secret", server.secret, "--busicode", "140101"]
    sent = tzsb("send", *common, "--action", "01", "--file", str(batch))
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["datalist"]["counts"]["inserted"] == 2
    queried = tzsb("send", *common, "--action", "04", "--query", '{"_region": "330106"}')
    assert queried.returncode == 0
    assert len(json.loads(queried.stdout)["datalist"]["busilist"]) == 2
    refused = tzsb("send", *common, "--action", "04", "--query", '{"_region": "110000"}')
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["datalist"]["code"] == "E_REGION"
    log = tzsb("log", "--home", str(server.home), "--json")
    assert [row["code"] for row in json.loads(log.stdout)] == ["E_REGION", "", ""]
