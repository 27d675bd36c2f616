"""No masked answer lets its reader rebuild a masked value from the other fields of the same answer.

The attacker here reads one masked record and tries, for every masked value, to fill the hidden part
from what the rest of the record shows: an ID number's eight hidden digits (the birth date) from any
date-like or digit form, a phone's digits, a name or its given name, an address's street part, a
fully hidden text copied elsewhere. Records are every business type's valid rule-set cases and
records hypothesis derives from them: other ID numbers (valid check digits, matching birth date and
sex), other mobiles, and sensitive values echoed into other text fields, as real data does (a
certificate number that is the holder's ID number, a mobile as the mailbox name, a sole trader's
name inside the unit name).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.support import body, call, grant
from tzsb.app import Node
from tzsb.catalog import BusinessType, FieldType, load_catalog
from tzsb.exchange.masking import MASKERS, masker
from tzsb.rules import shipped_rule_sets

CATALOG: Final = load_catalog()
RULE_SETS: Final = shipped_rule_sets()
VALID: Final = [(code, index, dict(case)) for code in CATALOG for index, case in enumerate(RULE_SETS[code].valid_cases)]

_ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_DIGIT_RUN: Final = re.compile(r"[0-9]+")
_SEPARATED_DATE: Final = re.compile(r"(?<![0-9])([0-9]{4})([-/.])([0-9]{1,2})\2([0-9]{1,2})(?![0-9])")
_CHINESE_DATE: Final = re.compile(r"([0-9]{4})\s*年\s*([0-9]{1,2})\s*月\s*([0-9]{1,2})\s*日")
_NAME_SEPARATORS: Final = re.compile(r"[,，、;；\s]+")


def id_number(area: str, born: date, order: int) -> str:
    """A GB 11643 ID number with a valid check digit."""
    first17 = f"{area}{born:%Y%m%d}{order:03d}"
    return (
        first17
        + "10X98765432"[sum(int(digit) * weight for digit, weight in zip(first17, _ID_WEIGHTS, strict=True)) % 11]
    )


def _digits(text: str) -> str:
    return "".join(character for character in text if character.isdigit())


def _date_candidates(text: str) -> set[str]:
    """Every 8-digit stretch of ``text`` and every written date in it, as YYYYMMDD."""
    found: set[str] = set()
    for run in _DIGIT_RUN.findall(text):
        found.update(run[start : start + 8] for start in range(len(run) - 7))
    for match in _SEPARATED_DATE.finditer(text):
        found.add(f"{match[1]}{int(match[3]):02d}{int(match[4]):02d}")
    for match in _CHINESE_DATE.finditer(text):
        found.add(f"{match[1]}{int(match[2]):02d}{int(match[3]):02d}")
    return found


def _hidden(value: str, masked: str) -> str:
    """The characters of ``value`` a same-length mask replaced with ``*``."""
    if len(value) != len(masked):
        return ""
    return "".join(original for original, shown in zip(value, masked, strict=True) if shown == "*" and original != "*")


def rebuilds(business: BusinessType, original: dict[str, Any], masked: dict[str, Any]) -> list[str]:
    """How a reader of ``masked`` alone could rebuild a masked value: ``"ID_NO from BIRTH_DATE"``, …"""
    found: list[str] = []
    for spec in business.fields:
        value = original.get(spec.code)
        if not spec.sensitive or not isinstance(value, str) or not value:
            continue
        shown = str(masked.get(spec.code))
        if shown == value:
            found.append(f"{spec.code} not masked")
            continue
        others = {name: str(text) for name, text in masked.items() if name != spec.code and text is not None}
        for name, text in others.items():
            if _rebuilt_from(spec.mask or "all", value, shown, text):
                found.append(f"{spec.code} from {name}")
    return found


def _rebuilt_from(kind: str, value: str, shown: str, text: str) -> bool:
    if kind == "id_card":
        if value.upper() in text.upper():
            return True
        # The hidden eight digits are the birth date; the visible check digit would confirm a guess.
        return len(value) == 18 and value[6:14] in _date_candidates(text)
    if kind in ("mobile", "phone", "bank_card"):
        digits, hidden = _digits(value), _hidden(value, shown)
        return digits in _digits(text) or (len(hidden) >= 4 and hidden in _DIGIT_RUN.findall(text))
    if kind == "name":
        for name in (part for part in _NAME_SEPARATORS.split(value) if len(part) >= 2):
            given = name[1:]
            if name in text or (len(given) >= 2 and given in text):
                return True
        return False
    if kind == "address":
        hidden = value[len(shown.rstrip("*")) :]
        return value in text or (len(hidden) >= 4 and hidden in text)
    # A fully hidden text of three characters or fewer ("无", "轻伤") found elsewhere is a common word.
    return len(value) >= 4 and value in text


# ------------------------------------------------------------------ the rule sets' valid cases


@pytest.mark.parametrize(("code", "index", "record"), VALID, ids=[f"{code}-{index}" for code, index, _ in VALID])
def test_no_valid_case_can_be_rebuilt_from_its_masked_answer(code: str, index: int, record: dict[str, Any]) -> None:
    business = CATALOG[code]
    assert rebuilds(business, record, masker(business)(record)) == []


@pytest.mark.parametrize(("code", "index", "record"), VALID, ids=[f"{code}-{index}" for code, index, _ in VALID])
def test_masking_a_valid_case_changes_only_its_sensitive_fields(code: str, index: int, record: dict[str, Any]) -> None:
    """The echo search finds nothing in ordinary records: no unit name or date is masked by chance."""
    business = CATALOG[code]
    masked = masker(business)(record)
    changed = [name for name in record if masked[name] != record[name]]
    assert changed == [name for name in record if name in business.sensitive_fields]


@pytest.mark.parametrize(
    ("value", "text", "shown"),
    [
        ("13867152308", "手机 138 6715 2308", "手机 138******2308"),
        ("13867152308", "138-6715-2308", "138******2308"),
        ("0571-88731256", "电话057188731256转8", "电话057*****1256转8"),
        ("13867152308", "2013867152308", "20138****2308"),
    ],
)
def test_a_phone_is_found_however_it_is_grouped(value: str, text: str, shown: str) -> None:
    record = {**_case("0102"), "CONTACT_PHONE": value, "BUSINESS_SCOPE": text}
    assert masker(CATALOG["0102"])(record)["BUSINESS_SCOPE"] == shown


def test_every_business_type_has_valid_cases_to_check() -> None:
    assert {code for code, _, _ in VALID} == set(CATALOG)


def test_the_reported_answer_hides_the_birth_date() -> None:
    """The issue's answer: ``"ID_NO":"330106********0319"`` beside ``"BIRTH_DATE":"1985-03-12"``."""
    record = dict(RULE_SETS["0103"].valid_cases[0])
    masked = masker(CATALOG["0103"])(record)
    assert masked["ID_NO"] == "330106********0319"
    assert masked["BIRTH_DATE"] == "******"
    # Sex stays: the mask shows the ID's 17th digit (odd: male) anyway, so it adds nothing.
    assert masked["SEX"] == record["SEX"] == "1"


def test_the_attacker_rebuilds_what_masking_only_the_sensitive_fields_leaves() -> None:
    """The attacker has teeth: masking the sensitive fields alone (the old masker) leaves the ID rebuildable."""
    business = CATALOG["0103"]
    record = dict(RULE_SETS["0103"].valid_cases[0])
    naive = dict(record)
    for spec in business.fields:
        if spec.sensitive and not spec.reveals and spec.code in record:
            naive[spec.code] = MASKERS[spec.mask or "all"](record[spec.code])
    assert rebuilds(business, record, naive) == ["ID_NO from BIRTH_DATE", "BIRTH_DATE not masked"]


# ------------------------------------------------------------------ sensitive values echoed elsewhere


def _case(code: str, index: int = 0) -> dict[str, Any]:
    return dict(RULE_SETS[code].valid_cases[index])


ECHOES: Final = [
    # Legacy operator certificates are numbered with the holder's ID number.
    ("0211", lambda record: {**record, "CERT_NO": record["ID_NO"]}, "CERT_NO", "330602********013X"),
    ("0210", lambda record: {**record, "CERT_NO": record["ID_NO"]}, "CERT_NO", "330212********0424"),
    ("0103", lambda record: {**record, "QUAL_CERT_NO": record["ID_NO"]}, "QUAL_CERT_NO", "330106********0319"),
    # A mobile as the mailbox name.
    (
        "0102",
        lambda record: {**record, "CONTACT_PHONE": "13867152308", "EMAIL": "13867152308@163.com"},
        "EMAIL",
        "138****2308@163.com",
    ),
    # A sole trader's unit name is its operator's name.
    (
        "0102",
        lambda record: {**record, "UNIT_NAME": "杭州市余杭区周海涛电梯维修部"},
        "UNIT_NAME",
        "杭州市余杭区周**电梯维修部",
    ),
    # A birth date written out in a free-text field beside a masked ID number.
    (
        "0210",
        lambda record: {**record, "QUAL_ITEM": "压力容器检验（1990年07月18日生）"},
        "QUAL_ITEM",
        "压力容器检验（***********生）",
    ),
    # Casualty details copied into the summary.
    (
        "0500",
        lambda record: {**record, "ACCIDENT_SUMMARY": record["CASUALTY_DETAILS"]},
        "ACCIDENT_SUMMARY",
        "******",
    ),
]


@pytest.mark.parametrize(("code", "change", "field", "shown"), ECHOES, ids=[echo[2] for echo in ECHOES])
def test_a_sensitive_value_echoed_in_another_field_is_masked_there(
    code: str, change: Any, field: str, shown: str
) -> None:
    business = CATALOG[code]
    record = change(_case(code))
    masked = masker(business)(record)
    assert masked[field] == shown
    assert rebuilds(business, record, masked) == []


# ------------------------------------------------------------------ generated records


_BORN: Final = st.dates(date(1940, 1, 1), date(2005, 12, 31))
_MOBILE: Final = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)


def _free_text_fields(business: BusinessType) -> list[str]:
    """String fields with no pattern or code list: where a source writes whatever it has."""
    return [
        spec.code
        for spec in business.fields
        if spec.type is FieldType.STRING and not spec.pattern and not spec.codes and not spec.sensitive
    ]


def _echo_forms(kind: str, value: str) -> list[str]:
    """How a sensitive value shows up written into another field."""
    if kind == "id_card" and len(value) == 18:
        year, month, day = value[6:10], value[10:12], value[12:14]
        return [value, f"{year}年{month}月{day}日", f"{year}年{int(month)}月{int(day)}日", f"{year}/{month}/{day}"]
    if kind in ("mobile", "phone"):
        return [value, f"{value}@163.com"]
    if kind == "name":
        return [part for part in _NAME_SEPARATORS.split(value) if len(part) >= 2]
    return [value] if len(value) >= 4 else []


@st.composite
def generated_records(draw: st.DrawFn) -> tuple[BusinessType, dict[str, Any]]:
    code, _, case = draw(st.sampled_from(VALID))
    business = CATALOG[code]
    record = dict(case)
    others = " ".join(str(value) for name, value in case.items() if name not in business.sensitive_fields)
    for spec in business.fields:
        value = record.get(spec.code)
        if not spec.sensitive or not isinstance(value, str):
            continue
        if spec.mask == "id_card" and len(value) == 18:
            born, order = draw(_BORN), draw(st.integers(0, 999))
            # A birth date that some unrelated field happens to hold is a coincidence, not a derivation.
            assume(f"{born:%Y%m%d}" not in _date_candidates(others))
            record[spec.code] = id_number(value[:6], born, order)
            if spec.code == "ID_NO":
                if "BIRTH_DATE" in business.by_code:
                    record["BIRTH_DATE"] = f"{born:%Y-%m-%d}"
                if "SEX" in record:
                    record["SEX"] = "1" if order % 2 else "2"
        elif spec.mask in ("mobile", "phone") and draw(st.booleans()):
            record[spec.code] = draw(_MOBILE)
    # Four hidden digits that another field happens to show as a number of their own (a year, an ID
    # number's visible tail) are a coincidence, not a derivation.
    shown = set(_DIGIT_RUN.findall(others))
    for spec in business.fields:
        value = record.get(spec.code)
        if spec.sensitive and isinstance(value, str):
            shown.update((value[:3], value[:6], value[-4:]))
    for spec in business.fields:
        value = record.get(spec.code)
        if spec.mask in ("mobile", "phone") and isinstance(value, str) and len(value) == 11:
            assume(value[3:7] not in shown)
    sources = [
        (spec.mask or "all", record[spec.code])
        for spec in business.fields
        if spec.sensitive and isinstance(record.get(spec.code), str) and record[spec.code]
    ]
    targets = _free_text_fields(business)
    for _ in range(draw(st.integers(0, 2))):
        if not sources or not targets:
            break
        kind, value = draw(st.sampled_from(sources))
        forms = _echo_forms(kind, value)
        if not forms:
            continue
        echo, target = draw(st.sampled_from(forms)), draw(st.sampled_from(targets))
        record[target] = echo if draw(st.booleans()) else f"{record.get(target) or ''}（{echo}）"
    return business, record


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(generated=generated_records())
def test_no_generated_record_can_be_rebuilt_from_its_masked_answer(
    generated: tuple[BusinessType, dict[str, Any]],
) -> None:
    business, record = generated
    assert rebuilds(business, record, masker(business)(record)) == []


# ------------------------------------------------------------------ through the node


def _query(node: Node, appid: str, secret: str, busicode: str) -> list[dict[str, Any]]:
    answer = call(node, body(appid, secret, busicode, "04", [{}]))
    assert answer["datalist"]["result"] == "0001", answer
    records: list[dict[str, Any]] = answer["datalist"]["busilist"]
    return records


def test_a_masked_or_public_answer_on_0103_hides_the_birth_date(node: Node) -> None:
    person = _case("0103")
    writer = grant(node, appid="writer")
    assert call(node, body("writer", writer, "140103", "01", [person]))["datalist"]["result"] == "0001"

    reader = grant(node, appid="reader", unmasked=frozenset())
    public = grant(node, appid="portal", level="public", busicodes=frozenset({"310103"}), actions=frozenset({"04"}))
    for appid, secret, busicode in (("reader", reader, "140103"), ("portal", public, "310103")):
        (record,) = _query(node, appid, secret, busicode)
        assert record["ID_NO"] == "330106********0319", appid
        assert record["BIRTH_DATE"] == "******", appid
        assert rebuilds(CATALOG["0103"], person, record) == [], appid

    (record,) = _query(node, "writer", writer, "140103")
    assert record == person
