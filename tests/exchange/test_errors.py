"""Every error code, one table: exact code and message, nothing written, one log row, the right sign.

The expected refusals come from the refusal table (``tzsb.refusals``); a few cases spell their
wording out, so that the text a caller reads stays pinned on the request path too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from tests.support import (
    NOT_CLAIMED,
    body,
    call,
    claimed,
    device,
    grant,
    log_rows,
    placeholder_faults,
    snapshot,
    tallied,
)
from tzsb import refusals
from tzsb.app import Node
from tzsb.catalog import Catalog
from tzsb.client import build_request
from tzsb.errors import ErrorCode, ExchangeError
from tzsb.exchange.overlap import DIGESTS_ASIDE_BYTES
from tzsb.protocol.messages import response_signed_params
from tzsb.protocol.signing import SignAlgorithm, sign, verify

APPID = "hz-city"
RANDOM = "0f8fad5b-d9cb-469f-a165-70867728950e"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def key(number: int) -> str:
    return str(device(number)["EQP_CODE"])


@dataclass(frozen=True, slots=True)
class Sent:
    """A bad request, and how its answer must be signed (``secret`` None: not at all)."""

    payload: bytes
    content_type: str = JSON
    secret: str | None = None
    algorithm: SignAlgorithm = SignAlgorithm.MD5


Prepare = Callable[[Node, pytest.MonkeyPatch], Sent]


@dataclass(frozen=True, slots=True)
class Case:
    code: str
    #: The refusal the node answers with (its code must be ``code``), or, for a golden case, its exact message.
    expected: ExchangeError | str
    prepare: Prepare
    #: The exact ``busilist`` of the answer (the refusal's details); None: no busilist at all.
    details: list[dict[str, Any]] | None = None

    @property
    def message(self) -> str:
        return self.expected if isinstance(self.expected, str) else self.expected.message


# -- building bad requests ---------------------------------------------------------------------


def raw(payload: bytes, content_type: str = JSON) -> Prepare:
    """A body the node cannot attribute to an app: the answer is unsigned."""

    def prepare(node: Node, _: pytest.MonkeyPatch) -> Sent:
        grant(node)
        return Sent(payload, content_type)

    return prepare


def edited(change: Callable[[dict[str, Any]], None]) -> Prepare:
    """A correctly signed add whose envelope ``change`` then breaks before the caller is known."""

    def prepare(node: Node, _: pytest.MonkeyPatch) -> Sent:
        secret = grant(node)
        request = build_request(APPID, secret, SignAlgorithm.MD5, "140101", "01", [device(1)], RANDOM)
        change(request)
        return Sent(orjson.dumps(request))

    return prepare


def signed(
    busilist: list[dict[str, Any]] | str | None = None,
    *,
    action: str = "01",
    busicode: str = "140101",
    appid: str = APPID,
    grants: dict[str, Any] | None = None,
    algorithm: SignAlgorithm = SignAlgorithm.MD5,
    signed_with: SignAlgorithm | None = None,
    secret: str | None = None,
    before: Callable[[Node, str], None] | None = None,
    patch: Callable[[Node, pytest.MonkeyPatch], None] | None = None,
    unsigned: bool = False,
) -> Prepare:
    """A request signed by ``appid`` (default busilist: one valid device; a string is sent as is).

    ``grants`` are the app's options; ``before`` runs first (with the app's secret) to set the
    scene; ``secret`` / ``signed_with`` sign with something else than the app's own secret and
    algorithm; ``patch`` monkeypatches the node last. The answer must be signed with the
    app's secret unless the request was not the app's (or ``unsigned`` says so).
    """

    def prepare(node: Node, monkeypatch: pytest.MonkeyPatch) -> Sent:
        options = {"sign": algorithm, **(grants or {})}
        own = grant(node, **options)
        if before is not None:
            before(node, own)
        text = busilist if isinstance(busilist, str) else orjson.dumps(busilist or [device(1)]).decode()
        params = {"appid": appid, "busicode": busicode, "action": action, "busilist": text, "random": RANDOM}
        key_used = secret or own
        params["sign"] = sign(params, key_used, signed_with or algorithm)
        if patch is not None:
            patch(node, monkeypatch)
        identified = not unsigned and secret is None and signed_with is None and appid == APPID
        return Sent(orjson.dumps(params), JSON, own if identified else None, algorithm)

    return prepare


def add_as(
    appid: str, records: list[dict[str, Any]], region: str = "330100", busicode: str = "140101"
) -> Callable[[Node, str], None]:
    """Scene setter: another app ``appid`` adds ``records`` first."""

    def before(node: Node, _: str) -> None:
        secret = grant(node, appid=appid, region=region, busicodes=frozenset({busicode}))
        answer = call(node, body(appid, secret, busicode, "01", records))
        assert answer["datalist"]["result"] == "0001", answer

    return before


def add_first(records: list[dict[str, Any]], random: str = "first-request-0001") -> Callable[[Node, str], None]:
    """Scene setter: the app itself adds ``records`` first."""

    def before(node: Node, secret: str) -> None:
        answer = call(node, body(APPID, secret, "140101", "01", records, random))
        assert answer["datalist"]["result"] == "0001", answer

    return before


def disable(node: Node, _: str) -> None:
    node.registry.set_enabled(APPID, False)


def boom(*_: Any, **__: Any) -> None:
    raise RuntimeError("the disk is on fire")


def failing(target: str) -> Callable[[Node, pytest.MonkeyPatch], None]:
    """The store function ``target`` raises."""

    def patch(_: Node, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(target, boom)

    return patch


def failing_insert(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    """The insert of new records fails in the database: SQLite's one statement, PostgreSQL's COPY."""
    if node.store.is_sqlite:
        for statement in ("_INSERT_FROM_ARRAYS", "_INSERT_FROM_ARRAY"):
            monkeypatch.setattr(f"tzsb.store.records_written.{statement}", "INSERT INTO no_such_table SELECT ?")
    else:
        monkeypatch.setattr("tzsb.store.records_written.INSERT_COLUMNS", ("no_such_column",))


def not_serving(business: str) -> Callable[[Node, pytest.MonkeyPatch], None]:
    """The node's exchange serves every shipped business type but ``business``."""

    def patch(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
        served = Catalog({code: node.catalog[code] for code in node.catalog if code != business})
        monkeypatch.setattr(node.exchange.admission, "catalog", served)

    return patch


# -- expected refusals ----------------------------------------------------------------------------

#: Sign texts over 64 KB: their digests are computed beside the busilist's parsing.
LARGE_NOT_JSON = '[{"EQP_CODE": "' + "x" * 70_000
LARGE_BATCH = [device(number) for number in range(200)]

SIGN_MISMATCH = refusals.signature_mismatch("MD5")
REPLAYED = refusals.random_reused()
NOT_FOUND = refusals.records_not_found(placeholder_faults(1), "EQP_CODE")
INTERNAL = refusals.internal_error()


def forbidden(busicode: str, action: str, label: str) -> ExchangeError:
    """The app hz-city is not granted ``action`` on ``busicode``."""
    return refusals.not_granted(APPID, busicode, action, label)


def outside(count: int) -> ExchangeError:
    """Records outside the app's region 330100."""
    return refusals.records_outside_region(placeholder_faults(count), "330100")


def query_outside(region: str) -> ExchangeError:
    return refusals.query_region_outside(region, "330100")


INVALID = device(2, EQP_NAME="梯" * 101, MAKE_DATE="2026-02-30", USE_ADDRESS=None, SAFETY_MANAGER_PHONE="12345")
INVALID["EXTRA_FIELD"] = "x"
NO_KEY = device(3, EQP_CODE=None)
VALIDATION_DETAILS = [
    {
        "index": 1,
        "key": key(2),
        "errors": [
            {
                "field": "EXTRA_FIELD",
                "rule": "unknown_field",
                "message": "字段 EXTRA_FIELD 不是 0101 特种设备基础数据 的数据元 / "
                "EXTRA_FIELD is not a data element of business type 0101",
            },
            {
                "field": "EQP_NAME",
                "rule": "length",
                "message": "设备名称（EQP_NAME）长度不能超过 100 个字符 / EQP_NAME must be at most 100 characters",
            },
            {
                "field": "MAKE_DATE",
                "rule": "type",
                "message": "制造日期（MAKE_DATE）应为日期 YYYY-MM-DD / MAKE_DATE must be a date YYYY-MM-DD",
            },
            {
                "field": "USE_ADDRESS",
                "rule": "required",
                "message": "设备使用地点（USE_ADDRESS）为必填项，不能为空 / "
                "USE_ADDRESS is required and must not be blank",
            },
            {
                "field": "SAFETY_MANAGER_PHONE",
                "rule": "pattern",
                "message": "安全管理员联系电话（SAFETY_MANAGER_PHONE）格式不正确 / "
                "SAFETY_MANAGER_PHONE does not match ^(1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8})$",
            },
        ],
    },
    {
        "index": 2,
        "key": key(1),
        "errors": [
            {
                "field": "EQP_CODE",
                "rule": "duplicate_key",
                "message": f"主键 {key(1)} 与第 0 条重复，同一批次中每条记录只能出现一次 / "
                f"primary key {key(1)} repeats record 0; send each record once per batch",
            }
        ],
    },
    {
        "index": 3,
        "key": None,
        "errors": [
            {
                "field": "EQP_CODE",
                "rule": "required",
                "message": "设备代码（EQP_CODE）为必填项，不能为空 / EQP_CODE is required and must not be blank",
            }
        ],
    },
]

# -- the table -------------------------------------------------------------------------------------

CASES = [
    # E_JSON: the body is not a UTF-8 JSON object (or form).
    pytest.param(
        Case(
            "E_JSON",
            # golden wording: pins the text a caller reads
            "请求体不是 UTF-8 编码的 JSON 对象，请按 application/json; charset=utf-8 发送 / "
            "The body is not a UTF-8 JSON object; send application/json; charset=utf-8",
            raw(b'{"appid": "hz-city",'),
        ),
        id="json-truncated",
    ),
    pytest.param(Case("E_JSON", refusals.body_not_json(), raw(b'{"appid": "hz-\xff"}')), id="json-not-utf8"),
    pytest.param(Case("E_JSON", refusals.body_not_json(), raw(b'[{"appid": "hz-city"}]')), id="json-not-an-object"),
    pytest.param(Case("E_JSON", refusals.body_not_json(), raw(b"appid=hz-%FF", FORM)), id="form-not-utf8"),
    pytest.param(Case("E_JSON", refusals.body_not_json(), raw(b"appid", FORM)), id="form-malformed"),
    # E_PARAM before the caller is identified: the answer is unsigned.
    pytest.param(
        Case("E_PARAM", refusals.parameter_missing("sign"), edited(lambda r: r.pop("sign"))), id="param-no-sign"
    ),
    pytest.param(
        Case("E_PARAM", refusals.parameter_missing("random"), edited(lambda r: r.update(random=""))),
        id="param-empty-random",
    ),
    pytest.param(
        Case("E_PARAM", refusals.unknown_parameters(["token"]), edited(lambda r: r.update(token="x"))),
        id="param-unknown",
    ),
    pytest.param(
        Case("E_PARAM", refusals.busicode_and_alias(), edited(lambda r: r.update(basicode="140101"))),
        id="param-busicode-and-basicode",
    ),
    pytest.param(
        Case(
            "E_PARAM",
            refusals.parameter_malformed(
                "random",
                "8–64 位字母、数字、下划线或连字符，建议使用 UUID",
                "8-64 characters of A-Z a-z 0-9 _ -; a UUID is recommended",
            ),
            edited(lambda r: r.update(random="short")),
        ),
        id="param-random-malformed",
    ),
    pytest.param(
        Case(
            "E_PARAM",
            refusals.parameter_malformed(
                "busicode", "6 位数字（用途 2 位 + 业务 4 位）", "6 digits (purpose 2 + business 4)"
            ),
            edited(lambda r: r.update(busicode="14-0101")),
        ),
        id="param-busicode-malformed",
    ),
    pytest.param(
        Case("E_PARAM", refusals.parameter_not_text("appid"), edited(lambda r: r.update(appid=12))),
        id="param-appid-not-a-string",
    ),
    pytest.param(
        Case(
            "E_PARAM",
            refusals.parameter_not_text("busilist", array_allowed=True),
            edited(lambda r: r.update(busilist={"EQP_CODE": key(1)})),
        ),
        id="param-busilist-an-object",
    ),
    pytest.param(
        Case("E_PARAM", refusals.parameter_repeated("appid"), raw(b"appid=hz-city&appid=hz-city", FORM)),
        id="param-form-field-twice",
    ),
    # E_PARAM once the caller is known: signed.
    pytest.param(Case("E_PARAM", refusals.action_unknown("05"), signed(action="05")), id="param-unknown-action"),
    pytest.param(Case("E_PARAM", refusals.busilist_empty(), signed("[]")), id="param-busilist-empty"),
    pytest.param(Case("E_PARAM", refusals.busilist_not_json(), signed('[{"EQP_CODE": ')), id="param-busilist-not-json"),
    pytest.param(
        Case(
            "E_PARAM",
            refusals.busilist_item_not_object(1),
            signed(f'[{{"EQP_CODE": "{key(1)}"}}, "{key(2)}"]', action="03"),
        ),
        id="param-busilist-item-not-an-object",
    ),
    # A busilist this large is parsed while the signature is checked in another thread: what is
    # wrong with it is still told only once the caller is known, and after the envelope's faults.
    pytest.param(
        Case("E_PARAM", refusals.busilist_not_json(), signed(LARGE_NOT_JSON)), id="param-large-busilist-not-json"
    ),
    pytest.param(
        Case("E_PARAM", refusals.action_unknown("05"), signed(LARGE_NOT_JSON, action="05")),
        id="param-large-busilist-unknown-action",
    ),
    pytest.param(
        Case("E_SIGN", SIGN_MISMATCH, signed(LARGE_NOT_JSON, secret="0" * 32)),
        id="sign-large-busilist-not-json",
    ),
    pytest.param(
        Case("E_PARAM", refusals.query_needs_one_condition(), signed([{}, {}], action="04")),
        id="param-query-two-conditions",
    ),
    # E_APPID
    pytest.param(Case("E_APPID", refusals.unknown_app("nobody"), signed(appid="nobody")), id="appid-unknown"),
    pytest.param(
        Case("E_APPID", refusals.unknown_app(APPID), signed(before=disable, unsigned=True)), id="appid-disabled"
    ),
    # E_SIGN
    pytest.param(
        Case(
            "E_SIGN",
            # golden wording: pins the text a caller reads
            "签名校验失败（MD5）：请按规范 6.5 重算 sign——除 sign 外的非空参数按参数名 ASCII 排序，"
            "以 name=value 用 & 连接，末尾加 &key=密钥，再计算并转大写 / Signature mismatch (MD5): rebuild it as in "
            "spec 6.5 — every non-empty parameter but sign, sorted by name (ASCII), joined as name=value with &, "
            "then &key=<secret>; digest, upper case",
            signed(secret="0" * 32),
        ),
        id="sign-wrong-secret",
    ),
    pytest.param(Case("E_SIGN", SIGN_MISMATCH, signed(signed_with=SignAlgorithm.SM3)), id="sign-wrong-algorithm"),
    pytest.param(
        Case(
            "E_SIGN",
            refusals.signature_mismatch("SM4"),
            signed(algorithm=SignAlgorithm.SM4, signed_with=SignAlgorithm.MD5),
        ),
        id="sign-md5-for-an-sm4-app",
    ),
    pytest.param(
        Case(
            "E_SIGN",
            SIGN_MISMATCH,
            edited(lambda r: r.update(busilist=r["busilist"].replace("330106", "330102"))),
        ),
        id="sign-busilist-altered",
    ),
    # E_REPLAY: the random of an earlier, different request.
    pytest.param(
        Case("E_REPLAY", REPLAYED, signed([device(2)], before=add_first([device(1)], random=RANDOM))),
        id="replay",
    ),
    pytest.param(
        Case("E_REPLAY", REPLAYED, signed(LARGE_BATCH, before=add_first(LARGE_BATCH[:-1], random=RANDOM))),
        id="replay-large",
    ),
    # E_BUSICODE: not tables 6 + 7, or not served here.
    pytest.param(
        Case("E_BUSICODE", refusals.busicode_unknown("150101"), signed(busicode="150101")), id="busicode-purpose"
    ),
    pytest.param(
        Case("E_BUSICODE", refusals.busicode_unknown("100101"), signed(busicode="100101")), id="busicode-heading"
    ),
    pytest.param(
        Case("E_BUSICODE", refusals.busicode_unknown("140199"), signed(busicode="140199")), id="busicode-business"
    ),
    pytest.param(
        Case(
            "E_BUSICODE",
            refusals.business_not_served("0201", "压力容器、压力管道（限长输管道）设计许可"),
            signed(busicode="140201", grants={"busicodes": frozenset({"140101", "140201"})}, patch=not_serving("0201")),
        ),
        id="busicode-not-served",
    ),
    # E_FORBIDDEN
    pytest.param(
        Case(
            "E_FORBIDDEN",
            forbidden("140102", "01", "数据新增"),
            signed(busicode="140102", grants={"busicodes": frozenset({"140101"})}),
        ),
        id="forbidden-busicode",
    ),
    pytest.param(
        Case(
            "E_FORBIDDEN",
            forbidden("140101", "03", "数据删除"),
            signed([{"EQP_CODE": key(1)}], action="03", grants={"actions": frozenset({"01", "04"})}),
        ),
        id="forbidden-action",
    ),
    # E_REGION
    pytest.param(
        Case(
            "E_REGION",
            outside(1),
            signed([device(1), device(2, AREA_CODE="330205")]),
            [{"index": 1, "key": key(2), "region": "330205"}],
        ),
        id="region-add",
    ),
    pytest.param(
        Case(
            "E_REGION",
            outside(1),
            signed([{"EQP_CODE": key(1), "AREA_CODE": "330205"}], action="02", before=add_first([device(1)])),
            [{"index": 0, "key": key(1), "region": "330205"}],
        ),
        id="region-modify-moves-out",
    ),
    pytest.param(
        # A record outside the caller's region is one it does not hold: its existence is not told.
        Case(
            "E_NOTFOUND",
            NOT_FOUND,
            signed(
                [{"EQP_CODE": key(9)}],
                action="03",
                before=add_as("zj-prov", [device(9, AREA_CODE="330205")], region="330000", busicode="110101"),
            ),
            [{"index": 0, "key": key(9)}],
        ),
        id="region-delete-outside",
    ),
    pytest.param(
        Case("E_REGION", query_outside("330200"), signed([{"_region": "330200"}], action="04")),
        id="region-query",
    ),
    pytest.param(
        Case("E_REGION", query_outside("330205"), signed([{"AREA_CODE": "330205"}], action="04")),
        id="region-query-region-field",
    ),
    # E_LIMIT
    pytest.param(
        Case(
            "E_LIMIT",
            refusals.too_many_records(2, 3),
            signed([device(1), device(2), device(3)], grants={"max_records": 2}),
        ),
        id="limit",
    ),
    # E_VALIDATION, with the per-record details.
    pytest.param(
        Case(
            "E_VALIDATION",
            # golden wording: pins the text a caller reads
            "有 3 条记录未通过数据校验，整批未写入，请按 busilist 中的明细修正后重发 / "
            "3 record(s) failed validation; nothing was written. Fix them as listed in busilist and resend",
            signed([device(1), INVALID, device(1), NO_KEY]),
            VALIDATION_DETAILS,
        ),
        id="validation",
    ),
    # E_NOTFOUND
    pytest.param(
        Case(
            "E_NOTFOUND",
            NOT_FOUND,
            signed(
                [{"EQP_CODE": key(1), "USE_STATUS": "3"}, {"EQP_CODE": key(2), "USE_STATUS": "3"}],
                action="02",
                before=add_first([device(1)]),
            ),
            [{"index": 1, "key": key(2)}],
        ),
        id="notfound-modify",
    ),
    pytest.param(
        Case(
            "E_NOTFOUND",
            NOT_FOUND,
            signed([{"EQP_CODE": key(2)}], action="03", before=add_first([device(1)])),
            [{"index": 0, "key": key(2)}],
        ),
        id="notfound-delete",
    ),
    # E_CONFLICT: 一数一源.
    pytest.param(
        Case(
            "E_CONFLICT",
            refusals.records_of_another_source(placeholder_faults(1), "0101"),
            signed([{"EQP_CODE": key(1), "USE_STATUS": "3"}], action="02", before=add_as("hz-other", [device(1)])),
            [{"index": 0, "key": key(1), "source": "hz-other"}],
        ),
        id="conflict",
    ),
    # E_INTERNAL: the store fails half-way (the new records are in, the rest of the write fails).
    pytest.param(
        Case(
            "E_INTERNAL",
            INTERNAL,
            signed([device(1), device(2)], patch=failing("tzsb.store.records_written.store_change_counter")),
        ),
        id="internal-write",
    ),
    pytest.param(
        Case("E_INTERNAL", INTERNAL, signed([device(1), device(2)], patch=failing_insert)), id="internal-insert"
    ),
    pytest.param(
        Case(
            "E_INTERNAL", INTERNAL, signed([{}], action="04", patch=failing("tzsb.store.records_read.select_records"))
        ),
        id="internal-query",
    ),
]

#: The codes issue 2 defines (E_DISABLED, in the enum, is not one of them: a disabled app is E_APPID).
ISSUE_CODES = {
    "E_JSON",
    "E_PARAM",
    "E_APPID",
    "E_SIGN",
    "E_REPLAY",
    "E_BUSICODE",
    "E_FORBIDDEN",
    "E_REGION",
    "E_LIMIT",
    "E_VALIDATION",
    "E_NOTFOUND",
    "E_CONFLICT",
    "E_INTERNAL",
}


def test_the_table_covers_every_error_code() -> None:
    covered = {param.values[0].code for param in CASES}
    assert covered == ISSUE_CODES
    assert {code.value for code in ErrorCode} >= ISSUE_CODES


def test_the_golden_cases_are_few() -> None:
    """Most cases take their wording from the refusal table; at most three spell it out."""
    assert len([param for param in CASES if isinstance(param.values[0].expected, str)]) <= 3


def normalised(details: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Details with each record's errors in (field, rule) order: the order of rules is not the contract."""
    return [
        {**detail, "errors": sorted(detail["errors"], key=lambda error: (error["field"], error["rule"]))}
        if "errors" in detail
        else detail
        for detail in details
    ]


def test_the_large_cases_are_over_the_parse_ahead_size() -> None:
    for busilist in (LARGE_NOT_JSON, orjson.dumps(LARGE_BATCH)):
        assert len(busilist) > DIGESTS_ASIDE_BYTES


@pytest.mark.parametrize("case", CASES)
def test_refused_request(node: Node, monkeypatch: pytest.MonkeyPatch, case: Case) -> None:
    sent = case.prepare(node, monkeypatch)
    before = snapshot(node)
    logged = log_rows(node)

    answer = call(node, sent.payload, sent.content_type)

    datalist = answer["datalist"]
    assert datalist["result"] == "0000"
    if isinstance(case.expected, ExchangeError):
        assert case.expected.code.value == case.code
    assert datalist["code"] == case.code
    assert datalist["message"] == case.message
    if case.details is None:
        assert "busilist" not in datalist
    else:
        assert normalised(datalist["busilist"]) == normalised(case.details)
    assert set(answer) == {"appid", "busicode", "datalist", "random", "sign"}
    monkeypatch.undo()
    new_rows = log_rows(node)[len(logged) :]
    if answer["sign"] == "" and case.code not in ("E_SIGN", "E_INTERNAL"):
        # A caller that never proved who it is: counted per address and minute, no row, no claim.
        assert snapshot(node) == before
        assert new_rows == []
        assert tallied(node) == [("127.0.0.1", 1, case.code)]
    else:
        # Nothing written but the log row and, for an authenticated caller, the random's claim
        # with this refusal as its first answer (internal errors and reused randoms claim nothing).
        assert snapshot(node) == claimed(before, answer if answer["sign"] and case.code not in NOT_CLAIMED else None)
        assert [(row["result"], row["code"], row["message"]) for row in new_rows] == [
            ("0000", case.code, case.message[:2000])
        ]
    if sent.secret is None:
        assert answer["sign"] == ""
    else:
        assert answer["sign"] != ""
        assert verify(response_signed_params(answer), sent.secret, sent.algorithm, answer["sign"])
        assert not verify(response_signed_params(answer), "f" * 32, sent.algorithm, answer["sign"])
        assert (answer["appid"], answer["random"]) == (APPID, RANDOM)


_CODE_LIST_PROBE = """
import orjson
from tzsb.catalog import load_catalog
from tzsb.rules import compile_validator
validator = compile_validator(load_catalog()["0101"])
record = {"USE_STATUS": "7"}
print(orjson.dumps([item.message for item in validator.violations(record, partial=True)]).decode())
"""


def test_a_code_list_message_is_the_same_in_every_process() -> None:
    messages = set()
    for seed in ("1", "2", "3"):
        result = subprocess.run(
            [sys.executable, "-c", _CODE_LIST_PROBE],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        )
        messages.add(result.stdout)
    assert len(messages) == 1, messages
    [only] = [orjson.loads(text) for text in messages]
    assert only == [
        "使用状态（USE_STATUS）取值不在代码表内：1 未投入使用, 2 在用, 3 停用, 4 报废, 5 拆除, 6 迁出, 9 在用未注册 / "
        "USE_STATUS must be one of: 1, 2, 3, 4, 5, 6, 9"
    ]
