"""Request parsing and response encoding (spec 6.4, tables 5 and 8, appendix A)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final
from urllib.parse import urlencode

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.protocol.test_signing import WORKED_EXAMPLES, WORKED_PARAMS, WORKED_SECRET
from tests.support import JSON_VALUES
from tzsb.errors import ErrorCode, ExchangeError, FieldFault, RecordFault
from tzsb.protocol.messages import (
    ExchangeRequest,
    _outside_busilist,
    encode_response,
    failure_datalist,
    parse_body,
    parse_request,
    response_signed_params,
    success_datalist,
)
from tzsb.protocol.signing import SignAlgorithm, sign, verify

JSON: Final = "application/json"
FORM: Final = "application/x-www-form-urlencoded"

BUSILIST_TEXT: Final = '[{"EQP_CODE":"31103301052014080025"}]'
VALID: Final[dict[str, Any]] = {
    "appid": "hz-city",
    "busicode": "140101",
    "action": "04",
    "busilist": BUSILIST_TEXT,
    "random": "b7a8c6e2-5d4f-4c1a-9e3b-2f6d8a0c1e47",
    "sign": "35D3BC19BF65F89C691B77BC5A96C598",
}
SIGNED: Final = {name: value for name, value in VALID.items() if name != "sign"}

JSON_ERROR: Final = (
    "请求体不是 UTF-8 编码的 JSON 对象，请按 application/json; charset=utf-8 发送 / "
    "The body is not a UTF-8 JSON object; send application/json; charset=utf-8"
)


Encoder = Callable[[dict[str, Any]], bytes]


def as_json(fields: dict[str, Any]) -> bytes:
    return orjson.dumps(fields)


def as_form(fields: dict[str, Any]) -> bytes:
    return urlencode(fields).encode("ascii")


def refused(body: bytes, content_type: str = JSON) -> ExchangeError:
    with pytest.raises(ExchangeError) as caught:
        parse_request(body, content_type)
    return caught.value


# ------------------------------------------------------------------ well-formed requests


@pytest.mark.parametrize(
    ("encode", "content_type"),
    [
        (as_json, JSON),
        (as_json, "application/json; charset=utf-8"),
        (as_json, ""),
        (as_form, FORM),
        (as_form, "application/x-www-form-urlencoded; charset=UTF-8"),
        (as_form, "Application/X-WWW-Form-URLEncoded"),
    ],
)
def test_parse_request_json_and_form(encode: Encoder, content_type: str) -> None:
    request = parse_request(encode(VALID), content_type)
    assert request == ExchangeRequest(
        appid="hz-city",
        busicode="140101",
        action="04",
        busilist_text=BUSILIST_TEXT,
        random=VALID["random"],
        sign=VALID["sign"],
        signed_params=SIGNED,
        busilist_value=None,
    )
    assert request.records() == [{"EQP_CODE": "31103301052014080025"}]
    assert verify(request.signed_params, WORKED_SECRET, SignAlgorithm.MD5, request.sign)


def test_form_values_are_percent_decoded() -> None:
    busilist = '[{"USE_ADDRESS":"杭州市 西湖区&文三路=1号+"}]'
    request = parse_request(as_form({**VALID, "busilist": busilist}), FORM)
    assert request.busilist_text == busilist
    assert request.records() == [{"USE_ADDRESS": "杭州市 西湖区&文三路=1号+"}]


def test_busilist_string_is_kept_verbatim() -> None:
    spaced = '[ {"EQP_CODE" : "31103301052014080025"} ]\n'
    request = parse_request(as_json({**VALID, "busilist": spaced}), JSON)
    assert request.busilist_text == spaced
    assert request.signed_params["busilist"] == spaced
    assert request.busilist_value is None


def test_busilist_array_becomes_compact_text() -> None:
    records = [{"USE_UNIT_NAME": "杭州某某物业", "EQP_CODE": "31103301052014080025", "N": 1}, {"Z": None, "A": [1.5]}]
    body = b'{"appid":"hz-city","busicode":"140101","action":"01","random":"abcdefgh","sign":"AB","busilist": [\n'
    body += '  {"USE_UNIT_NAME": "杭州某某物业", "EQP_CODE": "31103301052014080025", "N": 1},\n'.encode()
    body += b'  {"Z": null, "A": [1.5]}\n]}'
    request = parse_request(body, JSON)
    # Compact, non-ASCII unescaped, key order as received.
    expected = '[{"USE_UNIT_NAME":"杭州某某物业","EQP_CODE":"31103301052014080025","N":1},{"Z":null,"A":[1.5]}]'
    assert request.busilist_text == expected
    assert request.signed_params["busilist"] == expected
    assert request.busilist_value == records
    assert request.records() == records


def test_busilist_array_signed_as_compact_text_verifies() -> None:
    records = [{"EQP_CODE": "31103301052014080025", "USE_UNIT_NAME": "杭州"}]
    params = {**SIGNED, "busilist": orjson.dumps(records).decode()}
    signature = sign(params, WORKED_SECRET, SignAlgorithm.SM3)
    request = parse_request(as_json({**params, "busilist": records, "sign": signature}), JSON)
    assert verify(request.signed_params, WORKED_SECRET, SignAlgorithm.SM3, request.sign)


def test_empty_busilist_array_is_accepted() -> None:
    request = parse_request(as_json({**VALID, "busilist": []}), JSON)
    assert request.busilist_text == "[]"
    assert request.records() == []


@pytest.mark.parametrize(("encode", "content_type"), [(as_json, JSON), (as_form, FORM)])
def test_basicode_alias_is_accepted_and_kept(encode: Encoder, content_type: str) -> None:
    fields = {("basicode" if name == "busicode" else name): value for name, value in VALID.items()}
    request = parse_request(encode(fields), content_type)
    assert request.busicode == "140101"
    assert request.signed_params == {
        "appid": "hz-city",
        "basicode": "140101",
        "action": "04",
        "busilist": BUSILIST_TEXT,
        "random": VALID["random"],
    }
    assert "busicode" not in request.signed_params


def test_basicode_alias_is_signed_under_its_own_name() -> None:
    params = {("basicode" if name == "busicode" else name): value for name, value in SIGNED.items()}
    signature = sign(params, WORKED_SECRET, SignAlgorithm.MD5)
    request = parse_request(as_json({**params, "sign": signature}), JSON)
    assert verify(request.signed_params, WORKED_SECRET, SignAlgorithm.MD5, request.sign)
    # The worked example (signed with busicode) does not verify under the alias: names are signed.
    assert signature != VALID["sign"]


def test_sm4_signed_request_is_accepted() -> None:
    algorithm, _, sm4_sign = WORKED_EXAMPLES[1]
    assert algorithm is SignAlgorithm.SM4
    request = parse_request(as_json({**WORKED_PARAMS, "sign": sm4_sign}), JSON)
    assert verify(request.signed_params, WORKED_SECRET, algorithm, request.sign)


# ------------------------------------------------------------------ refused envelopes (E_PARAM)


def test_busicode_and_basicode_together() -> None:
    error = refused(as_json({**VALID, "basicode": "140101"}))
    assert error.code is ErrorCode.PARAM
    assert error.message == "busicode 与 basicode 只能发送其一 / Send either busicode or its alias basicode, not both"


def missing(name: str) -> str:
    return (
        f"缺少必填参数 {name}（表 5），请补充后重新签名发送 / "
        f"Missing required parameter '{name}' (table 5); add it, sign again and resend"
    )


@pytest.mark.parametrize("name", ["appid", "busicode", "action", "busilist", "random", "sign"])
@pytest.mark.parametrize("how", ["absent", "null", "empty"])
def test_missing_parameter(name: str, how: str) -> None:
    fields = {key: value for key, value in VALID.items() if key != name}
    if how != "absent":
        fields[name] = None if how == "null" else ""
    error = refused(as_json(fields))
    assert error.code is ErrorCode.PARAM
    assert error.message == missing(name)


@pytest.mark.parametrize("name", ["appid", "busicode", "action", "busilist", "random", "sign"])
def test_missing_parameter_in_form(name: str) -> None:
    error = refused(as_form({key: value for key, value in VALID.items() if key != name}), FORM)
    assert (error.code, error.message) == (ErrorCode.PARAM, missing(name))


def test_missing_basicode_names_the_alias() -> None:
    fields = {("basicode" if name == "busicode" else name): value for name, value in VALID.items()}
    fields["basicode"] = ""
    assert refused(as_json(fields)).message == missing("basicode")


def test_empty_form_body_is_missing_appid() -> None:
    assert refused(b"", FORM).message == missing("appid")


@pytest.mark.parametrize(
    ("extra", "listed"),
    [
        ({"extra": "1"}, "extra"),
        ({"Timestamp": "1790000000", "Appid": "hz-city"}, "Appid, Timestamp"),
        ({"datalist": {}}, "datalist"),
        ({"BUSICODE": "140101"}, "BUSICODE"),
    ],
)
def test_unknown_parameter(extra: dict[str, Any], listed: str) -> None:
    error = refused(as_json({**VALID, **extra}))
    assert error.code is ErrorCode.PARAM
    assert error.message == (
        f"未知参数 {listed}；只允许 appid、busicode、action、busilist、random、sign 及可选的 timestamp / "
        f"Unknown parameter(s) {listed}; only appid, busicode, action, busilist, random, sign and the optional "
        "timestamp are allowed"
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("appid", 123),
        ("appid", True),
        ("appid", ["hz-city"]),
        ("busicode", 140101),
        ("action", 4),
        ("random", {"uuid": "x"}),
        ("sign", 0),
        ("busicode", 1.5),
    ],
)
def test_non_string_value(name: str, value: Any) -> None:
    error = refused(as_json({**VALID, name: value}))
    assert error.code is ErrorCode.PARAM
    assert error.message == f"参数 {name} 必须是字符串 / Parameter '{name}' must be a string"


@pytest.mark.parametrize("value", [{"EQP_CODE": "x"}, 1, True, 2.5])
def test_busilist_neither_string_nor_array(value: Any) -> None:
    error = refused(as_json({**VALID, "busilist": value}))
    assert error.code is ErrorCode.PARAM
    assert (
        error.message
        == "参数 busilist 必须是字符串或 JSON 数组 / Parameter 'busilist' must be a string or a JSON array"
    )


MALFORMED: Final = {
    "appid": ("1–64 位字母、数字、下划线或连字符", "1-64 characters of A-Z a-z 0-9 _ -"),
    "busicode": ("6 位数字（用途 2 位 + 业务 4 位）", "6 digits (purpose 2 + business 4)"),
    "action": ("2 位数字 01/02/03/04", "2 digits: 01, 02, 03 or 04"),
    "random": (
        "8–64 位字母、数字、下划线或连字符，建议使用 UUID",
        "8-64 characters of A-Z a-z 0-9 _ -; a UUID is recommended",
    ),
    "sign": ("十六进制大写字符串", "upper-case hex"),
}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("appid", "hz city"),
        ("appid", "hz.city"),
        ("appid", "杭州"),
        ("appid", "a" * 65),
        ("appid", "hz-city\n"),
        ("busicode", "14010"),
        ("busicode", "1401011"),
        ("busicode", "14O101"),
        ("busicode", "１４０１０１"),
        ("busicode", " 140101"),
        ("action", "4"),
        ("action", "004"),
        ("action", "０４"),
        ("random", "abc1234"),
        ("random", "r" * 65),
        ("random", "b7a8c6e2 5d4f"),
        ("random", "{b7a8c6e2-5d4f}"),
        ("sign", "XYZ"),
        ("sign", "35D3BC19 BF65"),
    ],
)
def test_malformed_value(name: str, value: str) -> None:
    error = refused(as_json({**VALID, name: value}))
    zh, en = MALFORMED[name]
    assert error.code is ErrorCode.PARAM
    assert error.message == f"参数 {name} 格式不正确，应为{zh} / Parameter '{name}' is malformed; expected {en}"


@pytest.mark.parametrize(
    ("name", "value"),
    [("appid", "a"), ("appid", "A_b-9" * 12 + "abcd"), ("random", "abcdefgh"), ("random", "r" * 64), ("sign", "ab")],
)
def test_format_bounds_accepted(name: str, value: str) -> None:
    assert getattr(parse_request(as_json({**VALID, name: value}), JSON), name) == value


def test_malformed_basicode_names_the_alias() -> None:
    fields = {("basicode" if name == "busicode" else name): value for name, value in VALID.items()}
    fields["basicode"] = "1401"
    error = refused(as_json(fields))
    assert error.message == (
        "参数 basicode 格式不正确，应为6 位数字（用途 2 位 + 业务 4 位） / "
        "Parameter 'basicode' is malformed; expected 6 digits (purpose 2 + business 4)"
    )


@pytest.mark.parametrize(
    ("body", "name"),
    [
        (b"appid=hz-city&appid=hz-city&busicode=140101", "appid"),
        (as_form(VALID) + b"&sign=AB", "sign"),
        (as_form(VALID) + b"&busilist=%5B%5D", "busilist"),
        (as_form(VALID) + b"&sign=", "sign"),
    ],
)
def test_duplicate_form_field(body: bytes, name: str) -> None:
    error = refused(body, FORM)
    assert error.code is ErrorCode.PARAM
    assert error.message == (
        f"参数 {name} 重复出现，每个参数只能发送一次 / "
        f"Parameter '{name}' appears more than once; send each parameter once"
    )


# ------------------------------------------------------------------ undecodable bodies (E_JSON)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", JSON),
        (b"not json", JSON),
        (b"{'appid': 'hz-city'}", JSON),
        (b'{"appid": "hz-city"', JSON),
        (b'{"appid": "\xff"}', JSON),
        ('{"appid": "杭州"}'.encode("gbk"), JSON),
        ('{"appid": "hz"}'.encode("utf-16"), JSON),
        (b"\xef\xbb\xbf" + as_json(VALID), JSON),
        (b"[]", JSON),
        (orjson.dumps([VALID]), JSON),
        (b'"appid"', JSON),
        (b"null", JSON),
        (b"42", JSON),
        (b"appid=%FF", FORM),
        (b"\xff=1", FORM),
        ("appid=杭州".encode("gbk"), FORM),
    ],
)
def test_undecodable_body(body: bytes, content_type: str) -> None:
    error = refused(body, content_type)
    assert error.code is ErrorCode.JSON
    assert error.message == JSON_ERROR


# ------------------------------------------------------------------ ExchangeRequest.records()


BUSILIST_NOT_JSON: Final = (
    "busilist 不是合法的 JSON，请发送 JSON 数组（可作为字符串） / "
    "busilist is not valid JSON; send a JSON array (optionally as a string)"
)


def request_with_busilist(busilist: Any) -> ExchangeRequest:
    return parse_request(as_json({**VALID, "busilist": busilist}), JSON)


@pytest.mark.parametrize(
    ("busilist", "message"),
    [
        ("not json", BUSILIST_NOT_JSON),
        ("[{]", BUSILIST_NOT_JSON),
        (" ", BUSILIST_NOT_JSON),
        ('{"EQP_CODE": "x"}', "busilist 必须是 JSON 数组 / busilist must be a JSON array of objects"),
        ('"[]"', "busilist 必须是 JSON 数组 / busilist must be a JSON array of objects"),
        ("null", "busilist 必须是 JSON 数组 / busilist must be a JSON array of objects"),
        ("[1]", "busilist 第 0 项不是 JSON 对象 / busilist item 0 is not a JSON object"),
        ('[{}, {}, "x"]', "busilist 第 2 项不是 JSON 对象 / busilist item 2 is not a JSON object"),
        ("[{}, [], {}]", "busilist 第 1 项不是 JSON 对象 / busilist item 1 is not a JSON object"),
        ([{}, None], "busilist 第 1 项不是 JSON 对象 / busilist item 1 is not a JSON object"),
        ([["EQP_CODE", "x"]], "busilist 第 0 项不是 JSON 对象 / busilist item 0 is not a JSON object"),
    ],
)
def test_records_errors(busilist: Any, message: str) -> None:
    request = request_with_busilist(busilist)
    with pytest.raises(ExchangeError) as caught:
        request.records()
    assert caught.value.code is ErrorCode.PARAM
    assert caught.value.message == message


def test_records_of_string_busilist() -> None:
    request = request_with_busilist('[{"A": "杭州", "B": 1}, {}]')
    assert request.records() == [{"A": "杭州", "B": 1}, {}]


# ------------------------------------------------------------------ responses


DATALISTS: Final = [
    success_datalist("查询成功", [{"EQP_CODE": "31103301052014080025", "USE_UNIT_NAME": "杭州某某物业", "N": 1.5}]),
    success_datalist("新增成功", [], total=0, cursor=None),
    failure_datalist(ExchangeError(ErrorCode.SIGN, "签名校验失败", "Signature mismatch")),
]


@pytest.mark.parametrize("algorithm", list(SignAlgorithm))
@pytest.mark.parametrize("datalist", DATALISTS)
def test_encode_response_sign_verifies(algorithm: SignAlgorithm, datalist: dict[str, Any]) -> None:
    body = encode_response("hz-city", "140101", "b7a8c6e2-5d4f", datalist, WORKED_SECRET, algorithm)
    response = orjson.loads(body)
    assert list(response) == ["appid", "busicode", "datalist", "random", "sign"]
    assert response["datalist"] == datalist  # an object, not a string
    assert (response["appid"], response["busicode"], response["random"]) == ("hz-city", "140101", "b7a8c6e2-5d4f")
    params = response_signed_params(response)
    assert params["datalist"] == orjson.dumps(datalist).decode()
    assert verify(params, WORKED_SECRET, algorithm, response["sign"])
    assert response["sign"] == sign(params, WORKED_SECRET, algorithm)
    # Any change to the answer breaks it.
    tampered = {
        **response,
        "datalist": {**response["datalist"], "result": "0000" if datalist["result"] != "0000" else "0001"},
    }
    assert not verify(response_signed_params(tampered), WORKED_SECRET, algorithm, response["sign"])
    assert not verify({**params, "random": "other-random"}, WORKED_SECRET, algorithm, response["sign"])


def test_encode_response_keeps_non_ascii_unescaped() -> None:
    body = encode_response(
        "hz-city", "140101", "abcdefgh", success_datalist("成功", []), WORKED_SECRET, SignAlgorithm.MD5
    )
    assert "成功".encode() in body
    assert b"\\u" not in body


def test_encode_response_signs_the_worked_text() -> None:
    datalist = success_datalist("ok", [])
    body = encode_response("hz-city", "140101", "abcdefgh", datalist, WORKED_SECRET, SignAlgorithm.MD5)
    expected = sign(
        {
            "appid": "hz-city",
            "busicode": "140101",
            "datalist": '{"result":"0001","message":"ok","busilist":[]}',
            "random": "abcdefgh",
        },
        WORKED_SECRET,
        SignAlgorithm.MD5,
    )
    assert orjson.loads(body)["sign"] == expected


def test_encode_response_unsigned_without_secret() -> None:
    datalist = failure_datalist(ExchangeError(ErrorCode.APPID, "未知应用", "Unknown app"))
    body = encode_response("nobody", "140101", "abcdefgh", datalist, None, SignAlgorithm.MD5)
    response = orjson.loads(body)
    assert response["sign"] == ""
    assert response["datalist"] == datalist


def test_failure_datalist_shape() -> None:
    assert failure_datalist(ExchangeError(ErrorCode.PARAM, "参数错误", "Bad parameter")) == {
        "result": "0000",
        "message": "参数错误 / Bad parameter",
        "code": "E_PARAM",
    }
    faults = [RecordFault(0, "K", errors=(FieldFault("F", "required", "m"),))]
    assert failure_datalist(ExchangeError(ErrorCode.VALIDATION, "校验失败", "Invalid", faults)) == {
        "result": "0000",
        "message": "校验失败 / Invalid",
        "code": "E_VALIDATION",
        "busilist": [{"index": 0, "key": "K", "errors": [{"field": "F", "rule": "required", "message": "m"}]}],
    }


def test_success_datalist_shape() -> None:
    assert success_datalist("成功", [{"A": "1"}], total=1) == {
        "result": "0001",
        "message": "成功",
        "busilist": [{"A": "1"}],
        "total": 1,
    }


# ------------------------------------------------------------------ robustness (hypothesis)

FUZZ_SETTINGS: Final = settings(max_examples=300, deadline=None)
CONTENT_TYPES: Final = st.sampled_from([JSON, FORM, "text/plain", ""])
NAMES: Final = st.sampled_from(["appid", "busicode", "basicode", "action", "busilist", "random", "sign", "x"])
ENVELOPE_VALUES: Final = st.one_of(
    st.sampled_from(list(VALID.values())),
    st.text(alphabet="0123456789abcdefABCDEF-_ ", max_size=12),
    JSON_VALUES,
)


def parses_or_refuses(body: bytes, content_type: str) -> None:
    """Parsing either succeeds or raises ExchangeError (E_JSON/E_PARAM); nothing else escapes."""
    codes: list[ErrorCode] = []
    try:
        request = parse_request(body, content_type)
    except ExchangeError as error:
        codes.append(error.code)
    else:
        try:
            request.records()
        except ExchangeError as error:
            codes.append(error.code)
    assert set(codes) <= {ErrorCode.JSON, ErrorCode.PARAM}


@FUZZ_SETTINGS
@given(body=st.binary(max_size=200), content_type=CONTENT_TYPES)
def test_fuzz_arbitrary_bytes(body: bytes, content_type: str) -> None:
    parses_or_refuses(body, content_type)


@FUZZ_SETTINGS
@given(fields=st.dictionaries(NAMES, ENVELOPE_VALUES, max_size=8), content_type=CONTENT_TYPES)
def test_fuzz_json_objects(fields: dict[str, Any], content_type: str) -> None:
    parses_or_refuses(orjson.dumps(fields), content_type)


@FUZZ_SETTINGS
@given(pairs=st.lists(st.tuples(NAMES, st.text(max_size=20)), max_size=8))
def test_fuzz_form_bodies(pairs: list[tuple[str, str]]) -> None:
    parses_or_refuses(urlencode(pairs).encode("ascii"), FORM)


def test_deeply_nested_busilist_is_refused_not_crashing() -> None:
    body = b'{"appid":"hz-city","busicode":"140101","action":"01","random":"abcdefgh","sign":"AB","busilist":'
    body += b"[" * 300 + b"]" * 300 + b"}"
    parses_or_refuses(body, JSON)


# ------------------------------------------------------------------ repeated names in large bodies

#: A busilist string well above the size from which its value is cut out before names are counted.
BIG_BUSILIST: Final = orjson.dumps(
    [
        {"EQP_CODE": f"31103301062015{n:05d}", "USE_UNIT_NAME": '杭州某某物业\\管理"有限公司', "NOTE": '"appid"'}
        for n in range(900)
    ]
).decode()


def json_members(members: list[tuple[str, Any]], ascii_only: bool = False) -> bytes:
    """A JSON object written member by member (a name may repeat), as orjson or as Python's json writes values."""
    import json

    def value(item: Any) -> str:
        return json.dumps(item) if ascii_only else orjson.dumps(item).decode()

    return ("{" + ",".join(f"{json.dumps(name)}:{value(item)}" for name, item in members) + "}").encode()


def exact_repeat(body: bytes) -> str | None:
    """The slow, exact answer: decode every object and look at the outermost one's names."""
    import json

    outermost: list[str | None] = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        names = [name for name, _ in pairs]
        outermost.append(next((name for name in names if names.count(name) > 1), None))
        return dict(pairs)

    json.loads(body, object_pairs_hook=hook)
    return outermost[-1]


def members_with(extra: list[tuple[str, Any]], busilist: str = BIG_BUSILIST) -> list[tuple[str, Any]]:
    fields = {**VALID, "busilist": busilist}
    return list(fields.items()) + extra


@pytest.mark.parametrize("ascii_only", [False, True], ids=["utf8", "ascii-escaped"])
@pytest.mark.parametrize(
    ("layout", "name"),
    [
        (lambda m: [("appid", "x"), *m], "appid"),
        (lambda m: [*m, ("random", "again")], "random"),
        (lambda m: [m[0], *m[3:], ("sign", "AB"), *m[1:3]], "sign"),
        (lambda m: [*m, ("busilist", "[]")], "busilist"),
        (lambda m: [("busilist", "[]"), *m], "busilist"),
        (lambda m: [*m, ("busilist", BIG_BUSILIST)], "busilist"),
    ],
)
def test_a_repeated_name_around_a_large_busilist_is_refused(
    layout: Callable[[list[tuple[str, Any]]], list[tuple[str, Any]]], name: str, ascii_only: bool
) -> None:
    body = json_members(layout(members_with([])), ascii_only)
    assert len(body) > 65536
    error = refused(body)
    assert error.code is ErrorCode.PARAM
    assert error.message == (
        f"参数 {name} 重复出现，每个参数只能发送一次 / "
        f"Parameter '{name}' appears more than once; send each parameter once"
    )


@pytest.mark.parametrize("ascii_only", [False, True], ids=["utf8", "ascii-escaped"])
def test_an_escaped_repeated_name_after_a_large_busilist_is_refused(ascii_only: bool) -> None:
    body = json_members(members_with([]), ascii_only)[:-1] + b',"app\\u0069d":"other"}'
    assert refused(body).message.startswith("参数 appid 重复出现")


@pytest.mark.parametrize("ascii_only", [False, True], ids=["utf8", "ascii-escaped"])
def test_a_large_busilist_holding_names_and_escapes_is_accepted(ascii_only: bool) -> None:
    body = json_members(members_with([]), ascii_only)
    assert parse_request(body, JSON).busilist_text == BIG_BUSILIST


@settings(max_examples=60, deadline=None)
@given(
    extra=st.lists(
        st.tuples(st.sampled_from(["appid", "random", "sign", "busilist", "timestamp", "action"]), st.text(max_size=5)),
        max_size=2,
    ),
    order=st.randoms(use_true_random=False),
    ascii_only=st.booleans(),
    spaced=st.booleans(),
)
def test_the_large_body_shortcut_agrees_with_decoding(
    extra: list[tuple[str, str]], order: Any, ascii_only: bool, spaced: bool
) -> None:
    members = members_with(extra)
    order.shuffle(members)
    body = json_members(members, ascii_only)
    if spaced:
        body = body.replace(b'":', b'" :  ', 3).replace(b',"', b', "', 3)
    expected = exact_repeat(body)
    if expected is None:
        assert parse_body(body, JSON) == orjson.loads(body)
    else:
        with pytest.raises(ExchangeError) as caught:
            parse_body(body, JSON)
        assert caught.value.message.startswith(f"参数 {expected} 重复出现")


@pytest.mark.parametrize("ascii_only", [False, True], ids=["utf8", "ascii-escaped"])
def test_names_are_counted_around_the_busilist_value_only(ascii_only: bool) -> None:
    body = json_members(members_with([]), ascii_only)
    head, tail = _outside_busilist(body, BIG_BUSILIST)
    assert head.endswith(b'"busilist":') and tail.startswith(b',"random"')
    assert len(head) + len(tail) < 400
    # Not found exactly (another spelling of the value): the whole body is counted.
    respaced = body.replace(b'\\"', b"\\u0022")
    assert _outside_busilist(respaced, orjson.loads(respaced)["busilist"]) == (respaced,)
