"""Every error code, one table: exact code and message, nothing written, one log row, the right sign."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from tests.support import body, call, device, grant, log_rows, snapshot
from tzsb.app import Node
from tzsb.catalog import Catalog
from tzsb.client import build_request
from tzsb.errors import ErrorCode
from tzsb.exchange import pipeline
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
    message: str
    prepare: Prepare
    #: The exact ``busilist`` of the answer (the refusal's details); None: no busilist at all.
    details: list[dict[str, Any]] | None = None


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
            monkeypatch.setattr(f"tzsb.store.records.{statement}", "INSERT INTO no_such_table SELECT ?")
    else:
        monkeypatch.setattr("tzsb.store.records.INSERT_COLUMNS", ("no_such_column",))


def not_serving(business: str) -> Callable[[Node, pytest.MonkeyPatch], None]:
    """The node's exchange serves every shipped business type but ``business``."""

    def patch(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
        served = Catalog({code: node.catalog[code] for code in node.catalog if code != business})
        monkeypatch.setattr(node.exchange, "catalog", served)

    return patch


# -- messages ------------------------------------------------------------------------------------

E_JSON_MESSAGE = (
    "请求体不是 UTF-8 编码的 JSON 对象，请按 application/json; charset=utf-8 发送 / "
    "The body is not a UTF-8 JSON object; send application/json; charset=utf-8"
)
REPLAY_MESSAGE = (
    "random 已被本应用的另一个请求使用，请为每个新请求生成新的 random（建议 UUID） / "
    "This random was already used by a different request of this app; generate a new random "
    "(a UUID) for every new request"
)
#: Sign texts over 64 KB: their digests are computed beside the busilist's parsing.
LARGE_NOT_JSON = '[{"EQP_CODE": "' + "x" * 70_000
LARGE_BATCH = [device(number) for number in range(200)]

SIGN_MESSAGE = (
    "签名校验失败（{0}）：请按规范 6.5 重算 sign——除 sign 外的非空参数按参数名 ASCII 排序，以 name=value 用 & 连接，"
    "末尾加 &key=密钥，再计算并转大写 / Signature mismatch ({0}): rebuild it as in spec 6.5 — every non-empty "
    "parameter but sign, sorted by name (ASCII), joined as name=value with &, then &key=<secret>; digest, upper case"
)
BUSICODE_MESSAGE = (
    "业务分类代码 {0} 无效：前 2 位须为表 6 的用途代码，后 4 位须为表 7 的业务代码 / "
    "busicode {0} is not a purpose code of table 6 followed by a business code of table 7"
)
FORBIDDEN_MESSAGE = (
    "应用 hz-city 未被授权对 {0} 执行 {1}（{2}），请向节点管理员申请授权 / "
    "App hz-city is not granted action {1} on {0}; ask the node operator"
)
REGION_MESSAGE = (
    "有 {0} 条记录的所属区域超出本应用的授权区域 330100，整批未写入 / "
    "{0} record(s) lie outside this app's region 330100; nothing was written"
)
QUERY_REGION_MESSAGE = (
    "查询区域 {0} 超出本应用的授权区域 330100，请在授权区域内查询 / "
    "Region {0} is outside this app's region 330100; query inside your region"
)
NOT_FOUND_MESSAGE = (
    "有 1 条记录在本节点不存在（EQP_CODE），整批未写入；新记录请用 01 新增 / "
    "1 record(s) do not exist here (EQP_CODE); nothing was written. Use action 01 to add new records"
)
INTERNAL_MESSAGE = (
    "节点内部错误，数据未写入，请稍后重试；如持续出现请联系节点管理员 / "
    "Internal error in the node; nothing was written. Retry later, and tell the node operator if it persists"
)


def missing(name: str) -> str:
    return (
        f"缺少必填参数 {name}（表 5），请补充后重新签名发送 / "
        f"Missing required parameter '{name}' (table 5); add it, sign again and resend"
    )


def malformed(name: str, zh: str, en: str) -> str:
    return f"参数 {name} 格式不正确，应为{zh} / Parameter '{name}' is malformed; expected {en}"


def not_a_string(name: str, zh_extra: str = "", en_extra: str = "") -> str:
    return f"参数 {name} 必须是字符串{zh_extra} / Parameter '{name}' must be a string{en_extra}"


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
    pytest.param(Case("E_JSON", E_JSON_MESSAGE, raw(b'{"appid": "hz-city",')), id="json-truncated"),
    pytest.param(Case("E_JSON", E_JSON_MESSAGE, raw(b'{"appid": "hz-\xff"}')), id="json-not-utf8"),
    pytest.param(Case("E_JSON", E_JSON_MESSAGE, raw(b'[{"appid": "hz-city"}]')), id="json-not-an-object"),
    pytest.param(Case("E_JSON", E_JSON_MESSAGE, raw(b"appid=hz-%FF", FORM)), id="form-not-utf8"),
    pytest.param(Case("E_JSON", E_JSON_MESSAGE, raw(b"appid", FORM)), id="form-malformed"),
    # E_PARAM before the caller is identified: the answer is unsigned.
    pytest.param(Case("E_PARAM", missing("sign"), edited(lambda r: r.pop("sign"))), id="param-no-sign"),
    pytest.param(Case("E_PARAM", missing("random"), edited(lambda r: r.update(random=""))), id="param-empty-random"),
    pytest.param(
        Case(
            "E_PARAM",
            "未知参数 token；只允许 appid、busicode、action、busilist、random、sign 及可选的 timestamp / "
            "Unknown parameter(s) token; only appid, busicode, action, busilist, random, sign and the optional "
            "timestamp are allowed",
            edited(lambda r: r.update(token="x")),
        ),
        id="param-unknown",
    ),
    pytest.param(
        Case(
            "E_PARAM",
            "busicode 与 basicode 只能发送其一 / Send either busicode or its alias basicode, not both",
            edited(lambda r: r.update(basicode="140101")),
        ),
        id="param-busicode-and-basicode",
    ),
    pytest.param(
        Case(
            "E_PARAM",
            malformed(
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
            malformed("busicode", "6 位数字（用途 2 位 + 业务 4 位）", "6 digits (purpose 2 + business 4)"),
            edited(lambda r: r.update(busicode="14-0101")),
        ),
        id="param-busicode-malformed",
    ),
    pytest.param(
        Case("E_PARAM", not_a_string("appid"), edited(lambda r: r.update(appid=12))), id="param-appid-not-a-string"
    ),
    pytest.param(
        Case(
            "E_PARAM",
            not_a_string("busilist", "或 JSON 数组", " or a JSON array"),
            edited(lambda r: r.update(busilist={"EQP_CODE": key(1)})),
        ),
        id="param-busilist-an-object",
    ),
    pytest.param(
        Case(
            "E_PARAM",
            "参数 appid 重复出现，每个参数只能发送一次 / "
            "Parameter 'appid' appears more than once; send each parameter once",
            raw(b"appid=hz-city&appid=hz-city", FORM),
        ),
        id="param-form-field-twice",
    ),
    # E_PARAM once the caller is known: signed.
    pytest.param(
        Case(
            "E_PARAM",
            "请求动作代码 05 无效，应为 01 新增、02 修改、03 删除、04 查询 / "
            "action 05 is not valid; use 01 add, 02 modify, 03 delete or 04 query",
            signed(action="05"),
        ),
        id="param-unknown-action",
    ),
    pytest.param(
        Case(
            "E_PARAM",
            "busilist 为空，请至少提供一条记录（查询时提供一个条件对象，可为 {}） / "
            "busilist is empty; send at least one record (for a query, one condition object, may be {})",
            signed("[]"),
        ),
        id="param-busilist-empty",
    ),
    pytest.param(
        Case(
            "E_PARAM",
            "busilist 不是合法的 JSON，请发送 JSON 数组（可作为字符串） / "
            "busilist is not valid JSON; send a JSON array (optionally as a string)",
            signed('[{"EQP_CODE": '),
        ),
        id="param-busilist-not-json",
    ),
    pytest.param(
        Case(
            "E_PARAM",
            "busilist 第 1 项不是 JSON 对象 / busilist item 1 is not a JSON object",
            signed(f'[{{"EQP_CODE": "{key(1)}"}}, "{key(2)}"]', action="03"),
        ),
        id="param-busilist-item-not-an-object",
    ),
    # A busilist this large is parsed while the signature is checked in another thread: what is
    # wrong with it is still told only once the caller is known, and after the envelope's faults.
    pytest.param(
        Case(
            "E_PARAM",
            "busilist 不是合法的 JSON，请发送 JSON 数组（可作为字符串） / "
            "busilist is not valid JSON; send a JSON array (optionally as a string)",
            signed(LARGE_NOT_JSON),
        ),
        id="param-large-busilist-not-json",
    ),
    pytest.param(
        Case(
            "E_PARAM",
            "请求动作代码 05 无效，应为 01 新增、02 修改、03 删除、04 查询 / "
            "action 05 is not valid; use 01 add, 02 modify, 03 delete or 04 query",
            signed(LARGE_NOT_JSON, action="05"),
        ),
        id="param-large-busilist-unknown-action",
    ),
    pytest.param(
        Case("E_SIGN", SIGN_MESSAGE.format("MD5"), signed(LARGE_NOT_JSON, secret="0" * 32)),
        id="sign-large-busilist-not-json",
    ),
    pytest.param(
        Case(
            "E_PARAM",
            "查询时 busilist 只能包含一个条件对象 / A query's busilist must hold exactly one condition object",
            signed([{}, {}], action="04"),
        ),
        id="param-query-two-conditions",
    ),
    # E_APPID
    pytest.param(
        Case(
            "E_APPID",
            "应用账号 nobody 不存在或已停用，请向节点管理员确认 appid / "
            "App nobody is unknown or disabled; check the appid with the node operator",
            signed(appid="nobody"),
        ),
        id="appid-unknown",
    ),
    pytest.param(
        Case(
            "E_APPID",
            "应用账号 hz-city 不存在或已停用，请向节点管理员确认 appid / "
            "App hz-city is unknown or disabled; check the appid with the node operator",
            signed(before=disable, unsigned=True),
        ),
        id="appid-disabled",
    ),
    # E_SIGN
    pytest.param(Case("E_SIGN", SIGN_MESSAGE.format("MD5"), signed(secret="0" * 32)), id="sign-wrong-secret"),
    pytest.param(
        Case("E_SIGN", SIGN_MESSAGE.format("MD5"), signed(signed_with=SignAlgorithm.SM3)), id="sign-wrong-algorithm"
    ),
    pytest.param(
        Case(
            "E_SIGN",
            SIGN_MESSAGE.format("SM4"),
            signed(algorithm=SignAlgorithm.SM4, signed_with=SignAlgorithm.MD5),
        ),
        id="sign-md5-for-an-sm4-app",
    ),
    pytest.param(
        Case(
            "E_SIGN",
            SIGN_MESSAGE.format("MD5"),
            edited(lambda r: r.update(busilist=r["busilist"].replace("330106", "330102"))),
        ),
        id="sign-busilist-altered",
    ),
    # E_REPLAY: the random of an earlier, different request.
    pytest.param(
        Case("E_REPLAY", REPLAY_MESSAGE, signed([device(2)], before=add_first([device(1)], random=RANDOM))),
        id="replay",
    ),
    pytest.param(
        Case("E_REPLAY", REPLAY_MESSAGE, signed(LARGE_BATCH, before=add_first(LARGE_BATCH[:-1], random=RANDOM))),
        id="replay-large",
    ),
    # E_BUSICODE: not tables 6 + 7, or not served here.
    pytest.param(
        Case("E_BUSICODE", BUSICODE_MESSAGE.format("150101"), signed(busicode="150101")), id="busicode-purpose"
    ),
    pytest.param(
        Case("E_BUSICODE", BUSICODE_MESSAGE.format("100101"), signed(busicode="100101")), id="busicode-heading"
    ),
    pytest.param(
        Case("E_BUSICODE", BUSICODE_MESSAGE.format("140199"), signed(busicode="140199")), id="busicode-business"
    ),
    pytest.param(
        Case(
            "E_BUSICODE",
            "本节点未提供业务类型 0201（压力容器、压力管道（限长输管道）设计许可）的数据接口 / "
            "This node does not serve business type 0201",
            signed(busicode="140201", grants={"busicodes": frozenset({"140101", "140201"})}, patch=not_serving("0201")),
        ),
        id="busicode-not-served",
    ),
    # E_FORBIDDEN
    pytest.param(
        Case(
            "E_FORBIDDEN",
            FORBIDDEN_MESSAGE.format("140102", "01", "数据新增"),
            signed(busicode="140102", grants={"busicodes": frozenset({"140101"})}),
        ),
        id="forbidden-busicode",
    ),
    pytest.param(
        Case(
            "E_FORBIDDEN",
            FORBIDDEN_MESSAGE.format("140101", "03", "数据删除"),
            signed([{"EQP_CODE": key(1)}], action="03", grants={"actions": frozenset({"01", "04"})}),
        ),
        id="forbidden-action",
    ),
    # E_REGION
    pytest.param(
        Case(
            "E_REGION",
            REGION_MESSAGE.format(1),
            signed([device(1), device(2, AREA_CODE="330205")]),
            [{"index": 1, "key": key(2), "region": "330205"}],
        ),
        id="region-add",
    ),
    pytest.param(
        Case(
            "E_REGION",
            REGION_MESSAGE.format(1),
            signed([{"EQP_CODE": key(1), "AREA_CODE": "330205"}], action="02", before=add_first([device(1)])),
            [{"index": 0, "key": key(1), "region": "330205"}],
        ),
        id="region-modify-moves-out",
    ),
    pytest.param(
        # A record outside the caller's region is one it does not hold: its existence is not told.
        Case(
            "E_NOTFOUND",
            NOT_FOUND_MESSAGE,
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
        Case("E_REGION", QUERY_REGION_MESSAGE.format("330200"), signed([{"_region": "330200"}], action="04")),
        id="region-query",
    ),
    pytest.param(
        Case("E_REGION", QUERY_REGION_MESSAGE.format("330205"), signed([{"AREA_CODE": "330205"}], action="04")),
        id="region-query-region-field",
    ),
    # E_LIMIT
    pytest.param(
        Case(
            "E_LIMIT",
            "单次请求最多 2 条记录，本次 3 条，请分批发送 / At most 2 records per request, got 3; split the batch",
            signed([device(1), device(2), device(3)], grants={"max_records": 2}),
        ),
        id="limit",
    ),
    # E_VALIDATION, with the per-record details.
    pytest.param(
        Case(
            "E_VALIDATION",
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
            NOT_FOUND_MESSAGE,
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
            NOT_FOUND_MESSAGE,
            signed([{"EQP_CODE": key(2)}], action="03", before=add_first([device(1)])),
            [{"index": 0, "key": key(2)}],
        ),
        id="notfound-delete",
    ),
    # E_CONFLICT: 一数一源.
    pytest.param(
        Case(
            "E_CONFLICT",
            "有 1 条记录由其他数据源提供（一数一源），本应用无权覆盖 0101，整批未写入；如确需接管，"
            "请联系节点管理员授予 override / 1 record(s) were supplied by another source (one record, one source) "
            "and this app may not override 0101; nothing was written. Ask the node operator for an override grant",
            signed([{"EQP_CODE": key(1), "USE_STATUS": "3"}], action="02", before=add_as("hz-other", [device(1)])),
            [{"index": 0, "key": key(1), "source": "hz-other"}],
        ),
        id="conflict",
    ),
    # E_INTERNAL: the store fails half-way (the new records are in, the rest of the write fails).
    pytest.param(
        Case(
            "E_INTERNAL",
            INTERNAL_MESSAGE,
            signed([device(1), device(2)], patch=failing("tzsb.store.records.store_change_counter")),
        ),
        id="internal-write",
    ),
    pytest.param(
        Case(
            "E_INTERNAL",
            INTERNAL_MESSAGE,
            signed([device(1), device(2)], patch=failing_insert),
        ),
        id="internal-insert",
    ),
    pytest.param(
        Case(
            "E_INTERNAL",
            INTERNAL_MESSAGE,
            signed([{}], action="04", patch=failing("tzsb.store.records.select_records")),
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
        assert len(busilist) > pipeline._DIGESTS_ASIDE_BYTES


@pytest.mark.parametrize("case", CASES)
def test_refused_request(node: Node, monkeypatch: pytest.MonkeyPatch, case: Case) -> None:
    sent = case.prepare(node, monkeypatch)
    before = snapshot(node)
    logged = log_rows(node)

    answer = call(node, sent.payload, sent.content_type)

    datalist = answer["datalist"]
    assert datalist["result"] == "0000"
    assert datalist["code"] == case.code
    assert datalist["message"] == case.message
    if case.details is None:
        assert "busilist" not in datalist
    else:
        assert normalised(datalist["busilist"]) == normalised(case.details)
    assert set(answer) == {"appid", "busicode", "datalist", "random", "sign"}
    monkeypatch.undo()
    assert snapshot(node) == before
    new_rows = log_rows(node)[len(logged) :]
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
