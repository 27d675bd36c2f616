"""The request envelope end to end: idempotent replay, the basicode alias, form bodies, busilist as
array or string, every sign algorithm, answers signed with the app's secret, secret rotation, and
the interaction-log row."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.padding import PKCS7

from tests.support import body, call, device, grant, log_rows, snapshot, tallied
from tzsb import refusals
from tzsb.app import Node
from tzsb.clock import FixedClock
from tzsb.protocol.messages import response_signed_params
from tzsb.protocol.signing import SignAlgorithm, verify

APPID = "hz-city"
RANDOM = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
ADDRESS = "杭州市西湖区文三路1号 A&B=C+D?%20"  # characters that matter in a form body


def key(number: int) -> str:
    return str(device(number)["EQP_CODE"])


def spec_sign(params: Mapping[str, str], secret: str, algorithm: SignAlgorithm) -> str:
    """Spec 6.5 as issue 2 profiles it, written out here independently of ``tzsb.protocol.signing``."""
    text = "&".join(f"{name}={params[name]}" for name in sorted(params) if name != "sign" and params[name] != "")
    data = f"{text}&key={secret}".encode()
    if algorithm is SignAlgorithm.MD5:
        return hashlib.md5(data, usedforsecurity=False).hexdigest().upper()
    if algorithm is SignAlgorithm.SM3:
        digest = hashes.Hash(hashes.SM3())
        digest.update(data)
        return digest.finalize().hex().upper()
    if algorithm is SignAlgorithm.HMAC_SM3:
        mac = crypto_hmac.HMAC(secret.encode(), hashes.SM3())
        mac.update(data)
        return mac.finalize().hex().upper()
    padder = PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.SM4(bytes.fromhex(secret)), modes.ECB()).encryptor()  # noqa: S305 - spec profile
    return (encryptor.update(padded) + encryptor.finalize()).hex().upper()


def compact(busilist: list[dict[str, Any]]) -> str:
    """The busilist text the spec signs for an array: compact, non-ASCII unescaped, keys as sent."""
    return json.dumps(busilist, separators=(",", ":"), ensure_ascii=False)


def envelope(
    secret: str,
    action: str,
    busilist: list[dict[str, Any]] | str,
    *,
    random: str = RANDOM,
    busicode: str = "140101",
    busicode_name: str = "busicode",
    algorithm: SignAlgorithm = SignAlgorithm.MD5,
    appid: str = APPID,
) -> dict[str, str]:
    """Request parameters with busilist as a JSON string, signed per spec."""
    text = busilist if isinstance(busilist, str) else compact(busilist)
    params = {"appid": appid, busicode_name: busicode, "action": action, "busilist": text, "random": random}
    return {**params, "sign": spec_sign(params, secret, algorithm)}


def send(node: Node, params: Mapping[str, Any], content_type: str = JSON) -> dict[str, Any]:
    payload = urlencode(params).encode() if content_type.lower().startswith(FORM) else orjson.dumps(params)
    return call(node, payload, content_type)


def assert_signed_by(answer: dict[str, Any], secret: str, algorithm: SignAlgorithm) -> None:
    """The answer's sign, checked by our own spec signer and by the package's verifier."""
    params = response_signed_params(answer)
    assert answer["sign"] == spec_sign(params, secret, algorithm)
    assert verify(params, secret, algorithm, answer["sign"])


def stored(node: Node, secret: str, number: int) -> list[dict[str, Any]]:
    answer = call(node, body(APPID, secret, "140101", "04", [{"EQP_CODE": key(number)}]))
    assert answer["datalist"]["result"] == "0001", answer
    records: list[dict[str, Any]] = answer["datalist"]["busilist"]
    return records


# -- idempotent replay ------------------------------------------------------------------------

WRITES = [
    pytest.param("01", [device(2)], id="add"),
    # Over 64 KB: its sign and fingerprint are digested beside the parsing of its busilist.
    pytest.param("01", [device(number) for number in range(2, 202)], id="add-large"),
    pytest.param("02", [{"EQP_CODE": key(1), "USE_STATUS": "3"}], id="modify"),
    pytest.param("03", [{"EQP_CODE": key(1)}], id="delete"),
]


@pytest.mark.parametrize(("action", "busilist"), WRITES)
def test_a_replayed_write_returns_the_first_answer_and_does_nothing(
    node: Node, action: str, busilist: list[dict[str, Any]]
) -> None:
    secret = grant(node)
    assert call(node, body(APPID, secret, "140101", "01", [device(1)]))["datalist"]["result"] == "0001"
    payload = orjson.dumps(envelope(secret, action, busilist))
    first = node.exchange.handle(payload, JSON, "127.0.0.1")
    assert orjson.loads(first)["datalist"]["result"] == "0001"
    # Change the same records since, so that doing the request again would answer differently.
    later = device(1, UPDATE_TIME="2026-11-28 09:38:00", EQP_NAME="后来")
    again = call(node, body(APPID, secret, "140101", "01", [later, device(2, UPDATE_TIME="2026-11-28 09:38:00")]))
    assert again["datalist"]["result"] == "0001"
    before = snapshot(node)
    logged = len(log_rows(node))

    second = node.exchange.handle(payload, JSON, "127.0.0.1")

    assert isinstance(second, bytes)
    assert second == first
    assert snapshot(node) == before
    rows = log_rows(node)[logged:]
    assert [(row["appid"], row["random"], row["result"], row["code"]) for row in rows] == [(APPID, RANDOM, "0001", "")]


@pytest.mark.parametrize(
    "resend",
    [
        pytest.param(lambda params: (urlencode(params).encode(), FORM), id="as-form"),
        pytest.param(
            lambda params: (orjson.dumps({**params, "busilist": json.loads(params["busilist"])}), JSON), id="as-array"
        ),
    ],
)
def test_a_replay_is_recognised_whatever_the_framing(node: Node, resend: Any) -> None:
    secret = grant(node)
    params = envelope(secret, "01", [device(1), device(2)])
    first = node.exchange.handle(orjson.dumps(params), JSON, "127.0.0.1")
    before = snapshot(node)
    payload, content_type = resend(params)
    assert node.exchange.handle(payload, content_type, "127.0.0.1") == first
    assert snapshot(node) == before


def test_a_replayed_query_returns_the_same_answer(node: Node) -> None:
    secret = grant(node)
    call(node, body(APPID, secret, "140101", "01", [device(1), device(2)]))
    payload = orjson.dumps(envelope(secret, "04", [{"_page_size": 1}]))
    first = node.exchange.handle(payload, JSON, "127.0.0.1")
    before = snapshot(node)
    assert node.exchange.handle(payload, JSON, "127.0.0.1") == first
    assert snapshot(node) == before


def test_a_replayed_query_returns_the_first_answer_after_a_change(node: Node) -> None:
    secret = grant(node)
    call(node, body(APPID, secret, "140101", "01", [device(1)]))
    payload = orjson.dumps(envelope(secret, "04", [{}]))
    first = node.exchange.handle(payload, JSON, "127.0.0.1")
    call(node, body(APPID, secret, "140101", "01", [device(2)]))
    assert node.exchange.handle(payload, JSON, "127.0.0.1") == first


REPLAYED = refusals.random_reused()


REPLAYS = [
    pytest.param(("01", [device(1)]), ("01", [device(2)]), id="other-records"),
    pytest.param(("01", [device(1)]), ("01", [device(1, USE_STATUS="3")]), id="one-field-differs"),
    pytest.param(("01", [device(1)]), ("04", [{}]), id="write-then-query"),
    pytest.param(("04", [{}]), ("04", [{"_region": "330106"}]), id="query-then-other-query"),
    pytest.param(("04", [{}]), ("01", [device(1)]), id="query-then-write"),
]


def test_the_same_random_for_a_different_request_is_a_replay(node: Node, subtests: pytest.Subtests) -> None:
    secret = grant(node)
    for number, case in enumerate(REPLAYS):
        first, second = case.values
        random = f"replay-case-{number:04d}"
        with subtests.test(case.id):
            assert send(node, envelope(secret, *first, random=random))["datalist"]["result"] == "0001"
            before = snapshot(node)
            answer = send(node, envelope(secret, *second, random=random))
            assert answer["datalist"] == {"result": "0000", "message": REPLAYED.message, "code": REPLAYED.code.value}
            assert snapshot(node) == before
            assert_signed_by(answer, secret, SignAlgorithm.MD5)


def test_a_random_belongs_to_its_app(node: Node) -> None:
    first, second = grant(node), grant(node, appid="hz-other")
    assert send(node, envelope(first, "01", [device(1)]))["datalist"]["result"] == "0001"
    answer = send(node, envelope(second, "01", [device(2)], appid="hz-other"))
    assert answer["datalist"]["result"] == "0001", answer


def test_a_refused_request_spends_its_random(node: Node) -> None:
    """A refusal is the first answer of its random: the corrected batch needs a new random."""
    secret = grant(node)
    refused = send(node, envelope(secret, "01", [device(1, USE_STATUS="7")]))
    assert refused["datalist"]["code"] == "E_VALIDATION"
    reused = send(node, envelope(secret, "01", [device(1)]))
    assert reused["datalist"]["message"] == refusals.random_reused().message
    accepted = send(node, envelope(secret, "01", [device(1)], random="corrected-0001"))
    assert accepted["datalist"]["result"] == "0001", accepted
    assert stored(node, secret, 1) == [device(1)]


@pytest.mark.parametrize("action", ["02", "03"])
def test_a_refused_request_replayed_after_the_data_changed_gets_its_first_answer(node: Node, action: str) -> None:
    """Captured bytes of a refused 02/03 must not act on a record added later (item 4 of the attack)."""
    secret = grant(node)
    busilist = [{"EQP_CODE": key(1)}] if action == "03" else [{"EQP_CODE": key(1), "EQP_NAME": "改名"}]
    captured = orjson.dumps(envelope(secret, action, busilist, random="captured-0001"))
    first = call(node, captured, JSON)
    assert first["datalist"]["code"] == "E_NOTFOUND"
    assert send(node, envelope(secret, "01", [device(1)], random="added-0001"))["datalist"]["result"] == "0001"
    before = snapshot(node)

    replayed = call(node, captured, JSON)

    assert replayed == first
    assert snapshot(node) == before
    assert [(row["result"], row["code"], row["message"]) for row in log_rows(node)[-1:]] == [
        ("0000", "E_NOTFOUND", "重复请求，返回首次响应 / replayed")
    ]
    assert stored(node, secret, 1) == [device(1)]


# -- the basicode alias (appendix A.1.1) --------------------------------------------------------


@pytest.mark.parametrize("content_type", [JSON, FORM])
def test_basicode_is_an_alias_of_busicode(node: Node, content_type: str) -> None:
    secret = grant(node)
    params = envelope(secret, "01", [device(1)], busicode_name="basicode")
    assert "busicode" not in params

    answer = send(node, params, content_type)

    assert answer["datalist"]["result"] == "0001", answer
    assert answer["busicode"] == "140101"
    assert_signed_by(answer, secret, SignAlgorithm.MD5)
    assert stored(node, secret, 1) == [device(1)]
    query = send(node, envelope(secret, "04", [{}], busicode_name="basicode", random="query-0001"), content_type)
    assert [record["EQP_CODE"] for record in query["datalist"]["busilist"]] == [key(1)]


def test_basicode_is_signed_under_its_own_name(node: Node) -> None:
    secret = grant(node)
    params = envelope(secret, "01", [device(1)])  # signed as busicode ...
    params["basicode"] = params.pop("busicode")  # ... sent as basicode
    answer = send(node, params)
    assert answer["datalist"]["code"] == "E_SIGN"


# -- form bodies and the two shapes of busilist ---------------------------------------------------


def test_form_encoded_requests(node: Node, subtests: pytest.Subtests) -> None:
    secret = grant(node)
    for number, content_type in enumerate(
        (FORM, f"{FORM}; charset=utf-8", "Application/X-WWW-Form-URLEncoded;charset=UTF-8")
    ):
        with subtests.test(content_type=content_type):
            address = f"{ADDRESS}{number}"
            records = [device(2 * number, USE_ADDRESS=address), device(2 * number + 1)]

            added = send(node, envelope(secret, "01", records, random=f"form-add-{number:04d}"), content_type)

            assert added["datalist"]["result"] == "0001", added
            assert added["datalist"]["counts"]["inserted"] == 2
            assert_signed_by(added, secret, SignAlgorithm.MD5)
            conditions = [{"USE_ADDRESS": address}]
            query = send(node, envelope(secret, "04", conditions, random=f"form-query-{number:04d}"), content_type)
            assert query["datalist"]["busilist"] == [records[0]]
            assert_signed_by(query, secret, SignAlgorithm.MD5)


def records(number: int) -> list[dict[str, Any]]:
    return [device(2 * number, USE_ADDRESS=ADDRESS, EQP_NAME="曳引驱动乘客电梯 “一号”"), device(2 * number + 1)]


BUSILIST_SHAPES = [
    # (busilist as sent, the busilist text the sign covers, accepted?)
    pytest.param(compact, compact, True, id="string-compact"),
    pytest.param(lambda r: json.dumps(r, indent=2), lambda r: json.dumps(r, indent=2), True, id="string-as-sent"),
    pytest.param(lambda r: r, compact, True, id="array-compact"),
    pytest.param(lambda r: r, lambda r: json.dumps(r, ensure_ascii=False), False, id="array-signed-with-spaces"),
    pytest.param(lambda r: r, lambda r: json.dumps(r, separators=(",", ":")), False, id="array-signed-ascii-escaped"),
    pytest.param(
        lambda r: r, lambda r: compact([dict(sorted(x.items())) for x in r]), False, id="array-signed-sorted-keys"
    ),
]


def test_busilist_as_array_or_string(node: Node, subtests: pytest.Subtests) -> None:
    secret = grant(node)
    for number, case in enumerate(BUSILIST_SHAPES):
        sent_as, signed_as, accepted = case.values
        batch = records(number)
        with subtests.test(case.id):
            params = {
                "appid": APPID,
                "busicode": "140101",
                "action": "01",
                "busilist": signed_as(batch),
                "random": f"shape-{number:04d}",
            }
            request = {**params, "busilist": sent_as(batch), "sign": spec_sign(params, secret, SignAlgorithm.MD5)}
            before = snapshot(node)

            # Each case from its own address: failed signs count towards a lock-out per address.
            answer = orjson.loads(node.exchange.handle(orjson.dumps(request), JSON, f"10.0.0.{number}"))

            if accepted:
                assert answer["datalist"]["result"] == "0001", answer
                assert answer["datalist"]["counts"]["inserted"] == 2
                assert stored(node, secret, 2 * number) == [batch[0]]
            else:
                assert answer["datalist"]["code"] == "E_SIGN"
                assert answer["sign"] == ""
                assert snapshot(node) == before


# -- sign algorithms and signed answers ------------------------------------------------------------


@pytest.mark.parametrize("algorithm", list(SignAlgorithm))
def test_every_sign_algorithm_end_to_end(node: Node, algorithm: SignAlgorithm) -> None:
    secret = grant(node, sign=algorithm)
    other = grant(node, appid="hz-other", sign=algorithm)

    added = send(node, envelope(secret, "01", [device(1), device(2)], algorithm=algorithm))
    assert added["datalist"]["result"] == "0001", added
    assert_signed_by(added, secret, algorithm)
    assert not verify(response_signed_params(added), other, algorithm, added["sign"])

    query = send(node, envelope(secret, "04", [{"_region": "330106"}], algorithm=algorithm, random="query-0001"))
    assert [record["EQP_CODE"] for record in query["datalist"]["busilist"]] == [key(1), key(2)]
    assert_signed_by(query, secret, algorithm)

    # A refusal after identification is signed too.
    refused = send(node, envelope(secret, "02", [{"EQP_CODE": key(3)}], algorithm=algorithm, random="modify-0001"))
    assert refused["datalist"]["code"] == "E_NOTFOUND"
    assert_signed_by(refused, secret, algorithm)

    # Another algorithm's sign is refused.
    members = list(SignAlgorithm)
    wrong = members[(members.index(algorithm) + 1) % len(members)]
    answer = send(node, envelope(secret, "04", [{}], algorithm=wrong, random="wrong-0001"))
    assert answer["datalist"]["code"] == "E_SIGN"
    assert answer["sign"] == ""


def test_an_altered_answer_no_longer_verifies(node: Node) -> None:
    secret = grant(node)
    answer = send(node, envelope(secret, "01", [device(1)]))
    assert_signed_by(answer, secret, SignAlgorithm.MD5)
    answer["datalist"]["counts"]["inserted"] = 2
    assert not verify(response_signed_params(answer), secret, SignAlgorithm.MD5, answer["sign"])


# -- secret rotation ------------------------------------------------------------------------------


def test_rotation_with_grace_accepts_both_secrets_until_the_grace_ends(node: Node, clock: FixedClock) -> None:
    old = grant(node, sign=SignAlgorithm.HMAC_SM3)
    new = node.registry.rotate_secret(APPID, timedelta(hours=1))
    assert new != old

    for number, secret in enumerate((old, new), start=1):
        params = envelope(
            secret, "01", [device(number)], algorithm=SignAlgorithm.HMAC_SM3, random=f"during-{number:04d}"
        )
        answer = send(node, params)
        assert answer["datalist"]["result"] == "0001", answer
        assert_signed_by(answer, secret, SignAlgorithm.HMAC_SM3)

    clock.advance(timedelta(minutes=59, seconds=59))
    answer = send(node, envelope(old, "04", [{}], algorithm=SignAlgorithm.HMAC_SM3, random="late-0001"))
    assert answer["datalist"]["result"] == "0001", answer

    clock.advance(timedelta(hours=1))
    before = snapshot(node)
    answer = send(node, envelope(old, "01", [device(3)], algorithm=SignAlgorithm.HMAC_SM3, random="after-0001"))
    assert answer["datalist"]["code"] == "E_SIGN"
    assert answer["sign"] == ""
    assert snapshot(node) == before
    answer = send(node, envelope(new, "01", [device(3)], algorithm=SignAlgorithm.HMAC_SM3, random="after-0002"))
    assert answer["datalist"]["result"] == "0001", answer
    assert_signed_by(answer, new, SignAlgorithm.HMAC_SM3)


def test_rotation_without_grace_retires_the_old_secret_at_once(node: Node) -> None:
    old = grant(node)
    new = node.registry.rotate_secret(APPID)
    answer = send(node, envelope(old, "01", [device(1)]))
    assert answer["datalist"]["code"] == "E_SIGN"
    assert answer["sign"] == ""
    answer = send(node, envelope(new, "01", [device(1)]))
    assert answer["datalist"]["result"] == "0001", answer
    assert_signed_by(answer, new, SignAlgorithm.MD5)


# -- the interaction log ----------------------------------------------------------------------------


LOGGED = [
    pytest.param(
        lambda secret, random: orjson.dumps(envelope(secret, "01", [device(1), device(2), device(3)], random=random)),
        (APPID, "140101", "01", 3, "0001", ""),
        id="add",
    ),
    pytest.param(
        lambda secret, random: orjson.dumps(envelope(secret, "04", [{}], busicode_name="basicode", random=random)),
        (APPID, "140101", "04", 1, "0001", ""),
        id="query",
    ),
    pytest.param(
        lambda secret, random: orjson.dumps(
            envelope(secret, "01", [device(4), device(5, USE_STATUS="0")], random=random)
        ),
        (APPID, "140101", "01", 2, "0000", "E_VALIDATION"),
        id="refused-records",
    ),
    pytest.param(
        lambda secret, random: orjson.dumps(envelope("0" * 32, "03", [{"EQP_CODE": key(1)}], random=random)),
        (APPID, "140101", "03", 0, "0000", "E_SIGN"),
        id="refused-sign",
    ),
]


def test_a_stranger_s_refusals_are_counted_not_logged(node: Node) -> None:
    """A body nobody signed leaves no row of its own: its refusals are counted per address and minute."""
    logged = len(log_rows(node))
    for _ in range(3):
        answer = orjson.loads(node.exchange.handle(b'{"appid": ', JSON, "10.20.30.40"))
        assert answer["datalist"]["code"] == "E_JSON"
    assert len(log_rows(node)) == logged
    assert tallied(node) == [("10.20.30.40", 3, "E_JSON")]


def test_every_request_leaves_one_log_row(node: Node, subtests: pytest.Subtests) -> None:
    secret = grant(node)
    for number, case in enumerate(LOGGED):
        build, expected = case.values
        random = f"logged-{number:04d}"
        with subtests.test(case.id):
            logged = len(log_rows(node))

            answer = orjson.loads(node.exchange.handle(build(secret, random), JSON, "10.20.30.40"))

            [row] = log_rows(node)[logged:]
            fields = ("appid", "busicode", "action", "record_count", "result", "code")
            assert tuple(row[name] for name in fields) == expected
            assert row["random"] == random
            assert row["client_addr"] == "10.20.30.40"
            assert row["at"] == "2026-11-28T09:30:00.000+08:00"
            assert row["message"] == answer["datalist"]["message"]
            assert isinstance(row["duration_ms"], float)
            assert 0 <= row["duration_ms"] < 60_000
