"""Signature hardening (issue 4): two different requests never share a sign string.

The spec's sign string ``name=value&...&key=<secret>`` is ambiguous on its own: with key SECRET a
request whose ``random`` is ``r1&region=110101`` signs the same as one with ``random=r1`` and a
``region`` parameter. The node closes that by strict envelope formats, refusing unknown
parameters and signing only what it received. The property below checks it on requests whose
envelope values satisfy those formats and whose ``busilist`` is anything at all — including pairs
built on purpose to share a sign string: the canonical text of one request re-split at other
``&`` into another request. Any such pair the parser accepts must be the same request.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import call, grant, log_rows, snapshot, tallied
from tzsb.app import Node
from tzsb.errors import ErrorCode, ExchangeError
from tzsb.protocol.messages import ExchangeRequest, parse_request
from tzsb.protocol.signing import SignAlgorithm, canonical_params, sign, sign_string

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
WORD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
DIGITS = "0123456789"

#: Pieces of the sign string's own syntax, to be smuggled into values.
fragments = st.sampled_from(["&", "=", "&key=", "&random=", "&timestamp=", "busilist=", "&region=110101", "r1", "\\"])
tricky_text = st.lists(fragments | st.text(max_size=6), max_size=6).map("".join)
busilists = (
    tricky_text.filter(bool)
    | st.text(min_size=1, max_size=40)
    | st.lists(st.dictionaries(tricky_text, tricky_text, max_size=3), max_size=3)
)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """A request body whose envelope values satisfy the parser's formats; busilist is anything."""
    body: dict[str, Any] = {
        "appid": draw(st.text(WORD, min_size=1, max_size=64)),
        "basicode" if draw(st.booleans()) else "busicode": draw(st.text(DIGITS, min_size=6, max_size=6)),
        "action": draw(st.text(DIGITS, min_size=2, max_size=2)),
        "busilist": draw(busilists),
        "random": draw(st.text(WORD, min_size=8, max_size=64)),
        "sign": "0A",
    }
    if draw(st.booleans()):
        body["timestamp"] = draw(st.text(DIGITS, min_size=10, max_size=10))
    return body


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


@st.composite
def resplit(draw: st.DrawFn, body: dict[str, Any]) -> dict[str, Any]:
    """Another request with, under the naive rule, the same sign string as ``body``: its ``name=value``
    text cut into parameters at other ``&`` boundaries (mostly the real ones, plus some inside values)."""
    params = {name: as_text(value) for name, value in body.items() if name != "sign"}
    tokens: list[tuple[str, bool]] = []  # (text between two "&", whether a real parameter starts there)
    for name in sorted(params):
        if params[name]:
            first, *inner = f"{name}={params[name]}".split("&")
            tokens += [(first, True), *((token, False) for token in inner)]
    groups = [tokens[0][0]]
    for token, real in tokens[1:]:
        name = token.partition("=")[0]
        fresh = "=" in token and all(not group.startswith(name + "=") for group in groups)
        if fresh and (draw(st.integers(min_value=0, max_value=9)) > 0 if real else draw(st.booleans())):
            groups.append(token)  # a new parameter starts here
        else:
            groups[-1] += "&" + token  # the text stays in the value before
    other: dict[str, Any] = {"sign": "0A"}
    for group in groups:
        name, _, value = group.partition("=")
        other[name] = value
    return other


def parsed(body: dict[str, Any], form: bool) -> ExchangeRequest | None:
    """The request the node reads from ``body`` (sent as JSON or as a form), or None if refused."""
    if form:
        payload, content_type = urlencode({name: as_text(value) for name, value in body.items()}).encode(), FORM
    else:
        payload, content_type = orjson.dumps(body), JSON
    try:
        return parse_request(payload, content_type)
    except ExchangeError as error:
        refused = error
    assert refused.code in (ErrorCode.JSON, ErrorCode.PARAM), refused.message
    return None


@settings(max_examples=300, deadline=None)
@given(first=requests(), data=st.data(), form=st.booleans())
def test_two_different_requests_never_share_a_sign_string(first: dict[str, Any], data: Any, form: bool) -> None:
    second = data.draw(requests() | resplit(first), label="second")
    one, other = parsed(first, form), parsed(second, form)
    assert one is not None, first  # well-formed envelopes are accepted
    # The sign string holds exactly what was received (an array busilist as compact JSON).
    assert one.signed_params == {name: as_text(value) for name, value in first.items() if name != "sign"}
    if other is not None and other.signed_params != one.signed_params:
        assert canonical_params(other.signed_params) != canonical_params(one.signed_params)
        assert sign_string(other.signed_params, "SECRET") != sign_string(one.signed_params, "SECRET")


@settings(max_examples=300, deadline=None)
@given(first=requests(), data=st.data())
def test_a_resplit_request_is_refused_or_the_same(first: dict[str, Any], data: Any) -> None:
    """The attack itself: the same naive sign string cut differently is never a different, accepted request."""
    second = data.draw(resplit(first), label="resplit")
    one, other = parsed(first, False), parsed(second, False)
    assert one is not None
    assert other is None or other.signed_params == one.signed_params, second


# -- the classic ambiguity, spelled out ----------------------------------------------------------------------

HONEST = {"appid": "hz-city", "busicode": "140101", "action": "04", "busilist": "[{}]", "random": "r1000000"}
SMUGGLED = {**HONEST, "random": "r1000000&region=110101"}
WITH_REGION = {**HONEST, "region": "110101"}
MALFORMED_RANDOM = (
    "参数 random 格式不正确，应为8–64 位字母、数字、下划线或连字符，建议使用 UUID / "
    "Parameter 'random' is malformed; expected 8-64 characters of A-Z a-z 0-9 _ -; a UUID is recommended"
)
UNKNOWN_REGION = (
    "未知参数 region；只允许 appid、busicode、action、busilist、random、sign 及可选的 timestamp / "
    "Unknown parameter(s) region; only appid, busicode, action, busilist, random, sign and the optional "
    "timestamp are allowed"
)


def test_the_naive_sign_strings_coincide() -> None:
    """Why the formats matter: without them these two requests would carry the same sign."""
    assert sign_string(SMUGGLED, "SECRET") == sign_string(WITH_REGION, "SECRET")
    assert sign_string(SMUGGLED, "SECRET") == (
        "action=04&appid=hz-city&busicode=140101&busilist=[{}]&random=r1000000&region=110101&key=SECRET"
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [(SMUGGLED, MALFORMED_RANDOM), (WITH_REGION, UNKNOWN_REGION)],
    ids=["random-with-ampersand", "extra-region-parameter"],
)
@pytest.mark.parametrize("content_type", [JSON, FORM], ids=["json", "form"])
def test_both_sides_of_the_ambiguity_are_refused(params: dict[str, str], message: str, content_type: str) -> None:
    body = {**params, "sign": sign(params, "SECRET", SignAlgorithm.MD5)}
    payload = orjson.dumps(body) if content_type == JSON else urlencode(body).encode()
    with pytest.raises(ExchangeError) as raised:
        parse_request(payload, content_type)
    assert raised.value.code is ErrorCode.PARAM
    assert raised.value.message == message


@pytest.mark.parametrize(
    ("change", "message"),
    [({"random": "r1000000&region=110101"}, MALFORMED_RANDOM), ({"region": "110101"}, UNKNOWN_REGION)],
    ids=["random-with-ampersand", "extra-region-parameter"],
)
def test_the_node_refuses_both_and_writes_nothing(node: Node, change: dict[str, str], message: str) -> None:
    """Through the pipeline, signed with the app's real secret: a clear, unsigned E_PARAM and nothing written."""
    secret = grant(node)
    params = {**HONEST, **change}
    before, logged = snapshot(node), len(log_rows(node))

    answer = call(node, orjson.dumps({**params, "sign": sign(params, secret, SignAlgorithm.MD5)}))

    assert answer["datalist"] == {"result": "0000", "message": message, "code": "E_PARAM"}
    assert answer["sign"] == ""
    assert snapshot(node) == before
    # Nobody proved who sent it: counted for its address, not logged.
    assert log_rows(node)[logged:] == []
    assert tallied(node) == [("127.0.0.1", 1, "E_PARAM")]
