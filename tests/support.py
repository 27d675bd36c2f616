"""Shared test helpers: sample records, request building, expected refusals, and store inspection."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import sqlalchemy as sa
from hypothesis import strategies as st

from tzsb.app import Node
from tzsb.client import build_request
from tzsb.errors import RecordFault
from tzsb.protocol.signing import SignAlgorithm
from tzsb.registry import AppSpec
from tzsb.store.schema import interaction_log, masked_copies, nonces, records

#: JSON values as orjson parses them (64-bit integers, finite floats): strings with quotes, escapes,
#: control characters, any plane; nested lists and objects.
JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)

DEVICE: dict[str, Any] = {
    "EQP_CODE": "31103301052014080025",
    "EQP_TYPE": "3000",
    "EQP_SORT": "3100",
    "EQP_VART": "3110",
    "EQP_NAME": "曳引驱动乘客电梯",
    "USE_UNIT_NAME": "杭州某某物业管理有限公司",
    "USE_UNIT_CODE": "91110000600037341L",
    "USE_ADDRESS": "杭州市西湖区文三路1号",
    "AREA_CODE": "330106",
    "USE_STATUS": "2",
    "SAFETY_MANAGER": "张三",
    "SAFETY_MANAGER_PHONE": "13800138000",
    "UPDATE_TIME": "2026-11-01 10:00:00",
}


def device(number: int = 0, **changes: Any) -> dict[str, Any]:
    """A valid 0101 record; ``number`` varies the key (and so the record)."""
    record = copy.deepcopy(DEVICE)
    # 品种 3110 + registration area 330106 + year 2015 + serial: a well-formed 19-character 设备代码.
    record["EQP_CODE"] = f"31103301062015{number:05d}"
    record.update(changes)
    return {name: value for name, value in record.items() if value is not None}


ALL_ACTIONS = frozenset({"01", "02", "03", "04"})


def grant(
    node: Node,
    appid: str = "hz-city",
    region: str = "330100",
    busicodes: frozenset[str] = frozenset({"140101", "140102", "140103"}),
    actions: frozenset[str] = ALL_ACTIONS,
    sign: SignAlgorithm = SignAlgorithm.MD5,
    **options: Any,
) -> str:
    """Register an app on ``node``; returns its secret. Answers are unmasked unless ``unmasked`` says otherwise."""
    options.setdefault("unmasked", frozenset({"0101", "0102", "0103"}))
    _, secret = node.registry.create(
        AppSpec(appid=appid, region=region, busicodes=busicodes, actions=actions, sign_algorithm=sign, **options)
    )
    return secret


def body(
    appid: str,
    secret: str,
    busicode: str,
    action: str,
    busilist: list[dict[str, Any]],
    random: str | None = None,
    sign: SignAlgorithm = SignAlgorithm.MD5,
) -> bytes:
    return orjson.dumps(build_request(appid, secret, sign, busicode, action, busilist, random))


def placeholder_faults(count: int) -> list[RecordFault]:
    """``count`` record faults for building an expected refusal whose message counts its records
    (``refusals.records_not_found`` …): only their number shows in the message."""
    return [RecordFault(index) for index in range(count)]


def call(
    node: Node, payload: bytes, content_type: str = "application/json", client_addr: str = "127.0.0.1"
) -> dict[str, Any]:
    """Send a body through the node's pipeline (no HTTP) and parse the answer."""
    answer: dict[str, Any] = orjson.loads(node.exchange.handle(payload, content_type, client_addr))
    return answer


def snapshot(node: Node) -> dict[str, Any]:
    """Everything a request may write, except the log: to prove that a refusal wrote nothing."""
    with node.store.read() as connection:
        rows = connection.execute(sa.select(records).order_by(records.c.business, records.c.record_key)).all()
        claimed = connection.execute(sa.select(nonces.c.appid, nonces.c.random)).all()
        counter = connection.execute(sa.text("SELECT last_seq FROM change_counter")).scalar_one()
        copies = connection.execute(sa.select(masked_copies).order_by(masked_copies.c.record_key)).all()
    return {
        "records": [tuple(row) for row in rows],
        "nonces": sorted(map(tuple, claimed)),
        "seq": counter,
        "masked_copies": [tuple(row) for row in copies],
    }


#: Refusals that never become the first answer of their random.
NOT_CLAIMED = ("E_INTERNAL", "E_REPLAY", "E_LIMIT", "E_DISABLED", "E_UPSTREAM")


def claimed(before: dict[str, Any], answer: dict[str, Any] | None) -> dict[str, Any]:
    """``before`` (a ``snapshot``) as it is after ``answer``'s random was claimed (None: nothing claimed)."""
    if answer is None:
        return before
    spent = (answer["appid"], answer["random"])
    # A random claimed before (by another request) stays as it was.
    return {**before, "nonces": sorted({*before["nonces"], spent})}


def tallied(node: Node, client_addr: str | None = None) -> list[tuple[str, int, str]]:
    """The refusals of unidentified callers counted so far (from one address, or all): (address,
    count, last code) per row."""
    return [
        (tally.client_addr, tally.count, tally.last_code)
        for tally in node.exchange.answers.tally.listing()
        if client_addr in (None, tally.client_addr)
    ]


def unidentified(answer: dict[str, Any]) -> bool:
    """Whether ``answer`` refused a caller that never proved who it is (counted, not logged, nothing
    claimed): unsigned, and neither a failed signature nor an internal error (those are logged)."""
    return answer["sign"] == "" and answer["datalist"].get("code") not in ("E_SIGN", "E_INTERNAL")


def log_rows(node: Node) -> list[dict[str, Any]]:
    with node.store.read() as connection:
        return [
            dict(row._mapping) for row in connection.execute(sa.select(interaction_log).order_by(interaction_log.c.id))
        ]
