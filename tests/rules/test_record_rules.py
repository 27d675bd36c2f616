"""Record rules (issue 3, "Rules"): every configurable rule type, its exact ids and messages, its edge
cases, bad configuration, severities, switched-off rules and the ``reference`` lookup.

Field rules of the catalog (required, type, length, pattern, code list) have their own tests in
test_validator.py; they appear here only where a record rule meets them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tzsb.catalog import Catalog, load_catalog
from tzsb.clock import BEIJING, FixedClock
from tzsb.errors import ConfigurationError, RecordFault
from tzsb.rules import NaturalKeyHolder
from tzsb.rules import validator as validator_module
from tzsb.rules.base import RuleContext
from tzsb.rules.contract import RelatedRecord
from tzsb.rules.record_rules import RECORD_RULE_TYPES, related_state
from tzsb.rules.ruleset import shipped_rule_sets
from tzsb.rules.validator import RecordValidator

CATALOG: Final[Catalog] = load_catalog()
SHIPPED: Final = shipped_rule_sets()
#: The first valid case of each shipped rule set: a record every catalog field rule accepts.
BASE: Final[dict[str, dict[str, Any]]] = {code: dict(rule_set.valid_cases[0]) for code, rule_set in SHIPPED.items()}
FIELD_RULE_IDS: Final = {"required", "type", "length", "pattern", "code_list", "unknown_field", "duplicate_key"}


def dicts(faults: Sequence[RecordFault]) -> list[dict[str, Any]]:
    """Record faults in their answer shape, ``{"index", "key", "errors"|"warnings": [...]}``."""
    return [fault.as_dict() for fault in faults]


def build(code: str, *rules: Mapping[str, Any], clock: FixedClock, **options: Any) -> RecordValidator:
    return RecordValidator(CATALOG[code], list(rules), clock=clock, **options)


def record(code: str, **changes: Any) -> dict[str, Any]:
    """The base record of ``code`` with ``changes``; a change to ``...`` removes the field."""
    merged = {**BASE[code], **changes}
    return {name: value for name, value in merged.items() if value is not ...}


def found(validator: RecordValidator, data: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Every violation as (field, rule, message), sorted: the order within a record is not the contract."""
    return sorted((v.field, v.rule, v.message) for v in validator.violations(data))


def by_rule(validator: RecordValidator, data: Mapping[str, Any], rule: str) -> list[tuple[str, str]]:
    return [(v.field, v.message) for v in validator.violations(data) if v.rule == rule]


def entry(index: int, key: str | None, kind: str, *faults: tuple[str, str, str]) -> dict[str, Any]:
    """One record's details as ``check_batch`` reports them."""
    return {"index": index, "key": key, kind: [{"field": f, "rule": r, "message": m} for f, r, m in faults]}


def test_base_records_are_clean(clock: FixedClock) -> None:
    for code, data in BASE.items():
        validator = RecordValidator(CATALOG[code], SHIPPED[code].rules, clock=clock)
        assert [v for v in validator.violations(data) if v.severity == "error"] == [], code


def test_every_record_rule_type_is_registered() -> None:
    assert set(RECORD_RULE_TYPES) == {
        "code_by_kind",
        "grade_by_figures",
        "numeric_range",
        "related_state",
        "date_range",
        "compare",
        "required_if",
        "check_digit",
        "region_code",
        "equipment_code",
        "device_code",
        "reference",
    }
    # Only the foreign-key and the cross-record types ask the store; every other type checks the record alone.
    assert sorted(rule_type.id for rule_type in RECORD_RULE_TYPES.values() if rule_type.looks_up) == [
        "reference",
        "related_state",
    ]


# ================================================================== numeric_range

LIFE: Final = {"id": "life", "type": "numeric_range", "field": "DESIGN_LIFE", "min": 0, "max": 50}
LIFE_MESSAGE: Final = "设计使用年限（年）（DESIGN_LIFE）应在 0 … 50 范围内 / DESIGN_LIFE must lie within 0 … 50"
LONGITUDE: Final = {"id": "lon", "type": "numeric_range", "field": "LONGITUDE", "min": 73, "max": 136}
LONGITUDE_MESSAGE: Final = "经度（LONGITUDE）应在 73 … 136 范围内 / LONGITUDE must lie within 73 … 136"
LIFE_TYPE: Final = (
    "DESIGN_LIFE",
    "type",
    "设计使用年限（年）（DESIGN_LIFE）应为整数 / DESIGN_LIFE must be an integer",
)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (0, True),
        (50, True),
        (25, True),
        ("0", True),
        ("50", True),
        ("+50", True),
        ("050", True),
        (-1, False),
        (51, False),
        ("-1", False),
        ("51", False),
        (999, False),
    ],
)
def test_numeric_range_integer_numbers_and_numeric_strings(clock: FixedClock, value: Any, ok: bool) -> None:
    validator = build("0101", LIFE, clock=clock)
    assert found(validator, record("0101", DESIGN_LIFE=value)) == (
        [] if ok else [("DESIGN_LIFE", "life", LIFE_MESSAGE)]
    )


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (73, True),
        (136, True),
        ("136", True),
        ("136.0", True),
        (120.1551, True),
        ("120.1551", True),
        (".0", False),
        ("72.9999", False),
        (72.9999, False),
        ("136.0000001", False),  # compared exactly, not through binary floats
        (136.0000001, False),
        (-120, False),
    ],
)
def test_numeric_range_decimals_are_exact(clock: FixedClock, value: Any, ok: bool) -> None:
    validator = build("0101", LONGITUDE, clock=clock)
    expected = [] if ok else [("LONGITUDE", "lon", LONGITUDE_MESSAGE)]
    assert found(validator, record("0101", LONGITUDE=value)) == expected


@pytest.mark.parametrize("value", [..., None, "", "   ", "\u3000", "\t\n"])
def test_numeric_range_missing_or_blank_is_not_checked(clock: FixedClock, value: Any) -> None:
    assert found(build("0101", LIFE, clock=clock), record("0101", DESIGN_LIFE=value)) == []


@pytest.mark.parametrize(
    "value",
    ["abc", True, False, "NaN", "Infinity", "-Infinity", "sNaN", [1], {"n": 1}, "1,5"],
)
def test_numeric_range_leaves_non_numbers_to_the_type_rule(clock: FixedClock, value: Any) -> None:
    assert found(build("0101", LIFE, clock=clock), record("0101", DESIGN_LIFE=value)) == [LIFE_TYPE]


def test_numeric_range_does_not_read_full_width_digits(clock: FixedClock) -> None:
    assert found(build("0101", LIFE, clock=clock), record("0101", DESIGN_LIFE="-５")) == [LIFE_TYPE]


def test_numeric_range_surrounding_whitespace_is_rejected_by_the_type_rule(clock: FixedClock) -> None:
    validator = build("0101", LIFE, clock=clock)
    for value in (" 5 ", "5\u3000", " -1"):
        assert LIFE_TYPE in found(validator, record("0101", DESIGN_LIFE=value)), value


def test_numeric_range_with_one_bound(clock: FixedClock) -> None:
    at_least = build("0101", {"id": "min", "type": "numeric_range", "field": "FLOORS", "min": "1"}, clock=clock)
    at_most = build("0101", {"id": "max", "type": "numeric_range", "field": "FLOORS", "max": 200.5}, clock=clock)
    assert found(at_least, record("0101", FLOORS=0)) == [
        ("FLOORS", "min", "层数（FLOORS）应不小于 1 / FLOORS must be at least 1")
    ]
    assert found(at_least, record("0101", FLOORS=999)) == []
    assert found(at_most, record("0101", FLOORS=201)) == [
        ("FLOORS", "max", "层数（FLOORS）应不大于 200.5 / FLOORS must be at most 200.5")
    ]
    assert found(at_most, record("0101", FLOORS=-99)) == []


# ================================================================== date_range

MAKE_DATE: Final = {"id": "made", "type": "date_range", "field": "MAKE_DATE", "min": "1900-01-01", "not_future": True}
BEFORE_1900: Final = "制造日期（MAKE_DATE）不能早于 1900-01-01 / MAKE_DATE must not be before 1900-01-01"
MADE_FUTURE: Final = "制造日期（MAKE_DATE）不能晚于当前时间 / MAKE_DATE must not be in the future"
MAKE_DATE_TYPE: Final = (
    "MAKE_DATE",
    "type",
    "制造日期（MAKE_DATE）应为日期 YYYY-MM-DD / MAKE_DATE must be a date YYYY-MM-DD",
)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1900-01-01", None),
        ("2024-02-29", None),  # a leap day
        ("2000-02-29", None),
        ("2026-11-28", None),  # today, by the node's clock
        ("1899-12-31", BEFORE_1900),
        ("2026-11-29", MADE_FUTURE),
        ("2099-01-01", MADE_FUTURE),
    ],
)
def test_date_range_min_and_not_future(clock: FixedClock, value: str, message: str | None) -> None:
    validator = build("0101", MAKE_DATE, clock=clock)
    assert found(validator, record("0101", MAKE_DATE=value)) == (
        [] if message is None else [("MAKE_DATE", "made", message)]
    )


def test_date_range_impossible_leap_day_is_only_a_type_fault(clock: FixedClock) -> None:
    validator = build("0101", MAKE_DATE, clock=clock)
    assert found(validator, record("0101", MAKE_DATE="2023-02-29")) == [MAKE_DATE_TYPE]
    assert found(validator, record("0101", MAKE_DATE="1900-02-29")) == [MAKE_DATE_TYPE]


def test_not_future_follows_the_clock(clock: FixedClock) -> None:
    validator = build("0101", MAKE_DATE, clock=clock)
    tomorrow = record("0101", MAKE_DATE="2026-11-29")
    assert found(validator, tomorrow) == [("MAKE_DATE", "made", MADE_FUTURE)]
    clock.advance(timedelta(days=1))
    assert found(validator, tomorrow) == []  # given no reading, the validator reads its clock on every call


def test_not_future_with_times_to_the_second(clock: FixedClock) -> None:
    rule = {"id": "updated", "type": "date_range", "field": "UPDATE_TIME", "not_future": True}
    validator = build("0101", rule, clock=clock)
    message = "更新时间（UPDATE_TIME）不能晚于当前时间 / UPDATE_TIME must not be in the future"
    assert found(validator, record("0101", UPDATE_TIME="2026-11-28 09:30:00")) == []  # now exactly
    assert found(validator, record("0101", UPDATE_TIME="2026-11-28 09:30:01")) == [("UPDATE_TIME", "updated", message)]
    clock.advance(timedelta(seconds=1))
    assert found(validator, record("0101", UPDATE_TIME="2026-11-28 09:30:01")) == []


def test_not_future_is_judged_in_beijing_time() -> None:
    # 16:30 UTC on the 28th is 00:30 on the 29th in Beijing: the 29th is today, not the future.
    clock = FixedClock(datetime(2026, 11, 28, 16, 30, tzinfo=UTC))
    assert clock.now().tzinfo == BEIJING
    validator = build("0101", MAKE_DATE, clock=clock)
    assert found(validator, record("0101", MAKE_DATE="2026-11-29")) == []
    assert found(validator, record("0101", MAKE_DATE="2026-11-30")) == [("MAKE_DATE", "made", MADE_FUTURE)]


def test_date_range_max_on_dates_and_times(clock: FixedClock) -> None:
    dates = build("0101", {"id": "cap", "type": "date_range", "field": "MAKE_DATE", "max": "2030-12-31"}, clock=clock)
    assert found(dates, record("0101", MAKE_DATE="2030-12-31")) == []
    assert found(dates, record("0101", MAKE_DATE="2031-01-01")) == [
        ("MAKE_DATE", "cap", "制造日期（MAKE_DATE）不能晚于 2030-12-31 / MAKE_DATE must not be after 2030-12-31")
    ]
    # A date bound on a time field compares the date part: the last second of the day is in range.
    times = build("0101", {"id": "cap", "type": "date_range", "field": "UPDATE_TIME", "max": "2026-11-01"}, clock=clock)
    assert found(times, record("0101", UPDATE_TIME="2026-11-01 23:59:59")) == []
    assert found(times, record("0101", UPDATE_TIME="2026-11-02 00:00:00")) == [
        ("UPDATE_TIME", "cap", "更新时间（UPDATE_TIME）不能晚于 2026-11-01 / UPDATE_TIME must not be after 2026-11-01")
    ]


@pytest.mark.parametrize("value", [..., None, "", "  ", "\u3000"])
def test_date_range_missing_or_blank_is_not_checked(clock: FixedClock, value: Any) -> None:
    assert found(build("0101", MAKE_DATE, clock=clock), record("0101", MAKE_DATE=value)) == []


def test_date_range_leaves_non_strings_to_the_type_rule(clock: FixedClock) -> None:
    assert found(build("0101", MAKE_DATE, clock=clock), record("0101", MAKE_DATE=20991231)) == [MAKE_DATE_TYPE]


@pytest.mark.parametrize("value", ["abc", "２０２４-０１-０１", " 2024-01-01", "\u30002024-01-01"])
def test_date_range_leaves_non_dates_to_the_type_rule(clock: FixedClock, value: str) -> None:
    assert found(build("0101", MAKE_DATE, clock=clock), record("0101", MAKE_DATE=value)) == [MAKE_DATE_TYPE]


# ================================================================== compare

NEXT_AFTER_LAST: Final = {
    "id": "next-after-last",
    "type": "compare",
    "field": "NEXT_INSP_DATE",
    "op": ">",
    "other": "LAST_INSP_DATE",
}
NEXT_MESSAGE: Final = (
    "下次检验日期（NEXT_INSP_DATE）应晚于/大于最近检验日期（LAST_INSP_DATE） / "
    "NEXT_INSP_DATE must be greater than LAST_INSP_DATE"
)


@pytest.mark.parametrize(
    ("last", "following", "ok"),
    [
        ("2026-08-15", "2027-08-31", True),
        ("2024-02-28", "2024-02-29", True),  # leap day
        ("2024-02-29", "2024-03-01", True),
        ("2026-08-15", "2026-08-15", False),  # equal is not after
        ("2026-08-15", "2026-08-14", False),
        ("2027-01-01", "2026-12-31", False),
    ],
)
def test_compare_dates(clock: FixedClock, last: str, following: str, ok: bool) -> None:
    validator = build("0101", NEXT_AFTER_LAST, clock=clock)
    data = record("0101", LAST_INSP_DATE=last, NEXT_INSP_DATE=following)
    assert found(validator, data) == ([] if ok else [("NEXT_INSP_DATE", "next-after-last", NEXT_MESSAGE)])


@pytest.mark.parametrize(
    ("last", "following"),
    [(..., "2020-01-01"), ("2030-01-01", ...), ("", "2020-01-01"), ("2030-01-01", "\u3000"), (None, None)],
)
def test_compare_needs_both_values(clock: FixedClock, last: Any, following: Any) -> None:
    validator = build("0101", NEXT_AFTER_LAST, clock=clock)
    assert by_rule(validator, record("0101", LAST_INSP_DATE=last, NEXT_INSP_DATE=following), "next-after-last") == []


OPERATORS: Final = {
    "<": ("早于/小于", "less than"),
    "<=": ("不晚于/不大于", "at most"),
    ">": ("晚于/大于", "greater than"),
    ">=": ("不早于/不小于", "at least"),
    "==": ("等于", "equal to"),
    "!=": ("不等于", "different from"),
}


@pytest.mark.parametrize(
    ("op", "floors", "stops", "ok"),
    [
        ("<", 9, 10, True),
        ("<", "9", 10, True),  # numbers, not text: "9" > "10" as text
        ("<", 10, "9", False),
        ("<", 10, 10, False),
        ("<=", 10, "10", True),
        ("<=", "11", 10, False),
        (">", "10", "9", True),
        (">", 9, "10", False),
        (">=", 18, 18, True),
        (">=", "+18", "018", True),
        (">=", 17, 18, False),
        ("==", "18", 18, True),
        ("==", 18, 19, False),
        ("!=", 18, 19, True),
        ("!=", "18", 18, False),
    ],
)
def test_compare_operators_on_numbers(clock: FixedClock, op: str, floors: Any, stops: Any, ok: bool) -> None:
    rule = {"id": "floors-vs-stops", "type": "compare", "field": "FLOORS", "op": op, "other": "STOPS"}
    zh, en = OPERATORS[op]
    message = f"层数（FLOORS）应{zh}站数（STOPS） / FLOORS must be {en} STOPS"
    assert found(build("0101", rule, clock=clock), record("0101", FLOORS=floors, STOPS=stops)) == (
        [] if ok else [("FLOORS", "floors-vs-stops", message)]
    )


def test_compare_leaves_non_numbers_to_the_type_rule(clock: FixedClock) -> None:
    rule = {"id": "floors-vs-stops", "type": "compare", "field": "FLOORS", "op": ">=", "other": "STOPS"}
    validator = build("0101", rule, clock=clock)
    assert found(validator, record("0101", FLOORS="many", STOPS=5)) == [
        ("FLOORS", "type", "层数（FLOORS）应为整数 / FLOORS must be an integer")
    ]
    assert by_rule(validator, record("0101", FLOORS=True, STOPS=5), "floors-vs-stops") == []


@pytest.mark.parametrize(("floors", "stops"), [("NaN", 5), (5, "sNaN")])
def test_compare_with_not_a_number_does_not_raise(clock: FixedClock, floors: Any, stops: Any) -> None:
    rule = {"id": "floors-vs-stops", "type": "compare", "field": "FLOORS", "op": ">=", "other": "STOPS"}
    faults = build("0101", rule, clock=clock).violations(record("0101", FLOORS=floors, STOPS=stops))
    assert [(v.field, v.rule) for v in faults] == [("FLOORS" if floors == "NaN" else "STOPS", "type")]


def test_compare_on_times(clock: FixedClock) -> None:
    rule = {"id": "reported-after", "type": "compare", "field": "REPORT_TIME", "op": ">=", "other": "ACCIDENT_TIME"}
    validator = build("0500", rule, clock=clock)
    message = (
        "报告时间（REPORT_TIME）应不早于/不小于事故发生时间（ACCIDENT_TIME） / "
        "REPORT_TIME must be at least ACCIDENT_TIME"
    )
    assert found(validator, record("0500", REPORT_TIME="2026-03-14 15:42:00")) == []
    assert found(validator, record("0500", REPORT_TIME="2026-03-14 15:41:59")) == [
        ("REPORT_TIME", "reported-after", message)
    ]


# ================================================================== required_if

DEADLINE: Final = {
    "id": "deadline",
    "type": "required_if",
    "field": "RECTIFY_DEADLINE",
    "when": "RECTIFY_TYPE",
    "in": ["2"],
}
DEADLINE_MESSAGE: Final = (
    "整改类型（RECTIFY_TYPE）为 2 时，整改期限（RECTIFY_DEADLINE）为必填项 / "
    "RECTIFY_DEADLINE is required when RECTIFY_TYPE is 2"
)


@pytest.mark.parametrize("deadline", [..., None, "", "   ", "\u3000"])
def test_required_if_triggered(clock: FixedClock, deadline: Any) -> None:
    validator = build("0301", DEADLINE, clock=clock)
    data = record("0301", RECTIFY_TYPE="2", RECTIFY_DEADLINE=deadline)
    assert found(validator, data) == [("RECTIFY_DEADLINE", "deadline", DEADLINE_MESSAGE)]


@pytest.mark.parametrize("kind", ["1", ..., None, ""])
def test_required_if_not_triggered(clock: FixedClock, kind: Any) -> None:
    validator = build("0301", DEADLINE, clock=clock)
    assert found(validator, record("0301", RECTIFY_TYPE=kind, RECTIFY_DEADLINE=...)) == []


def test_required_if_satisfied(clock: FixedClock) -> None:
    validator = build("0301", DEADLINE, clock=clock)
    assert found(validator, record("0301", RECTIFY_TYPE="2", RECTIFY_DEADLINE="2026-10-15")) == []


@pytest.mark.parametrize("kind", [" 2", "2 ", "２", 2])
def test_required_if_triggers_on_the_exact_code_only(clock: FixedClock, kind: Any) -> None:
    """A padded, full-width or numeric code is not the code: the field rules report it, required_if does not."""
    faults = build("0301", DEADLINE, clock=clock).violations(record("0301", RECTIFY_TYPE=kind, RECTIFY_DEADLINE=...))
    assert [v.rule for v in faults] != []
    assert all(v.field == "RECTIFY_TYPE" and v.rule in FIELD_RULE_IDS for v in faults)


def test_required_if_with_several_trigger_values(clock: FixedClock) -> None:
    rule = {"id": "hazard-level", "type": "required_if", "field": "HAZARD_LEVEL", "when": "MEASURE", "in": ["2", "3"]}
    validator = build("0301", rule, clock=clock)
    message = (
        "处理措施（MEASURE）为 2/3 时，事故隐患类别（HAZARD_LEVEL）为必填项 / "
        "HAZARD_LEVEL is required when MEASURE is 2 or 3"
    )
    for measure in ("2", "3"):
        assert found(validator, record("0301", MEASURE=measure, HAZARD_LEVEL=...)) == [
            ("HAZARD_LEVEL", "hazard-level", message)
        ]
    assert found(validator, record("0301", MEASURE="1", HAZARD_LEVEL=...)) == []


@pytest.mark.parametrize("kind", [["2"], {"code": "2"}])
def test_required_if_with_a_list_or_object_value_does_not_raise(clock: FixedClock, kind: Any) -> None:
    faults = build("0301", DEADLINE, clock=clock).violations(record("0301", RECTIFY_TYPE=kind))
    assert [(v.field, v.rule) for v in faults] == [("RECTIFY_TYPE", "type")]


# ================================================================== check_digit

USCC_RULE: Final = {"id": "uscc", "type": "check_digit", "field": "UNIT_CODE", "scheme": "uscc"}
USCC_CHECK: Final = (
    "统一社会信用代码（UNIT_CODE）校验位不正确，请核对号码 / UNIT_CODE has a wrong check character; check the number"
)
USCC_FORMAT: Final = "统一社会信用代码（UNIT_CODE）格式不正确 / UNIT_CODE is not well formed"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("91110000600037341L", None),  # the example of domain-notes.md
        ("91330106MA2B1GE68M", None),
        ("91350100M0001TGQXM", USCC_CHECK),  # a genuine early pilot code that fails the check
        ("91110000600037342L", USCC_CHECK),
        ("91110000600037341M", USCC_CHECK),
        ("91110000600037341l", USCC_FORMAT),  # lower case
        ("９1110000600037341L", USCC_FORMAT),  # full-width digit
        ("91110000600037341Ｌ", USCC_FORMAT),  # full-width letter
        (" 91110000600037341L", USCC_FORMAT),  # surrounding whitespace
        ("91110000600037341L ", USCC_FORMAT),
        ("9111000060003734IL", USCC_FORMAT),  # I is not in the alphabet
        ("91110000600037341", USCC_FORMAT),  # 17 characters
        ("9111000060003734100", USCC_FORMAT),  # 19 characters
        ("91A10000600037341L", USCC_FORMAT),  # characters 3-8 are an area code
    ],
)
def test_check_digit_uscc(clock: FixedClock, value: str, message: str | None) -> None:
    validator = build("0102", USCC_RULE, clock=clock)
    assert by_rule(validator, record("0102", UNIT_CODE=value), "uscc") == (
        [] if message is None else [("UNIT_CODE", message)]
    )


ID_RULE: Final = {"id": "id-no", "type": "check_digit", "field": "ID_NO", "scheme": "id_card"}
ID_CHECK: Final = "身份证号码（ID_NO）校验位不正确，请核对号码 / ID_NO has a wrong check character; check the number"
ID_FORMAT: Final = "身份证号码（ID_NO）格式不正确 / ID_NO is not well formed"
ID_BIRTH: Final = "身份证号码（ID_NO）中的出生日期无效或在未来 / ID_NO holds an impossible birth date"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("11010519491231002X", None),  # the example of domain-notes.md
        ("110105202402290011", None),  # born on a leap day
        ("110105200002290013", None),  # 2000 is a leap year
        ("110105202611280012", None),  # born today
        ("110105194912310021", ID_CHECK),
        ("11010519491231002x", ID_FORMAT),  # lower-case x
        ("11010519491231002", ID_FORMAT),
        (" 11010519491231002X", ID_FORMAT),
        ("11010519491231002X\u3000", ID_FORMAT),
        ("１10105194912310021", ID_FORMAT),
        ("110105202302290012", ID_BIRTH),  # 2023-02-29 does not exist
        ("110105190002290017", ID_BIRTH),  # 1900 is not a leap year (check digit right)
        ("110105202611290018", ID_BIRTH),  # born tomorrow (check digit right)
        ("110105198513010016", ID_BIRTH),  # month 13
        ("110105000001010011", ID_BIRTH),  # year 0
        # 港澳台居民居住证 follow other rules: not checked beyond the shape.
        ("810000199001011234", None),
        ("820000199001011234", None),
        ("830000199913451234", None),
    ],
)
def test_check_digit_id_card(clock: FixedClock, value: str, message: str | None) -> None:
    validator = build("0103", ID_RULE, clock=clock)
    assert by_rule(validator, record("0103", ID_NO=value), "id-no") == ([] if message is None else [("ID_NO", message)])


def test_check_digit_birth_date_follows_the_clock(clock: FixedClock) -> None:
    validator = build("0103", ID_RULE, clock=clock)
    born_tomorrow = record("0103", ID_NO="110105202611290018")
    assert by_rule(validator, born_tomorrow, "id-no") == [("ID_NO", ID_BIRTH)]
    clock.advance(timedelta(days=1))
    assert by_rule(validator, born_tomorrow, "id-no") == []


@pytest.mark.parametrize("value", [..., None, "", "  ", "\u3000", 110105194912310021])
def test_check_digit_skips_missing_blank_and_non_strings(clock: FixedClock, value: Any) -> None:
    validator = build("0102", USCC_RULE, {**ID_RULE, "field": "LEGAL_PERSON_ID_NO"}, clock=clock)
    data = record("0102", UNIT_CODE=value, LEGAL_PERSON_ID_NO=value)
    assert [v for v in validator.violations(data) if v.rule in ("uscc", "id-no")] == []


def test_shipped_uscc_check_is_a_warning_and_id_card_check_an_error(clock: FixedClock) -> None:
    """Real data breaks the credit-code check (domain notes): the shipped 0102 set only warns."""
    rule_set = SHIPPED["0102"]
    validator = RecordValidator(CATALOG["0102"], rule_set.rules, rule_set.severities, rule_set.disabled, clock)
    pilot = record("0102", UNIT_CODE="91350100M0001TGQXM")
    report = validator.check_batch([pilot])
    assert report.errors == []
    assert dicts(report.warnings) == [
        {
            "index": 0,
            "key": "91350100M0001TGQXM",
            "warnings": [{"field": "UNIT_CODE", "rule": "unit-code-check-digit", "message": USCC_CHECK}],
        }
    ]
    wrong_id = record("0102", LEGAL_PERSON_ID_NO="110105194912310021")
    assert dicts(validator.check_batch([wrong_id]).errors) == [
        {
            "index": 0,
            "key": wrong_id["UNIT_CODE"],
            "errors": [
                {
                    "field": "LEGAL_PERSON_ID_NO",
                    "rule": "legal-person-id-no-check-digit",
                    "message": "法定代表人身份证号（LEGAL_PERSON_ID_NO）校验位不正确，请核对号码 / "
                    "LEGAL_PERSON_ID_NO has a wrong check character; check the number",
                }
            ],
        }
    ]


# ================================================================== region_code

AREA_RULE: Final = {"id": "area", "type": "region_code", "field": "AREA_CODE"}
AREA_MESSAGE: Final = (
    "所在行政区划代码（AREA_CODE）不是 GB/T 2260 中存在的行政区划代码 / AREA_CODE is not a GB/T 2260 division code"
)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("330106", True),  # 西湖区
        ("330100", True),  # 杭州市
        ("330000", True),  # 浙江省
        ("110103", True),  # 崇文区, abolished in 2010: real data still uses it
        ("100000", True),  # the national level by convention
        ("330199", False),
        ("990000", False),
        ("000000", False),
        ("３３０１０６", False),  # full-width digits
        (" 330106", False),
        ("330106 ", False),
        ("33010", False),
    ],
)
def test_region_code(clock: FixedClock, value: str, ok: bool) -> None:
    validator = build("0101", AREA_RULE, clock=clock)
    assert by_rule(validator, record("0101", AREA_CODE=value), "area") == ([] if ok else [("AREA_CODE", AREA_MESSAGE)])


@pytest.mark.parametrize("value", [..., None, "", "\u3000", 330106])
def test_region_code_skips_missing_blank_and_non_strings(clock: FixedClock, value: Any) -> None:
    assert by_rule(build("0101", AREA_RULE, clock=clock), record("0101", AREA_CODE=value), "area") == []


# ================================================================== equipment_code

EQUIPMENT: Final = {
    "id": "catalogue",
    "type": "equipment_code",
    "type_field": "EQP_TYPE",
    "sort_field": "EQP_SORT",
    "variety_field": "EQP_VART",
}


LEVEL_NAMES: Final = {"EQP_TYPE": "设备种类", "EQP_SORT": "设备类别", "EQP_VART": "设备品种"}


def not_listed(field: str, code: str) -> tuple[str, str]:
    return (
        field,
        f"{LEVEL_NAMES[field]}（{field}） {code} 不在《特种设备目录》中 / "
        f"{field} {code} is not a code of the 2014 equipment catalogue",
    )


def wrong_level(field: str, code: str, level: str, wanted: str) -> tuple[str, str]:
    return (
        field,
        f"{LEVEL_NAMES[field]}（{field}） {code} 是{level}代码，不是{wanted} / "
        f"{field} {code} is a {level} code, not a {wanted} code",
    )


@pytest.mark.parametrize(
    ("kind", "sort", "variety", "expected"),
    [
        ("3000", "3100", "3110", []),
        ("4000", "4100", "4110", []),
        ("4000", "4900", "4900", []),  # 缆索式起重机: a 类别 without 品种 stands in for the 品种
        (..., ..., "3110", []),
        ("3000", "3100", "3999", [not_listed("EQP_VART", "3999")]),
        ("3000", "3100", "3010", [not_listed("EQP_VART", "3010")]),  # a legacy catalogue code
        ("3000", "3100", "311", [not_listed("EQP_VART", "311")]),
        ("3100", "3100", "3110", [wrong_level("EQP_TYPE", "3100", "类别", "种类")]),
        ("3000", "3110", "3110", [wrong_level("EQP_SORT", "3110", "品种", "类别")]),
        ("3000", "3100", "3000", [wrong_level("EQP_VART", "3000", "种类", "品种")]),
        ("3000", "3100", "3210", [("EQP_VART", "品种 3210 不属于类别 3100 / variety 3210 is not in sort 3100")]),
        ("4000", "3100", "3110", [("EQP_SORT", "类别 3100 不属于种类 4000 / sort 3100 is not in type 4000")]),
        (
            "3000",
            "4100",
            "4900",
            [
                ("EQP_VART", "品种 4900 不属于类别 4100 / variety 4900 is not in sort 4100"),
                ("EQP_SORT", "类别 4100 不属于种类 3000 / sort 4100 is not in type 3000"),
            ],
        ),
    ],
)
def test_equipment_code(clock: FixedClock, kind: Any, sort: Any, variety: str, expected: list[Any]) -> None:
    validator = build("0101", EQUIPMENT, clock=clock)
    data = record("0101", EQP_TYPE=kind, EQP_SORT=sort, EQP_VART=variety)
    assert sorted(by_rule(validator, data, "catalogue")) == sorted(expected)


def test_shipped_equipment_rule_of_0101_checks_the_hierarchy(clock: FixedClock) -> None:
    rule_set = SHIPPED["0101"]
    validator = RecordValidator(CATALOG["0101"], rule_set.rules, rule_set.severities, rule_set.disabled, clock)
    data = record("0101", EQP_TYPE="4000", EQP_SORT="3100", EQP_VART="3110")
    assert by_rule(validator, data, "equipment-catalogue") == [
        ("EQP_SORT", "类别 3100 不属于种类 4000 / sort 3100 is not in type 4000")
    ]


@pytest.mark.parametrize("code", ["0500", "0208"])
def test_equipment_rule_without_sort_field_still_checks_variety_against_type(clock: FixedClock, code: str) -> None:
    rule_set = SHIPPED[code]
    validator = RecordValidator(CATALOG[code], rule_set.rules, rule_set.severities, rule_set.disabled, clock)
    assert next(rule for rule in rule_set.rules if rule["id"] == "equipment-catalogue").get("sort_field") is None
    data = record(code, EQP_TYPE="4000", EQP_VART="3110")
    assert [field for field, _ in by_rule(validator, data, "equipment-catalogue")] == ["EQP_VART"]


# ================================================================== device_code

DEVICE_CODE: Final = {"id": "structure", "type": "device_code", "field": "EQP_CODE"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("311033012201900235", None),  # 18: 品种 + manufacturer 33012 + 2019 + 00235
        ("3110330106201500001", None),  # 19: registration area 330106 instead of the manufacturer
        ("31103301062014080025", None),  # 20: legacy 注册代码 layout, 2014-08
        ("31103301220190023", None),  # 17: only the head is checked
        ("311033012195000235", None),  # 1950 is plausible
        ("311033012202600235", None),  # this year
        (
            "3110330106100000001",
            "设备代码（EQP_CODE）中的制造年份 1000 不合理 / EQP_CODE holds an implausible year 1000",
        ),
        (
            "999933012201900235",
            "设备代码（EQP_CODE）前 4 位 9999 不是《特种设备目录》代码 / EQP_CODE starts with 9999, "
            "not a code of the equipment catalogue",
        ),
        (
            "301033012201900235",
            "设备代码（EQP_CODE）前 4 位 3010 不是《特种设备目录》代码 / EQP_CODE starts with 3010, "
            "not a code of the equipment catalogue",
        ),
        (
            "311033012202700235",
            "设备代码（EQP_CODE）中的制造年份 2027 不合理 / EQP_CODE holds an implausible year 2027",
        ),
        (
            "311033012194900235",
            "设备代码（EQP_CODE）中的制造年份 1949 不合理 / EQP_CODE holds an implausible year 1949",
        ),
        (
            "3110330122A1900235",
            "设备代码（EQP_CODE）中的制造年份 2A19 不合理 / EQP_CODE holds an implausible year 2A19",
        ),
        (
            "3110330199201500001",
            "设备代码（EQP_CODE）中的区划代码 330199 不存在 / EQP_CODE holds an unknown area code",
        ),
        (
            "31103301062014130025",
            "设备代码（EQP_CODE）中的登记年月 201413 不合理 / EQP_CODE holds an implausible year-month",
        ),
        (
            "31103301062014000025",
            "设备代码（EQP_CODE）中的登记年月 201400 不合理 / EQP_CODE holds an implausible year-month",
        ),
        (
            "31103301062027010025",
            "设备代码（EQP_CODE）中的登记年月 202701 不合理 / EQP_CODE holds an implausible year-month",
        ),
    ],
)
def test_device_code(clock: FixedClock, value: str, message: str | None) -> None:
    validator = build("0101", DEVICE_CODE, clock=clock)
    assert by_rule(validator, record("0101", EQP_CODE=value), "structure") == (
        [] if message is None else [("EQP_CODE", message)]
    )


def test_device_code_year_follows_the_clock(clock: FixedClock) -> None:
    validator = build("0101", DEVICE_CODE, clock=clock)
    next_year = record("0101", EQP_CODE="311033012202700235")
    assert len(by_rule(validator, next_year, "structure")) == 1
    clock.advance(timedelta(days=40))  # 2027-01-07
    assert by_rule(validator, next_year, "structure") == []


def test_device_code_strict_head_off_accepts_legacy_heads(clock: FixedClock) -> None:
    lenient = build("0101", {**DEVICE_CODE, "strict_head": False}, clock=clock)
    assert by_rule(lenient, record("0101", EQP_CODE="301033012201900235"), "structure") == []
    assert by_rule(lenient, record("0101", EQP_CODE="112033012201900235"), "structure") == []
    # The rest of the structure is still checked.
    assert len(by_rule(lenient, record("0101", EQP_CODE="301033012202900235"), "structure")) == 1


@pytest.mark.parametrize(
    "value", ["311033012201900235 ", " 311033012201900235", "３11033012201900235", "311033012201900235a"]
)
def test_device_code_leaves_the_shape_to_the_pattern_rule(clock: FixedClock, value: str) -> None:
    faults = build("0101", DEVICE_CODE, clock=clock).violations(record("0101", EQP_CODE=value))
    assert faults != []
    assert all(v.rule in FIELD_RULE_IDS for v in faults)


# ================================================================== reference (check_batch lookup)

REFERENCE: Final = {"id": "eqp-held", "type": "reference", "field": "EQP_CODE", "business": "0101"}
REFERENCE_MESSAGE: Final = (
    "设备代码（EQP_CODE）在本节点的 0101 中不存在，请先报送被引用的记录 / "
    "EQP_CODE names no 0101 record held by this node; send that record first"
)


class Lookup:
    """A fake store: which keys of a business type it holds, and every question asked."""

    def __init__(self, held: Collection[str]) -> None:
        self.held = set(held)
        self.calls: list[tuple[str, set[str]]] = []

    def __call__(self, business: str, keys: Collection[str]) -> set[str]:
        self.calls.append((business, set(keys)))
        return self.held & set(keys)


def inspections(*codes: Any) -> list[dict[str, Any]]:
    return [record("0401", REPORT_NO=f"R-{index}", EQP_CODE=code) for index, code in enumerate(codes)]


def test_reference_reports_unknown_keys_with_one_lookup_per_batch(clock: FixedClock) -> None:
    validator = build("0401", REFERENCE, clock=clock)
    lookup = Lookup({"311033012201900235", "3110330106201500001"})
    batch = inspections("311033012201900235", "3110330106201599999", "3110330106201500001", "3110330106201599999")
    report = validator.check_batch(batch, lookup=lookup)
    assert lookup.calls == [("0101", {"311033012201900235", "3110330106201599999", "3110330106201500001"})]
    assert report.warnings == []
    assert dicts(report.errors) == [
        entry(index, f"R-{index}", "errors", ("EQP_CODE", "eqp-held", REFERENCE_MESSAGE)) for index in (1, 3)
    ]


def test_reference_as_a_warning(clock: FixedClock) -> None:
    validator = build("0401", {**REFERENCE, "severity": "warning"}, clock=clock)
    report = validator.check_batch(inspections("3110330106201599999"), lookup=Lookup(()))
    assert report.errors == []
    assert dicts(report.warnings) == [
        {
            "index": 0,
            "key": "R-0",
            "warnings": [{"field": "EQP_CODE", "rule": "eqp-held", "message": REFERENCE_MESSAGE}],
        }
    ]


def test_reference_is_skipped_without_lookup_for_partial_batches_and_blank_values(clock: FixedClock) -> None:
    validator = build("0401", REFERENCE, clock=clock)
    batch = inspections("3110330106201599999")
    assert validator.check_batch(batch).errors == []  # no lookup: no reference check
    assert validator.validate_batch(batch) == []
    lookup = Lookup(())
    assert (
        validator.check_batch(
            [{"REPORT_NO": "R-0", "EQP_CODE": "3110330106201599999"}], partial=True, lookup=lookup
        ).errors
        == []
    )
    assert lookup.calls == []
    # Missing, blank and non-string values are not looked up (the field rules report what is wrong).
    blank = [record("0401", REPORT_NO="R-0", EQP_CODE=""), record("0401", REPORT_NO="R-1", EQP_CODE=12345678901234567)]
    report = validator.check_batch(blank, lookup=lookup)
    assert lookup.calls == []
    assert {error["rule"] for detail in dicts(report.errors) for error in detail["errors"]} <= FIELD_RULE_IDS


def test_shipped_reference_rules_are_off(clock: FixedClock) -> None:
    for code, rule_set in SHIPPED.items():
        references = [rule for rule in rule_set.rules if rule.get("type") == "reference"]
        assert all(rule.get("enabled") is False for rule in references), code
        if references:
            validator = RecordValidator(CATALOG[code], rule_set.rules, rule_set.severities, rule_set.disabled, clock)
            lookup = Lookup(())
            validator.check_batch([BASE[code]], lookup=lookup)
            assert lookup.calls == [], code


def test_shipped_reference_rule_switched_on(clock: FixedClock) -> None:
    rules = [dict(rule, enabled=True) if rule["id"] == "eqp-code-held" else rule for rule in SHIPPED["0401"].rules]
    validator = RecordValidator(CATALOG["0401"], rules, clock=clock)
    report = validator.check_batch([BASE["0401"]], lookup=Lookup(()))
    assert [(e["field"], e["rule"]) for detail in dicts(report.errors) for e in detail["errors"]] == [
        ("EQP_CODE", "eqp-code-held")
    ]
    assert validator.check_batch([BASE["0401"]], lookup=Lookup({BASE["0401"]["EQP_CODE"]})).errors == []


# ================================================================== bad configuration

KNOWN: Final = (
    "check_digit, code_by_kind, compare, date_range, device_code, equipment_code, grade_by_figures, numeric_range, "
    "region_code, required_if, reference, related_state"
)


@pytest.mark.parametrize(
    ("rules", "options", "message"),
    [
        pytest.param([{"id": "x", "type": "bogus", "field": "FLOORS"}], {},
                     f"0101: rule x has unknown type 'bogus'; known: {KNOWN}", id="unknown-type"),
        pytest.param([{"id": "x", "field": "FLOORS", "min": 0}], {},
                     f"0101: rule x has unknown type None; known: {KNOWN}", id="missing-type"),
        pytest.param([{"id": "x", "type": "pattern", "field": "FLOORS"}], {},
                     f"0101: rule x has unknown type 'pattern'; known: {KNOWN}", id="field-rule-as-record-rule"),
        pytest.param([{"type": "numeric_range", "field": "FLOORS", "min": 0}], {},
                     "0101: every rule needs an id", id="missing-id"),
        pytest.param([{"id": "", "type": "numeric_range", "field": "FLOORS", "min": 0}], {},
                     "0101: every rule needs an id", id="empty-id"),
        pytest.param([{"id": 7, "type": "numeric_range", "field": "FLOORS", "min": 0}], {},
                     "0101: every rule needs an id", id="numeric-id"),
        pytest.param([{"id": "x", "type": "numeric_range", "field": "FLOORS", "min": 0},
                      {"id": "x", "type": "numeric_range", "field": "STOPS", "min": 0}], {},
                     "0101: rule id x is used twice", id="duplicate-id"),
        pytest.param([{"id": "x", "type": "numeric_range", "field": "FLOORS", "min": 0, "enabled": False},
                      {"id": "x", "type": "numeric_range", "field": "STOPS", "min": 0}], {},
                     "0101: rule id x is used twice", id="duplicate-id-one-off"),
        pytest.param([{"id": "x", "type": "numeric_range", "field": "FLOORS", "min": 0, "severity": "fatal"}], {},
                     "0101: severity of x must be error or warning", id="bad-rule-severity"),
        pytest.param([], {"severities": {"USE_UNIT_CODE.pattern": "info"}},
                     "0101: severity of USE_UNIT_CODE.pattern must be error or warning", id="bad-field-severity"),
        pytest.param([{"id": "x", "type": "numeric_range", "field": "FLOORS", "min": 0}],
                     {"severities": {"x": "Warning"}}, "0101: severity of x must be error or warning",
                     id="severity-is-case-sensitive"),
        pytest.param([{"id": "x", "type": "numeric_range", "min": 0}], {},
                     "rule 'x': field must name a field of 0101, got None", id="missing-field"),
        pytest.param([{"id": "x", "type": "numeric_range", "field": "floors", "min": 0}], {},
                     "rule 'x': field must name a field of 0101, got 'floors'", id="unknown-field"),
        pytest.param([{"id": "x", "type": "numeric_range", "field": "UNIT_CODE", "min": 0}], {},
                     "rule 'x': field must name a field of 0101, got 'UNIT_CODE'", id="field-of-another-type"),
        pytest.param([{"id": "x", "type": "numeric_range", "field": "FLOORS"}], {},
                     "rule 'x': numeric_range needs min or max", id="range-without-bounds"),
        pytest.param([{"id": "x", "type": "date_range", "field": "MAKE_DATE"}], {},
                     "rule 'x': date_range needs min, max or not_future", id="date-range-without-bounds"),
        pytest.param([{"id": "x", "type": "date_range", "field": "MAKE_DATE", "min": 1900}], {},
                     "rule 'x': min and max are dates YYYY-MM-DD", id="date-range-numeric-bound"),
        pytest.param([{"id": "x", "type": "compare", "field": "FLOORS", "op": "=>", "other": "STOPS"}], {},
                     "rule 'x': op must be one of < <= > >= == !=", id="bad-op"),
        pytest.param([{"id": "x", "type": "compare", "field": "FLOORS", "other": "STOPS"}], {},
                     "rule 'x': op must be one of < <= > >= == !=", id="missing-op"),
        pytest.param([{"id": "x", "type": "compare", "field": "FLOORS", "op": "<"}], {},
                     "rule 'x': other must name a field of 0101, got None", id="missing-other"),
        pytest.param([{"id": "x", "type": "required_if", "field": "USE_CERT_NO", "when": "REG_STATUS"}], {},
                     "rule 'x': required_if needs 'in': a list of values of REG_STATUS", id="required-if-without-in"),
        pytest.param([{"id": "x", "type": "required_if", "field": "USE_CERT_NO", "when": "REG_STATUS", "in": []}], {},
                     "rule 'x': required_if needs 'in': a list of values of REG_STATUS", id="required-if-empty-in"),
        pytest.param([{"id": "x", "type": "required_if", "field": "USE_CERT_NO", "when": "REG_STATUS", "in": "1"}], {},
                     "rule 'x': required_if needs 'in': a list of values of REG_STATUS", id="required-if-in-string"),
        pytest.param([{"id": "x", "type": "required_if", "field": "USE_CERT_NO", "when": "REG_STATUS", "in": [1]}], {},
                     "rule 'x': required_if needs 'in': a list of values of REG_STATUS", id="required-if-in-numbers"),
        pytest.param([{"id": "x", "type": "required_if", "field": "USE_CERT_NO", "in": ["1"]}], {},
                     "rule 'x': when must name a field of 0101, got None", id="required-if-without-when"),
        pytest.param([{"id": "x", "type": "check_digit", "field": "USE_UNIT_CODE"}], {},
                     "rule 'x': scheme must be uscc or id_card", id="check-digit-without-scheme"),
        pytest.param([{"id": "x", "type": "check_digit", "field": "USE_UNIT_CODE", "scheme": "iso7064"}], {},
                     "rule 'x': scheme must be uscc or id_card", id="check-digit-bad-scheme"),
        pytest.param([{"id": "x", "type": "region_code"}], {},
                     "rule 'x': field must name a field of 0101, got None", id="region-without-field"),
        pytest.param([{"id": "x", "type": "equipment_code", "sort_field": "EQP_CLASS"}], {},
                     "rule 'x': sort_field must name a field of 0101, got 'EQP_CLASS'", id="equipment-bad-field"),
        pytest.param([{"id": "x", "type": "device_code", "field": "NOPE"}], {},
                     "rule 'x': field must name a field of 0101, got 'NOPE'", id="device-code-bad-field"),
        pytest.param([{"id": "x", "type": "reference", "field": "EQP_CODE"}], {},
                     "rule 'x': business must be a table 7 code, got None", id="reference-without-business"),
        pytest.param([{"id": "x", "type": "reference", "field": "EQP_CODE", "business": "0100"}], {},
                     "rule 'x': business must be a table 7 code, got '0100'", id="reference-heading-not-business"),
    ],
)  # fmt: skip
def test_bad_configuration(
    clock: FixedClock, rules: list[dict[str, Any]], options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        build("0101", *rules, clock=clock, **options)
    # Every configuration error names the business type it was found in.
    assert str(raised.value) == (message if message.startswith("0101: ") else f"0101: {message}")


@pytest.mark.parametrize("bound", ["abc", True, [0]])
def test_numeric_range_bound_must_be_a_number(clock: FixedClock, bound: Any) -> None:
    with pytest.raises(ConfigurationError, match="min"):
        build("0101", {"id": "x", "type": "numeric_range", "field": "FLOORS", "min": bound, "max": 200}, clock=clock)


def test_equipment_code_needs_a_field(clock: FixedClock) -> None:
    with pytest.raises(ConfigurationError, match="equipment_code"):
        build("0101", {"id": "x", "type": "equipment_code"}, clock=clock)


def test_a_switched_off_rule_may_repeat_no_id_but_is_otherwise_not_built(clock: FixedClock) -> None:
    """``enabled: false`` and ``disabled`` skip building the rule; ids stay unique."""
    off = {"id": "x", "type": "numeric_range", "field": "FLOORS", "min": 0, "enabled": False}
    assert found(build("0101", off, clock=clock), record("0101", FLOORS=-1)) == []
    listed = {"id": "y", "type": "numeric_range", "field": "FLOORS", "min": 0}
    assert found(build("0101", listed, clock=clock, disabled={"y"}), record("0101", FLOORS=-1)) == []


# ================================================================== severities, disabled ids, check_batch

FLOORS_MIN: Final = {"id": "floors-min", "type": "numeric_range", "field": "FLOORS", "min": 0}
FLOORS_MESSAGE: Final = "层数（FLOORS）应不小于 0 / FLOORS must be at least 0"
WARN_STOPS: Final = {"id": "stops-min", "type": "numeric_range", "field": "STOPS", "min": 0, "severity": "warning"}
STOPS_MESSAGE: Final = "站数（STOPS）应不小于 0 / STOPS must be at least 0"
PATTERN_MESSAGE: Final = (
    "使用单位统一社会信用代码（USE_UNIT_CODE）格式不正确 / USE_UNIT_CODE does not match "
    "^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$"
)


#: Changes that leave a 0101 record without natural keys: copies of one record then differ by key only.
NO_NATURAL_KEYS: Final = {"REG_CODE": ..., "USE_CERT_NO": ..., "FACTORY_NO": ...}


def test_check_batch_splits_errors_and_warnings(clock: FixedClock) -> None:
    validator = build("0101", FLOORS_MIN, WARN_STOPS, clock=clock)
    batch = [
        record("0101", **NO_NATURAL_KEYS, EQP_CODE="311033012201900001"),
        record("0101", **NO_NATURAL_KEYS, EQP_CODE="311033012201900002", FLOORS=-1, STOPS=-1),
        record("0101", **NO_NATURAL_KEYS, EQP_CODE="311033012201900003", STOPS=-2),
        record("0101", **NO_NATURAL_KEYS, EQP_CODE="311033012201900004", FLOORS=-3),
    ]
    report = validator.check_batch(batch)
    floors = ("FLOORS", "floors-min", FLOORS_MESSAGE)
    stops = ("STOPS", "stops-min", STOPS_MESSAGE)
    assert dicts(report.errors) == [
        entry(1, "311033012201900002", "errors", floors),
        entry(3, "311033012201900004", "errors", floors),
    ]
    assert dicts(report.warnings) == [
        entry(1, "311033012201900002", "warnings", stops),
        entry(2, "311033012201900003", "warnings", stops),
    ]
    assert validator.validate_batch(batch) == report.errors
    # Warnings alone never reject: a batch with only warnings has no errors.
    assert validator.check_batch([batch[2]]).errors == []


def test_severities_override_a_record_rule_both_ways(clock: FixedClock) -> None:
    softened = build(
        "0101", FLOORS_MIN, WARN_STOPS, clock=clock, severities={"floors-min": "warning", "stops-min": "error"}
    )
    report = softened.check_batch([record("0101", FLOORS=-1, STOPS=-1)])
    assert [(e["field"], e["rule"]) for e in dicts(report.errors)[0]["errors"]] == [("STOPS", "stops-min")]
    assert [(w["field"], w["rule"]) for w in dicts(report.warnings)[0]["warnings"]] == [("FLOORS", "floors-min")]


def test_severities_override_catalog_field_rules_by_field_and_rule(clock: FixedClock) -> None:
    validator = build("0101", clock=clock, severities={"USE_UNIT_CODE.pattern": "warning"})
    data = record("0101", USE_UNIT_CODE="91350100-M0001TGQX")
    report = validator.check_batch([data])
    assert report.errors == []
    assert dicts(report.warnings) == [
        entry(0, data["EQP_CODE"], "warnings", ("USE_UNIT_CODE", "pattern", PATTERN_MESSAGE))
    ]
    # Only that field's rule: the same fault elsewhere is still an error.
    other = validator.check_batch([record("0101", MAKE_UNIT_CODE="91350100-M0001TGQX")])
    assert [(e["field"], e["rule"]) for e in dicts(other.errors)[0]["errors"]] == [("MAKE_UNIT_CODE", "pattern")]


def test_severities_for_required_and_unknown_fields(clock: FixedClock) -> None:
    validator = build("0101", clock=clock, severities={"USE_UNIT_NAME.required": "warning", "unknown_field": "warning"})
    report = validator.check_batch([record("0101", USE_UNIT_NAME=..., EXTRA="x")])
    assert report.errors == []
    assert sorted((w["field"], w["rule"]) for w in dicts(report.warnings)[0]["warnings"]) == [
        ("EXTRA", "unknown_field"),
        ("USE_UNIT_NAME", "required"),
    ]


def test_disabled_ids_switch_off_record_and_field_rules(clock: FixedClock) -> None:
    bad = record("0101", FLOORS=-1, STOPS=-1, USE_UNIT_CODE="bad", USE_ADDRESS=..., EXTRA="x")
    everything = build("0101", FLOORS_MIN, WARN_STOPS, clock=clock)
    assert sorted((v.field, v.rule) for v in everything.violations(bad)) == [
        ("EXTRA", "unknown_field"),
        ("FLOORS", "floors-min"),
        ("STOPS", "stops-min"),
        ("USE_ADDRESS", "required"),
        ("USE_UNIT_CODE", "pattern"),
    ]
    fewer = build(
        "0101",
        FLOORS_MIN,
        WARN_STOPS,
        clock=clock,
        disabled={"floors-min", "USE_UNIT_CODE.pattern", "USE_ADDRESS.required", "unknown_field"},
    )
    assert [(v.field, v.rule) for v in fewer.violations(bad)] == [("STOPS", "stops-min")]


def test_disabling_one_field_rule_keeps_the_next_rules_of_that_field(clock: FixedClock) -> None:
    validator = build("0101", clock=clock, disabled={"USE_STATUS.length"})
    assert [(v.field, v.rule) for v in validator.violations(record("0101", USE_STATUS="77"))] == [
        ("USE_STATUS", "code_list")
    ]


def test_a_warning_does_not_hide_an_error_on_the_same_field(clock: FixedClock) -> None:
    validator = build("0101", clock=clock, severities={"USE_STATUS.length": "warning"})
    report = validator.check_batch([record("0101", USE_STATUS="77")])
    assert [(e["field"], e["rule"]) for detail in dicts(report.errors) for e in detail["errors"]] == [
        ("USE_STATUS", "code_list")
    ]


def test_partial_batches_skip_record_rules(clock: FixedClock) -> None:
    """A 02 modify names only the changed fields; the merged record is checked when it is stored."""
    validator = build("0101", FLOORS_MIN, clock=clock)
    assert validator.check_batch([{"EQP_CODE": "311033012201900235", "FLOORS": -1}], partial=True).errors == []


# ================================================================== robustness (hypothesis)

SHIPPED_0101: Final = SHIPPED["0101"]
FIELDS_0101: Final = sorted(spec.code for spec in CATALOG["0101"].fields)
RULE_IDS_0101: Final = (
    FIELD_RULE_IDS
    | {str(rule["id"]) for rule in SHIPPED_0101.rules}
    | {natural_key.rule_id for natural_key in CATALOG["0101"].natural_keys}
)
WARNING_IDS_0101: Final = {str(rule["id"]) for rule in SHIPPED_0101.rules if rule.get("severity") == "warning"} | {
    natural_key.rule_id for natural_key in CATALOG["0101"].natural_keys
}
SCALARS: Final = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=24)
    | st.sampled_from(
        [
            "NaN", "-Infinity", "sNaN", "1e999999", "-５", "２０２４-０２-２９", "2024-02-29", "2023-02-29",
            "2026-11-28 09:30:01", "2099-12-31", "1899-12-31", "\u3000", " 3110", "3110", "3000", "4900",
            "311033012201900235", "31103301062014130025", "91350100M0001TGQXM", "11010519491231002X", "330106",
        ]
    )
)  # fmt: skip
JSON_VALUES: Final = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
RECORDS: Final = st.dictionaries(st.sampled_from(FIELDS_0101) | st.text(max_size=8), JSON_VALUES, max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    batch=st.lists(st.tuples(st.booleans(), RECORDS), max_size=4),
    partial=st.booleans(),
)
def test_shipped_0101_validator_never_raises(batch: list[tuple[bool, dict[str, Any]]], partial: bool) -> None:
    clock = FixedClock(datetime(2026, 11, 28, 9, 30, tzinfo=BEIJING))
    validator = RecordValidator(
        CATALOG["0101"], SHIPPED_0101.rules, SHIPPED_0101.severities, SHIPPED_0101.disabled, clock
    )
    records: Sequence[dict[str, Any]] = [
        {**(BASE["0101"] if start_valid else {}), **data} for start_valid, data in batch
    ]
    lookup: Callable[[str, Collection[str]], set[str]] = Lookup(())

    def everywhere(business: str, wanted: Mapping[str, Collection[str]]) -> dict[str, dict[str, list[Any]]]:
        # Every value is held by another stored record, seen or hidden.
        return {
            name: {value: [NaturalKeyHolder("K1", "app", True), NaturalKeyHolder("K2", "", False)] for value in values}
            for name, values in wanted.items()
        }

    report = validator.check_batch(records, partial=partial, lookup=lookup, natural_keys=everywhere)
    for kind, details in (("errors", dicts(report.errors)), ("warnings", dicts(report.warnings))):
        assert [detail["index"] for detail in details] == sorted({detail["index"] for detail in details})
        for detail in details:
            assert 0 <= detail["index"] < len(records)
            assert detail[kind]
            for fault in detail[kind]:
                assert set(fault) == {"field", "rule", "message"}
                assert all(isinstance(value, str) for value in fault.values())
                assert fault["rule"] and fault["message"]
                assert fault["rule"] in RULE_IDS_0101
                if kind == "warnings":
                    assert fault["rule"] in WARNING_IDS_0101
                else:
                    assert fault["rule"] not in WARNING_IDS_0101


def _holds_as_first_written(record: Mapping[str, Any], conditions: Mapping[str, Sequence[str]]) -> bool:
    """``related_state``'s condition check before it was compiled to sets and prefixes (2026-12-06)."""
    for field, allowed in conditions.items():
        value = record.get(field)
        if not isinstance(value, str) or not value.strip():
            return False
        if not any(value.startswith(v[:-1]) if v.endswith("*") else value == v for v in allowed):
            return False
    return True


_STATE_VALUES = st.sampled_from(["", "*", "2", "2*", "20", "不合格", "不合格*", "复检不合格", "5", " "])


@settings(max_examples=300)
@given(
    conditions=st.dictionaries(
        st.sampled_from(["USE_STATUS", "EQP_TYPE", "EQP_SORT"]), st.lists(_STATE_VALUES, min_size=1), min_size=1
    ),
    record=st.dictionaries(
        st.sampled_from(["USE_STATUS", "EQP_TYPE", "EQP_SORT", "EQP_CODE"]),
        _STATE_VALUES | st.text(max_size=4) | st.integers() | st.none(),
    ),
)
def test_related_state_conditions_hold_as_first_defined(
    conditions: dict[str, list[str]], record: dict[str, Any]
) -> None:
    """Every record of a batch is asked ``when``: the sets and prefixes it is compiled to decide as the
    generator over the listed values did, ``*`` alone and blank values included."""
    compiled = related_state._conditions({"id": "r", "when": conditions}, "when")
    assert related_state._holds(record, compiled) == _holds_as_first_written(record, conditions)


def _needing_record_by_record(need: RelatedRecord, records: Sequence[Mapping[str, Any]]) -> list[tuple[int, str]]:
    """``_needing`` as first written: ``needs`` asked of each record naming another."""
    name = need.field
    return [
        (index, record[name])
        for index, record in enumerate(records)
        if isinstance(record.get(name), str) and record[name] and need.needs(record)
    ]


_NEEDING_VALUES = _STATE_VALUES | st.none() | st.integers(0, 2) | st.booleans() | st.just(1.0) | st.just(["2"])


@settings(max_examples=300)
@given(
    conditions=st.dictionaries(
        st.sampled_from(["USE_STATUS", "EQP_VART"]), st.lists(_STATE_VALUES, min_size=1), min_size=1
    ),
    records=st.lists(
        st.dictionaries(st.sampled_from(["USE_STATUS", "EQP_VART", "EQP_CODE"]), _NEEDING_VALUES), max_size=12
    ),
)
def test_related_state_batch_asks_as_record_by_record(
    conditions: dict[str, list[str]], records: list[dict[str, Any]]
) -> None:
    """A batch asks ``when`` once per distinct tuple of the values it reads (``needs_reads``), and finds
    the same records, in the same order, as asking every record: absent and null fields, 1 / 1.0 /
    True and unhashable values included."""
    rule = {"id": "r", "type": "related_state", "field": "EQP_CODE", "business": "0401", "when": conditions,
            "other_when": {"INSP_CONCLUSION": ["3"]}, "says": "甲 / a"}  # fmt: skip
    built = related_state.build(rule, RuleContext(CATALOG["0101"]))
    need = built.related
    assert need is not None and need.needs_reads == tuple(conditions)
    assert validator_module._needing(need, records) == _needing_record_by_record(need, records)


def test_needs_reads_tells_equal_values_of_other_types_apart() -> None:
    """A ``needs`` that tells 1 from True is asked of each record: equal values that are not
    interchangeable are never answered from one another."""
    need = RelatedRecord("0401", "EQP_CODE", lambda record: record.get("FLAG") is True, lambda _r, _o: [],
                         needs_reads=("FLAG",))  # fmt: skip
    records = [{"EQP_CODE": "a", "FLAG": 1}, {"EQP_CODE": "b", "FLAG": True}, {"EQP_CODE": "c", "FLAG": 1.0}]
    assert validator_module._needing(need, records) == [(1, "b")]
    assert validator_module._needing(need, [{"EQP_CODE": "d", "FLAG": [True]}]) == []
