"""Fuzzing the request parser and the whole pipeline (issue 4: "a hypothesis fuzz of the request parser").

- ``parse_request`` on arbitrary bytes and on arbitrary JSON objects either returns a well-formed
  request or raises ``ExchangeError`` with ``E_JSON`` / ``E_PARAM`` — never anything else.
- ``Exchange.handle`` on arbitrary JSON objects (many of them correctly signed, so they get past
  authentication into authorisation, validation, writes and queries) always answers a JSON object
  with ``result`` 0000 or 0001, never ``E_INTERNAL``, signed exactly when the caller was identified,
  and leaves exactly one interaction-log row.

The pipeline fuzz shares one node (per backend) across all its examples, so state builds up as it
would in service: records written by one example are modified, deleted and queried by later ones.

Budget: 200 examples per test (``TZSB_FUZZ_EXAMPLES=5000`` for a long local run).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlencode

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import device, grant, tallied, unidentified
from tzsb.app import Node
from tzsb.errors import ErrorCode, ExchangeError
from tzsb.exchange.query import CONTROL_KEYS
from tzsb.protocol.messages import ExchangeRequest, parse_request, response_signed_params
from tzsb.protocol.signing import SignAlgorithm, sign, verify

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
CONTENT_TYPES = [JSON, FORM, "text/plain", "Application/X-WWW-Form-Urlencoded; charset=utf-8", ""]
ENVELOPE_NAMES = ["appid", "busicode", "basicode", "action", "busilist", "random", "sign", "timestamp"]
APPID = "hz-city"
FUZZ = settings(
    max_examples=int(os.environ.get("TZSB_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- strategies ------------------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
#: Text an attacker likes: separators of the sign string, SQL, NUL, odd Unicode, near-valid values.
nasty_text = st.sampled_from(
    [
        "",
        " ",
        "&",
        "=",
        "&key=",
        "r1&region=110101",
        "' OR 1=1 --",
        "AREA_CODE; DROP TABLE records",
        "\x00",
        "电梯\x00",
        "\u202e",
        "\ufeff",
        "１４０１０１",
        "140101",
        "0101",
        "04",
        "330106",
        "110101",
        "100000",
        "0",
        "2026-11-28",
        "2026-11-28 09:30:00",
        "a" * 300,
    ]
)
any_text = st.text(max_size=40) | nasty_text


def envelope_values(name: str) -> st.SearchStrategy[Any]:
    """Values for a top-level parameter: mostly well formed, sometimes anything at all."""
    well_formed = {
        "appid": st.sampled_from([APPID, "nobody", "HZ-CITY"]) | st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
        "busicode": st.sampled_from(["140101", "140102", "140103", "110101", "310101", "999999"]),
        "basicode": st.sampled_from(["140101", "140102"]),
        "action": st.sampled_from(["01", "02", "03", "04", "05"]),
        "busilist": st.just("[]"),
        "random": st.from_regex(r"[A-Za-z0-9_-]{8,64}", fullmatch=True),
        "sign": st.from_regex(r"[0-9A-F]{32}", fullmatch=True),
        "timestamp": st.from_regex(r"[0-9]{10}", fullmatch=True),
    }[name]
    return well_formed | any_text | json_values


json_objects = st.dictionaries(
    st.sampled_from(ENVELOPE_NAMES) | st.text(max_size=12), json_values, max_size=9
) | st.fixed_dictionaries(
    {},
    optional={name: envelope_values(name) for name in ENVELOPE_NAMES},
)


def as_form(fields: dict[str, Any]) -> bytes:
    """Form encoding of a JSON object's fields (non-strings as their JSON text)."""
    pairs = [
        (name, value if isinstance(value, str) else orjson.dumps(value).decode()) for name, value in fields.items()
    ]
    return urlencode(pairs).encode("utf-8")


# -- the parser ------------------------------------------------------------------------------------------


def check_parsed(request: ExchangeRequest) -> None:
    """What a parsed request guarantees, whatever was sent."""
    assert "sign" not in request.signed_params
    assert set(request.signed_params) <= {"appid", "busicode", "basicode", "action", "busilist", "random", "timestamp"}
    assert all(isinstance(value, str) and value for value in request.signed_params.values())
    assert request.signed_params["busilist"] == request.busilist_text
    for value in (request.appid, request.random):
        assert not set(value) & set("&="), value
    try:
        records = request.records()
    except ExchangeError as error:
        refused: ExchangeError | None = error
    else:
        refused = None
        assert isinstance(records, list) and all(isinstance(record, dict) for record in records)
    assert refused is None or refused.code is ErrorCode.PARAM, refused


def parse_outcome(body: bytes, content_type: str) -> None:
    try:
        request = parse_request(body, content_type)
    except ExchangeError as error:
        refused = error
    else:
        check_parsed(request)
        return
    assert refused.code in (ErrorCode.JSON, ErrorCode.PARAM), (refused.code, refused.message)
    assert " / " in refused.message, refused.message  # Chinese / English


@FUZZ
@given(body=st.binary(max_size=600), content_type=st.sampled_from(CONTENT_TYPES))
def test_parse_request_on_arbitrary_bytes(body: bytes, content_type: str) -> None:
    parse_outcome(body, content_type)


@FUZZ
@given(fields=json_objects, content_type=st.sampled_from(CONTENT_TYPES))
def test_parse_request_on_arbitrary_json_objects(fields: dict[str, Any], content_type: str) -> None:
    body = as_form(fields) if content_type.lower().startswith(FORM) else orjson.dumps(fields)
    parse_outcome(body, content_type)
    try:
        request = parse_request(body, content_type)
    except ExchangeError:
        return
    # Signed exactly as received: every parameter but sign, nothing added, an array busilist as compact JSON.
    received = {
        name: value if isinstance(value, str) else orjson.dumps(value).decode() for name, value in fields.items()
    }
    received.pop("sign")
    assert request.signed_params == received


@FUZZ
@given(fields=json_objects, position=st.integers(min_value=0), byte=st.integers(min_value=0, max_value=255))
def test_parse_request_on_damaged_json(fields: dict[str, Any], position: int, byte: int) -> None:
    body = bytearray(orjson.dumps(fields))
    body[position % len(body)] = byte
    parse_outcome(bytes(body), JSON)


# -- the whole pipeline ----------------------------------------------------------------------------------

FIELDS_0101 = list(device(0))
plausible = st.sampled_from(
    [
        device(1)["EQP_CODE"],
        device(2)["EQP_CODE"],
        "330106",
        "330100",
        "330000",
        "110101",
        "2",
        "3",
        "0",
        "2026-11-01",
        "2026-11-01 10:00:00",
        "2026-11-30 10:00:00",
        "杭州市西湖区文三路2号",
    ]
)
values = plausible | any_text | json_values
#: Records for 01-03: a valid device with a few fields changed (often to nonsense), or a bag of fields.
records = st.builds(
    lambda number, changes: {**device(number), **changes},
    st.integers(min_value=0, max_value=5),
    st.dictionaries(st.sampled_from([*FIELDS_0101, "UNKNOWN_FIELD"]), values, max_size=3),
) | st.dictionaries(st.sampled_from(FIELDS_0101) | st.text(max_size=10), values, max_size=4)
#: Conditions for 04: catalog fields, control keys and junk, with plausible or hostile values.
conditions = st.dictionaries(
    st.sampled_from([*FIELDS_0101, *sorted(CONTROL_KEYS), "_bogus", "EQP_CODE' OR 1=1 --"]) | st.text(max_size=10),
    values | st.integers(min_value=-5, max_value=2000) | st.booleans(),
    max_size=4,
)
busilists = {
    "01": st.lists(records, min_size=1, max_size=3),
    "02": st.lists(
        records.map(lambda r: {k: v for k, v in r.items() if k in ("EQP_CODE", "USE_STATUS", "AREA_CODE")}),
        min_size=1,
        max_size=2,
    ),
    "03": st.lists(st.fixed_dictionaries({"EQP_CODE": plausible | any_text}), min_size=1, max_size=2),
    "04": st.lists(conditions, min_size=1, max_size=1),
}


def often(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``common`` four times in five (Hypothesis favours small integers, so ``rare`` takes the largest)."""
    return st.integers(min_value=0, max_value=4).flatmap(lambda n: rare if n == 4 else common)


@st.composite
def pipeline_requests(draw: st.DrawFn, secret: str, now: int) -> tuple[bytes, str]:
    """A request, correctly signed for ``hz-city`` more often than not, then perhaps damaged."""
    action = draw(st.sampled_from(["01", "02", "03", "04"]))
    params: dict[str, Any] = {
        "appid": draw(often(st.just(APPID), st.sampled_from(["nobody", "HZ-CITY"]))),
        "busicode": draw(often(st.sampled_from(["140101", "140101", "140101", "310101"]), envelope_values("busicode"))),
        "action": action,
        "random": draw(often(st.uuids().map(str), st.sampled_from(["reused-random-1", "reused-random-2"]))),
    }
    busilist = draw(often(busilists[action], st.lists(json_values, max_size=2)))
    params["busilist"] = orjson.dumps(busilist).decode()
    if draw(st.integers(min_value=0, max_value=3)) == 0:
        params["timestamp"] = f"{draw(st.sampled_from([now, now, now - 299, now + 301, 0])):010d}"
    params["sign"] = sign(params, secret, SignAlgorithm.MD5)
    if draw(st.booleans()):
        params["busilist"] = busilist  # sent as an array: signed as its compact text
    damage = draw(often(st.just("none"), st.sampled_from(["add", "replace", "resign-wrong", "drop"])))
    if damage == "drop":
        params.pop(draw(st.sampled_from(sorted(params))))
    elif damage == "add":
        params[draw(st.sampled_from(ENVELOPE_NAMES) | st.text(max_size=8))] = draw(any_text | json_values)
    elif damage == "replace":
        params[draw(st.sampled_from(sorted(params)))] = draw(any_text | json_values)
    elif damage == "resign-wrong":
        params["sign"] = "0" * 32
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        return as_form(params), FORM
    return orjson.dumps(params), JSON


def _counted(node: Node) -> int:
    return sum(count for _, count, _ in tallied(node))


def test_pipeline_on_arbitrary_requests(node: Node) -> None:
    # The fixed clock never leaves its minute: no limit on one address's unidentified refusals here.
    node.exchange.answers.tally.per_minute = 10**9
    secret = grant(node, busicodes=frozenset({"140101", "140102", "140103", "110101", "310101"}))
    anonymous = ("E_JSON", "E_PARAM", "E_APPID", "E_SIGN", "E_LOCKED")

    @FUZZ
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        body, content_type = data.draw(pipeline_requests(secret, int(node.clock.now().timestamp())))
        logged, counted = node.exchange.answers.log.count(), _counted(node)
        raw = node.exchange.handle(body, content_type, "127.0.0.1")
        answer = orjson.loads(raw)
        assert isinstance(answer, dict), raw
        datalist = answer["datalist"]
        assert datalist["result"] in ("0000", "0001"), answer
        assert datalist.get("code") != "E_INTERNAL", (body, answer)
        assert (datalist["result"] == "0000") == ("code" in datalist), answer
        if answer["sign"]:
            assert verify(response_signed_params(answer), secret, SignAlgorithm.MD5, answer["sign"]), answer
        else:
            assert datalist.get("code") in anonymous, answer
        if unidentified(answer):
            assert (node.exchange.answers.log.count(), _counted(node)) == (logged, counted + 1)
        else:
            assert node.exchange.answers.log.count() == logged + 1
        node.exchange.admission.lockouts.clear(APPID)  # failed signs must not lock the fuzzer out of the deeper paths

    run()
