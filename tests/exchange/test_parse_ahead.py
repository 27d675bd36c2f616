"""A large busilist sent as a string is parsed while its request's sign is checked in a helper thread,
only for a caller that may be genuine: the answers are those of checking the sign first."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
import pytest

from tests.exchange import test_errors
from tests.exchange.test_errors import SIGN_MESSAGE
from tests.support import body, call, device, grant, log_rows, snapshot
from tzsb.app import Node
from tzsb.exchange import pipeline
from tzsb.protocol.messages import response_signed_params
from tzsb.protocol.signing import SignAlgorithm, verify

APPID = "hz-city"
#: Two hundred devices: a sign text of about 80 KB.
LARGE = [device(number) for number in range(200)]


@pytest.fixture
def parsed_ahead(node: Node, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the requests whose digests went to the helper thread."""
    submitted: list[int] = []
    submit = node.exchange._digester.submit

    def counting(work: Callable[[], Any]) -> Any:
        submitted.append(1)
        return submit(work)

    monkeypatch.setattr(node.exchange._digester, "submit", counting)
    return submitted


def _locked(node: Node) -> str:
    until = (node.clock.now() + timedelta(hours=24)).isoformat(timespec="seconds")
    return (
        f"应用 {APPID} 自地址 127.0.0.1 多次签名校验失败，已暂停至 {until}（规范 7.4）；"
        "请核对密钥，或请节点管理员解除（tzsb app unlock） / "
        f"App {APPID} failed signature checks repeatedly from 127.0.0.1 and is locked out until {until} "
        "(spec 7.4); check the secret, or ask the node operator to unlock"
    )


def test_the_large_batch_is_large_enough() -> None:
    assert len(orjson.dumps(LARGE)) > pipeline._DIGESTS_ASIDE_BYTES


@pytest.mark.parametrize("algorithm", list(SignAlgorithm))
def test_a_large_add_is_parsed_while_its_sign_is_checked(
    node: Node, parsed_ahead: list[int], algorithm: SignAlgorithm
) -> None:
    secret = grant(node, sign=algorithm)
    answer = call(node, body(APPID, secret, "140101", "01", LARGE, sign=algorithm))
    assert answer["datalist"]["result"] == "0001", answer
    assert answer["datalist"]["counts"]["inserted"] == len(LARGE)
    assert verify(response_signed_params(answer), secret, algorithm, answer["sign"])
    assert parsed_ahead == [1]


def test_both_secrets_sign_large_requests_during_a_rotation(node: Node, parsed_ahead: list[int]) -> None:
    old = grant(node)
    new = node.registry.rotate_secret(APPID, timedelta(hours=1))
    for secret, batch in ((old, LARGE), (new, [device(number) for number in range(300, 500)])):
        answer = call(node, body(APPID, secret, "140101", "01", batch))
        assert answer["datalist"]["result"] == "0001", answer
        assert verify(response_signed_params(answer), secret, SignAlgorithm.MD5, answer["sign"])
    assert parsed_ahead == [1, 1]


def test_a_busilist_sent_as_an_array_or_small_is_not_parsed_ahead(node: Node, parsed_ahead: list[int]) -> None:
    secret = grant(node)
    as_array = orjson.loads(body(APPID, secret, "140101", "01", LARGE, random="as-an-array-0001"))
    as_array["busilist"] = orjson.loads(as_array["busilist"])
    assert call(node, orjson.dumps(as_array))["datalist"]["result"] == "0001"
    small = call(node, body(APPID, secret, "140101", "01", [device(500)], random="a-small-one-0001"))
    assert small["datalist"]["result"] == "0001"
    assert parsed_ahead == []


def test_a_body_over_the_apps_byte_limit_is_refused_unparsed(node: Node, parsed_ahead: list[int]) -> None:
    secret = grant(node, max_bytes=50_000)
    payload = body(APPID, secret, "140101", "01", LARGE)
    before, logged = snapshot(node), len(log_rows(node))
    answer = call(node, payload)
    message = (
        f"请求体 {len(payload)} 字节，超过本应用上限 50000 字节，请分批发送 / "
        f"The request has {len(payload)} bytes, over this app's limit of 50000; split the batch"
    )
    assert (answer["datalist"]["code"], answer["datalist"]["message"]) == ("E_LIMIT", message)
    assert snapshot(node) == before
    assert [row["code"] for row in log_rows(node)[logged:]] == ["E_LIMIT"]
    assert parsed_ahead == []


def test_large_forged_requests_lock_their_caller_out_and_are_not_parsed_ahead_after_the_first(
    node: Node, parsed_ahead: list[int]
) -> None:
    secret = grant(node)
    before, logged = snapshot(node), len(log_rows(node))
    answers = [
        call(node, body(APPID, "0" * 32, "140101", "01", LARGE, random=f"forged-{attempt:04d}"))["datalist"]
        for attempt in range(3)
    ]
    sign_refusal = ("E_SIGN", SIGN_MESSAGE.format("MD5"))
    assert [(item["code"], item["message"]) for item in answers] == [
        sign_refusal,
        sign_refusal,
        ("E_LOCKED", _locked(node)),
    ]
    genuine = call(node, body(APPID, secret, "140101", "01", LARGE, random="genuine-0001"))["datalist"]
    assert (genuine["code"], genuine["message"]) == ("E_LOCKED", _locked(node))
    assert snapshot(node) == before
    assert [row["code"] for row in log_rows(node)[logged:]] == ["E_SIGN", "E_SIGN", "E_LOCKED", "E_LOCKED"]
    # Only the first: a caller with recent signature failures is parsed after its sign is checked.
    assert parsed_ahead == [1]


def test_a_sign_text_over_the_bound_is_parsed_after_its_caller_is_known(
    node: Node, parsed_ahead: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above the bound (4 MiB; lowered here so that a small batch crosses it) even a genuine caller's
    busilist waits for the sign check; a forged one is refused unparsed."""
    monkeypatch.setattr(pipeline, "_PARSE_AHEAD_MAX_BYTES", len(orjson.dumps(LARGE)) - 1)
    secret = grant(node)
    before, logged = snapshot(node), len(log_rows(node))
    forged = call(node, body(APPID, "0" * 32, "140101", "01", LARGE, random="forged-0001"))["datalist"]
    assert (forged["code"], forged["message"]) == ("E_SIGN", SIGN_MESSAGE.format("MD5"))
    assert snapshot(node) == before
    assert [row["code"] for row in log_rows(node)[logged:]] == ["E_SIGN"]
    assert call(node, body(APPID, secret, "140101", "01", LARGE))["datalist"]["result"] == "0001"
    assert parsed_ahead == []


@pytest.mark.parametrize(
    ("busilist", "options"),
    [
        pytest.param(test_errors.LARGE_NOT_JSON, {}, id="not-json"),
        pytest.param(test_errors.LARGE_NOT_JSON, {"secret": "0" * 32}, id="forged"),
        pytest.param(test_errors.LARGE_NOT_JSON, {"action": "05"}, id="unknown-action"),
    ],
)
def test_the_large_refusals_of_the_error_table_are_parsed_ahead(
    node: Node, parsed_ahead: list[int], monkeypatch: pytest.MonkeyPatch, busilist: str, options: dict[str, Any]
) -> None:
    """The table in test_errors.py checks their answers; this, that they take the path they are there for."""
    sent = test_errors.signed(busilist, **options)(node, monkeypatch)
    call(node, sent.payload, sent.content_type)
    assert parsed_ahead == [1]
