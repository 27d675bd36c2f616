"""Sensitive fields are masked in answers: always for purpose 31, otherwise unless granted `unmasked`."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import body, call, device, grant
from tzsb import refusals
from tzsb.app import Node
from tzsb.catalog import load_catalog
from tzsb.errors import ExchangeError
from tzsb.exchange.masking import MASKERS, _number, masker

PERSON = {
    "ID_NO": "11010519491231002X",
    "PERSON_NAME": "欧阳娜娜",
    "MOBILE": "13812345678",
    "AREA_CODE": "330106",
    "UPDATE_TIME": "2026-11-01 10:00:00",
}


@pytest.mark.parametrize(
    ("kind", "value", "masked"),
    [
        ("id_card", "11010519491231002X", "110105********002X"),
        ("mobile", "13812345678", "138****5678"),
        ("name", "张三", "张*"),
        ("name", "欧阳娜娜", "欧***"),
        ("name", "张三、李四", "张*、李*"),
        ("address", "浙江省杭州市西湖区文三路1号", "浙江省杭州市西湖区****"),
        ("address", "浙江省义乌市稠州北路88号", "浙江省义乌市****"),
        ("address", "广西壮族自治区南宁市青秀区民族大道", "广西壮族自治区南宁市青秀区****"),
        ("bank_card", "6222021234567890123", "622202*********0123"),
        ("all", "重伤 2 人：王某某", "******"),
        ("mobile", "138", "***"),
    ],
)
def test_masking_patterns(kind: str, value: str, masked: str) -> None:
    assert MASKERS[kind](value) == masked


def test_every_sensitive_field_of_the_catalog_has_a_mask() -> None:
    catalog = load_catalog()
    for code in catalog:
        for spec in catalog[code].fields:
            if spec.sensitive:
                assert spec.mask in MASKERS, (code, spec.code)
        # A different value per field, so that no field echoes another's (echoes are masked too).
        record = {spec.code: f"{spec.code}值{index:03d}" for index, spec in enumerate(catalog[code].fields)}
        masked = masker(catalog[code])(record)
        assert [name for name in record if masked[name] != record[name]] == list(catalog[code].sensitive_fields)


def query(node: Node, appid: str, secret: str, busicode: str, conditions: dict[str, str]) -> list[dict[str, str]]:
    answer = call(node, body(appid, secret, busicode, "04", [conditions]))
    assert answer["datalist"]["result"] == "0001", answer
    records: list[dict[str, str]] = answer["datalist"]["busilist"]
    return records


def test_answers_are_masked_unless_granted(node: Node) -> None:
    writer = grant(node, appid="writer")
    assert call(node, body("writer", writer, "140101", "01", [device(1)]))["datalist"]["result"] == "0001"
    assert call(node, body("writer", writer, "140103", "01", [PERSON]))["datalist"]["result"] == "0001"

    masked_reader = grant(node, appid="reader", unmasked=frozenset())
    (record,) = query(node, "reader", masked_reader, "140101", {})
    assert record["SAFETY_MANAGER"] == "张*"
    assert record["SAFETY_MANAGER_PHONE"] == "138****8000"
    assert record["USE_UNIT_NAME"] == device(1)["USE_UNIT_NAME"]
    (person,) = query(node, "reader", masked_reader, "140103", {})
    assert person == {**PERSON, "ID_NO": "110105********002X", "PERSON_NAME": "欧***", "MOBILE": "138****5678"}

    (record,) = query(node, "writer", writer, "140101", {})
    assert record == device(1)


def test_public_purpose_is_always_masked(node: Node) -> None:
    writer = grant(node, appid="writer")
    call(node, body("writer", writer, "140101", "01", [device(1)]))
    public = grant(
        node,
        appid="portal",
        level="public",
        busicodes=frozenset({"310101"}),
        actions=frozenset({"04"}),
        unmasked=frozenset({"0101"}),
    )
    (record,) = query(node, "portal", public, "310101", {"EQP_CODE": device(1)["EQP_CODE"]})
    assert record["SAFETY_MANAGER_PHONE"] == "138****8000"


@pytest.mark.parametrize(
    ("busicode", "condition", "refusal"),
    [
        (
            "140101",
            {"SAFETY_MANAGER_PHONE": "13800138000"},
            refusals.query_by_sensitive_field("SAFETY_MANAGER_PHONE", "安全管理员联系电话"),
        ),
        ("140103", {"ID_NO": "11010519491231002X"}, refusals.query_by_sensitive_field("ID_NO", "身份证号码")),
        # A birth date is the ID number's hidden middle: probing it would rebuild the ID number.
        ("140103", {"BIRTH_DATE": "1949-12-31"}, refusals.query_by_sensitive_field("BIRTH_DATE", "出生日期")),
    ],
)
def test_a_masked_app_cannot_probe_sensitive_values(
    node: Node, busicode: str, condition: dict[str, str], refusal: ExchangeError
) -> None:
    writer = grant(node, appid="writer")
    call(node, body("writer", writer, "140103", "01", [PERSON]))
    reader = grant(node, appid="reader", unmasked=frozenset())
    answer = call(node, body("reader", reader, busicode, "04", [condition]))
    assert answer["datalist"] == {"result": "0000", "message": refusal.message, "code": refusal.code.value}
    (record,) = query(node, "writer", writer, "140103", {"ID_NO": PERSON["ID_NO"]})
    assert record == PERSON


@settings(max_examples=300)
@given(
    st.text(alphabet=st.characters(exclude_categories=()), max_size=60)
    | st.from_regex(r"[0-9Xx\- 年月日号A-Z张]{0,30}")
)
def test_the_digits_of_a_text_are_its_ascii_digits_and_x_in_order(text: str) -> None:
    # The echo search compares digit strings; bytes.translate must keep exactly what [^0-9Xx] removal keeps
    # (lone surrogates included: no JSON parser here lets one in, but the masker must not fail on one).
    assert _number(text) == re.sub(r"[^0-9Xx]+", "", text).upper()


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(st.text(max_size=30), st.text(alphabet="张三李四·, 、;；\t0123456789", max_size=12)))
def test_shortcuts_for_one_name_and_a_plain_number_change_no_mask(value: str) -> None:
    """A single name and an all-digit number skip the regular expression and the byte filter; any
    text is masked and searched for as the general path does it."""
    parts = [part for part in re.split(r"[,，、;；\s]+", value) if part]
    assert MASKERS["name"](value) == "、".join(part[:1] + "*" * max(len(part) - 1, 1) for part in parts)
    assert _number(value) == re.sub(r"[^0-9Xx]", "", value).upper()
