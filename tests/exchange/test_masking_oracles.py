"""A masked answer tells nothing about a masked key through the order of its records or through
which values a query may be asked for.

Two probes a masked app could otherwise run: add records of keys it chooses beside a masked one
and see on which side they land (a binary search on the ID number's eight hidden digits), and
query a key (a certificate number that is its holder's ID number) with guessed ID numbers.
"""

from __future__ import annotations

from typing import Any, Final

import pytest
from stdnum.cn import ric

from tests.exchange.test_masking import PERSON
from tests.store.test_keyset import _dataset, _filled, _plans
from tests.support import body, call, grant
from tzsb import refusals
from tzsb.app import Node
from tzsb.exchange.masking import MASKERS
from tzsb.rules import shipped_rule_sets
from tzsb.store import RecordQuery

CERT_HOLDER: Final = dict(shipped_rule_sets()["0210"].valid_cases[0])
UNMASKED: Final = frozenset({"0101", "0103", "0210", "0211"})
BUSICODES: Final = frozenset({"140101", "140103"})
#: 0210 and 0211 flow between the province and the nation only: a national app writes with purpose 13
#: (national→province) and queries with purpose 12 (province→national).
NATIONAL: Final = {
    "level": "national",
    "busicodes": frozenset({f"{purpose}{code}" for purpose in ("12", "13") for code in UNMASKED}),
}


def id_number(born: str, order: int, area: str = "330106") -> str:
    """A valid ID number (GB 11643 check digit); ``order`` tells masked numbers apart (their last 4)."""
    first17 = f"{area}{born}{order:03d}"
    return first17 + ric.calc_check_digit(first17 + "0")


def person(id_no: str) -> dict[str, Any]:
    return {**PERSON, "ID_NO": id_no}


def answer_of(node: Node, appid: str, secret: str, busicode: str, conditions: dict[str, Any]) -> dict[str, Any]:
    datalist: dict[str, Any] = call(node, body(appid, secret, busicode, "04", [conditions]))["datalist"]
    return datalist


def ids(node: Node, appid: str, secret: str, conditions: dict[str, Any], busicode: str = "140103") -> list[str]:
    datalist = answer_of(node, appid, secret, busicode, conditions)
    assert datalist["result"] == "0001", datalist
    return [record["ID_NO"] for record in datalist["busilist"]]


def add(node: Node, appid: str, secret: str, busicode: str, records: list[dict[str, Any]]) -> None:
    datalist = call(node, body(appid, secret, busicode, "01", records))["datalist"]
    assert datalist["result"] == "0001", datalist


def apps(node: Node, **options: Any) -> tuple[str, str]:
    """The secrets of "writer" (unmasked) and "reader" (masked), both over Hangzhou unless told."""
    options.setdefault("busicodes", BUSICODES)
    writer = grant(node, appid="writer", unmasked=UNMASKED, **options)
    reader = grant(node, appid="reader", unmasked=frozenset(), **options)
    return writer, reader


#: Added in this order, one request each; their keys sort in another.
BORN: Final = ("19900101", "19600505", "19851231", "19500707", "19701111")


def test_masked_pages_follow_the_order_of_writes_not_the_keys(node: Node) -> None:
    writer, reader = apps(node)
    added = [id_number(born, index + 1) for index, born in enumerate(BORN)]
    for id_no in added:
        add(node, "writer", writer, "140103", [person(id_no)])
    masked = [MASKERS["id_card"](id_no) for id_no in added]
    assert sorted(added) != added

    assert ids(node, "reader", reader, {}) == masked
    # Page by page through the cursor: every record once, in the same order.
    paged: list[str] = []
    conditions: dict[str, Any] = {"_page_size": "1"}
    while True:
        datalist = answer_of(node, "reader", reader, "140103", conditions)
        assert datalist["result"] == "0001", datalist
        paged += [record["ID_NO"] for record in datalist["busilist"]]
        if datalist["next_cursor"] is None:
            break
        conditions = {"_page_size": "1", "_cursor": datalist["next_cursor"]}
    assert paged == masked
    # A deleted record (asked for) keeps to the same order; the unmasked app still pages by key.
    assert ids(node, "reader", reader, {"_include_deleted": True}) == masked
    assert ids(node, "writer", writer, {}) == sorted(added)


def test_a_cursor_of_one_order_is_no_cursor_of_the_other(node: Node) -> None:
    writer, reader = apps(node)
    for index, born in enumerate(BORN):
        add(node, "writer", writer, "140103", [person(id_number(born, index + 1))])
    refusal = refusals.cursor_of_other_conditions()
    masked_cursor = answer_of(node, "reader", reader, "140103", {"_page_size": "2"})["next_cursor"]
    plain_cursor = answer_of(node, "writer", writer, "140103", {"_page_size": "2"})["next_cursor"]
    for appid, secret, cursor in (("writer", writer, masked_cursor), ("reader", reader, plain_cursor)):
        datalist = answer_of(node, appid, secret, "140103", {"_page_size": "2", "_cursor": cursor})
        assert (datalist["result"], datalist["message"]) == ("0000", refusal.message), datalist


def test_probe_records_do_not_tell_where_a_masked_key_lies(node: Node) -> None:
    writer, reader = apps(node)
    target = id_number("19850312", 31)
    add(node, "writer", writer, "140103", [person(target)])
    hidden = MASKERS["id_card"](target)

    def target_below(probe_born: str, order: int) -> bool:
        """The attacker's question: does the target come before a probe of its own choosing?"""
        probe = id_number(probe_born, order)
        add(node, "reader", reader, "140103", [person(probe)])
        seen = ids(node, "reader", reader, {"_region": "330106"})
        return seen.index(hidden) < seen.index(MASKERS["id_card"](probe))

    # Probes above and below the target, added in either order: the answer never follows the keys.
    answers = [target_below("20000101", 900), target_below("19500101", 901), target_below("19850313", 902)]
    answers.append(target_below("19850311", 903))
    assert answers == [True, True, True, True]
    # Nor does the order among the probes themselves follow their keys: they come as written.
    seen = ids(node, "reader", reader, {})
    assert [item[14:17] for item in seen] == ["031", "900", "901", "902", "903"]


@pytest.mark.parametrize(
    ("busicode", "condition"),
    [
        ("120210", {"CERT_NO": CERT_HOLDER["ID_NO"]}),
        ("120211", {"CERT_NO": "11010519491231002x"}),
        ("120210", {"UNIT_CODE": "13906581274"}),
        ("120103", {"QUAL_CERT_NO": "11010519491231002X"}),
        ("120101", {"USE_UNIT_NAME": "+8613800138000"}),
    ],
)
def test_a_masked_app_cannot_query_by_an_id_or_mobile_number(
    node: Node, busicode: str, condition: dict[str, str]
) -> None:
    writer, reader = apps(node, **NATIONAL)
    holder = {**CERT_HOLDER, "CERT_NO": CERT_HOLDER["ID_NO"]}
    add(node, "writer", writer, "130210", [holder])
    datalist = answer_of(node, "reader", reader, busicode, condition)
    assert (datalist["result"], datalist["code"]) == ("0000", "E_FORBIDDEN"), datalist
    name = next(iter(condition))
    assert name in datalist["message"]
    # The unmasked app may ask, and finds the certificate numbered by its holder's ID number.
    allowed = answer_of(node, "writer", writer, busicode, condition)
    assert allowed["result"] == "0001", allowed
    if condition == {"CERT_NO": CERT_HOLDER["ID_NO"]}:
        assert allowed["busilist"] == [holder]


def test_a_masked_app_may_still_query_ordinary_values(node: Node) -> None:
    writer, reader = apps(node, **NATIONAL)
    add(node, "writer", writer, "130210", [CERT_HOLDER])
    for condition in (
        {"CERT_NO": CERT_HOLDER["CERT_NO"]},
        {"UNIT_CODE": CERT_HOLDER["UNIT_CODE"]},
        {"CERT_NO": "110105194912310021"},  # 18 digits, wrong check digit
        {"CERT_NO": "12812345678"},  # not a mobile prefix
    ):
        datalist = answer_of(node, "reader", reader, "120210", condition)
        assert datalist["result"] == "0001", (condition, datalist)
    (record,) = answer_of(node, "reader", reader, "120210", {"CERT_NO": CERT_HOLDER["CERT_NO"]})["busilist"]
    assert record["CERT_NO"] == CERT_HOLDER["CERT_NO"]
    assert record["ID_NO"] == MASKERS["id_card"](CERT_HOLDER["ID_NO"])


def test_every_write_ordered_page_walks_the_sequence_index(tmp_path: Any) -> None:
    """No sort of a region's rows per page (SQLite chose one for a first page without a position)."""
    rows = _dataset(3000)
    store = _filled(f"sqlite:///{tmp_path / 'plans.db'}", rows)
    try:
        queries = [
            RecordQuery("0101", region_prefixes=("33", "3301"), by_seq=True),
            RecordQuery("0101", region_prefixes=("33", "3301"), by_seq=True, after=(1500,)),
            RecordQuery("0101", region_prefixes=("33",), region="330106", by_seq=True),
            RecordQuery("0101", region_prefixes=("33",), region="330106", by_seq=True, after=(1500,)),
            RecordQuery("0101", region_prefixes=("33",), by_seq=True, include_deleted=True, after=(10,)),
        ]
        plans = _plans(store, queries)
    finally:
        store.dispose()
    assert len(plans) == len(queries)
    for statement, plan in plans:
        assert plan == ["SEARCH records USING INDEX ix_records_seq (business=? AND seq>?)"], (statement, plan)
