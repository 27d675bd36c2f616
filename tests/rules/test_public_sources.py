"""Code lists and identifiers that follow their public sources (issue 18): legacy values are accepted with
a warning saying what they mean now, never rejected; conclusions fit their equipment kind; an accident's
grade fits its figures; every code list names its source."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import pytest

from tzsb.catalog import Catalog, load_catalog, parse_business_type
from tzsb.clock import BEIJING, FixedClock
from tzsb.errors import ConfigurationError
from tzsb.rules.ruleset import shipped_rule_sets
from tzsb.rules.validator import RecordValidator

CATALOG: Final[Catalog] = load_catalog()
SHIPPED: Final = shipped_rule_sets()
CLOCK: Final = FixedClock(datetime(2026, 11, 1, 12, 0, tzinfo=BEIJING))


def validator(code: str, **options: Any) -> RecordValidator:
    rule_set = SHIPPED[code]
    return RecordValidator(CATALOG[code], rule_set.rules, clock=CLOCK, **options)


def record(code: str, **changes: Any) -> dict[str, Any]:
    return {**SHIPPED[code].valid_cases[0], **changes}


def faults(code: str, data: dict[str, Any], **options: Any) -> list[tuple[str, str, str, str]]:
    """(severity, field, rule, message) of every fault, sorted."""
    return sorted((str(v.severity), v.field, v.rule, v.message) for v in validator(code, **options).violations(data))


# ------------------------------------------------------------------ HAZARD_LEVEL (0301–0304)

LEGACY_1: Final = (
    "事故隐患类别（HAZARD_LEVEL）取旧代码：1 特别重大 是 2001 年的事故等级，不是隐患类别；现按重大事故隐患（3）理解，"
    "请改报 3 / 1 (特别重大) is the 2001 accident grade, not a hidden-danger class; it is read as 3 重大事故隐患 now: "
    "send 3"
)


@pytest.mark.parametrize("code", ["0301", "0302", "0303", "0304"])
def test_the_hidden_danger_classes_of_order_57_and_the_2024_criteria(code: str) -> None:
    assert dict(CATALOG[code].field("HAZARD_LEVEL").codes) == {  # type: ignore[union-attr]
        "3": "重大事故隐患",
        "4": "严重事故隐患",
        "5": "一般事故隐患",
    }
    for level in ("3", "4", "5"):
        assert faults(code, record(code, HAZARD_FOUND="1", HAZARD_LEVEL=level)) == []


@pytest.mark.parametrize("code", ["0301", "0302", "0303", "0304"])
def test_a_legacy_accident_grade_is_accepted_with_what_it_means_now(code: str) -> None:
    assert faults(code, record(code, HAZARD_FOUND="1", HAZARD_LEVEL="1")) == [
        ("warning", "HAZARD_LEVEL", "legacy_code", LEGACY_1)
    ]
    (only,) = faults(code, record(code, HAZARD_FOUND="1", HAZARD_LEVEL="2"))
    assert only[:3] == ("warning", "HAZARD_LEVEL", "legacy_code")
    assert "2 特大 是 2001 年的事故等级" in only[3]


def test_a_value_in_neither_list_is_still_refused() -> None:
    assert faults("0301", record("0301", HAZARD_FOUND="1", HAZARD_LEVEL="6")) == [
        (
            "error",
            "HAZARD_LEVEL",
            "code_list",
            "事故隐患类别（HAZARD_LEVEL）取值不在代码表内：3 重大事故隐患, 4 严重事故隐患, 5 一般事故隐患 / "
            "HAZARD_LEVEL must be one of: 3, 4, 5",
        )
    ]


def test_the_legacy_warning_is_configurable_like_every_rule() -> None:
    data = record("0301", HAZARD_FOUND="1", HAZARD_LEVEL="1")
    assert faults("0301", data, severities={"HAZARD_LEVEL.legacy_code": "error"}) == [
        ("error", "HAZARD_LEVEL", "legacy_code", LEGACY_1)
    ]
    assert faults("0301", data, disabled={"HAZARD_LEVEL.legacy_code"}) == []


# ------------------------------------------------------------------ INSP_CONCLUSION, INSP_TYPE (0401), UNIT_TYPE (0102)


def test_pressure_piping_conclusions_are_listed_and_fit_pressure_piping() -> None:
    codes = CATALOG["0401"].field("INSP_CONCLUSION").codes  # type: ignore[union-attr]
    assert (codes["8"], codes["9"]) == ("允许使用", "不允许使用")
    for conclusion in ("8", "9", "7"):
        data = record("0401", EQP_VART="8110", INSP_CONCLUSION=conclusion)
        assert [f for f in faults("0401", data) if f[2] == "conclusion-fits-kind"] == []


def test_a_conclusion_of_another_kind_is_a_warning_naming_the_kinds_vocabulary() -> None:
    data = record("0401", EQP_VART="3110", INSP_CONCLUSION="9")
    assert [f for f in faults("0401", data) if f[2] == "conclusion-fits-kind"] == [
        (
            "warning",
            "INSP_CONCLUSION",
            "conclusion-fits-kind",
            "检验结论（INSP_CONCLUSION） 9（不允许使用）不是设备品种（EQP_VART）首位为 3 的设备所用的结论；该类设备用 "
            "1 合格、2 复检合格、3 不合格、4 复检不合格 / INSP_CONCLUSION 9 is not a value used for equipment of "
            "kind 3 (EQP_VART starts with 3): it uses 1, 2, 3, 4",
        )
    ]
    boiler = record("0401", EQP_VART="1110", INSP_CONCLUSION="1")
    assert [f[:3] for f in faults("0401", boiler) if f[2] == "conclusion-fits-kind"] == [
        ("warning", "INSP_CONCLUSION", "conclusion-fits-kind")
    ]


def test_new_inspection_types_and_unit_roles_are_accepted() -> None:
    for inspection in ("10", "11"):
        assert [f for f in faults("0401", record("0401", INSP_TYPE=inspection)) if f[0] == "error"] == []
    names = CATALOG["0401"].field("INSP_TYPE").codes  # type: ignore[union-attr]
    assert (names["10"], names["11"]) == ("验收检验", "水(耐)压试验")
    roles = CATALOG["0102"].field("UNIT_TYPE").codes  # type: ignore[union-attr]
    assert {roles[code] for code in ("10", "11", "12", "13")} == {"型式试验机构", "经营", "维护保养", "监督管理机构"}
    for role in ("10", "11", "12", "13"):
        assert [f for f in faults("0102", record("0102", UNIT_TYPE=role)) if f[0] == "error"] == []


# ------------------------------------------------------------------ ACCIDENT_LEVEL against the 2009 thresholds


def _grade(**changes: Any) -> list[tuple[str, str, str, str]]:
    return [f for f in faults("0500", record("0500", **changes)) if f[2] == "accident-level-fits-figures"]


@pytest.mark.parametrize(
    ("level", "deaths", "injuries", "loss"),
    [("4", 2, 9, "999"), ("3", 3, 0, "0"), ("3", 0, 10, "0"), ("3", 0, 0, "1000"), ("2", 10, 0, "0"),
     ("2", 0, 0, "5000"), ("1", 30, 0, "0"), ("1", 0, 100, "0"), ("1", 0, 0, "10000")],
)  # fmt: skip
def test_a_grade_the_figures_reach_is_consistent(level: str, deaths: int, injuries: int, loss: str) -> None:
    assert _grade(ACCIDENT_LEVEL=level, DEATH_NUM=deaths, SERIOUS_INJURY_NUM=injuries, DIRECT_LOSS=loss) == []


def test_a_grade_below_its_figures_is_a_warning() -> None:
    assert _grade(ACCIDENT_LEVEL="4", DEATH_NUM=3, SERIOUS_INJURY_NUM=0, DIRECT_LOSS="10") == [
        (
            "warning",
            "ACCIDENT_LEVEL",
            "accident-level-fits-figures",
            "事故等级（ACCIDENT_LEVEL） 4（一般） 低于死亡人数（DEATH_NUM）、直接经济损失（万元）（DIRECT_LOSS）、"
            "重伤人数（SERIOUS_INJURY_NUM）按 2009 年条例标准对应的 3（较大） / ACCIDENT_LEVEL 4 is lower than 3, the "
            "grade its DEATH_NUM, DIRECT_LOSS, SERIOUS_INJURY_NUM reach under the 2009 thresholds",
        )
    ]


def test_a_grade_above_its_figures_says_another_criterion_may_apply() -> None:
    (only,) = _grade(ACCIDENT_LEVEL="2", DEATH_NUM=0, SERIOUS_INJURY_NUM=1, DIRECT_LOSS="50")
    assert only[:3] == ("warning", "ACCIDENT_LEVEL", "accident-level-fits-figures")
    assert "ignore this when another criterion (an explosion, a collapse, people stranded) set it" in only[3]


def test_an_accident_without_figures_is_not_judged() -> None:
    data = {k: v for k, v in record("0500", ACCIDENT_LEVEL="1").items()
            if k not in ("DEATH_NUM", "SERIOUS_INJURY_NUM", "DIRECT_LOSS")}  # fmt: skip
    assert [f for f in faults("0500", data) if f[2] == "accident-level-fits-figures"] == []


# ------------------------------------------------------------------ identifiers

LEGACY_DEVICE_CODE: Final = "3110" + "12345678X" + "2001" + "0042"


def test_a_21_character_device_code_from_before_tsg_08_is_accepted_with_a_warning() -> None:
    data = record("0101", EQP_CODE=LEGACY_DEVICE_CODE)
    assert [f for f in faults("0101", data) if f[1] == "EQP_CODE"] == [
        (
            "warning",
            "EQP_CODE",
            "eqp-code-structure",
            "设备代码（EQP_CODE）为 TSG 08 之前的 21 位旧代码（分类 4 + 组织机构代码 9 + 年 4 + 顺序 4），已接受；"
            "换发登记时请改用设备代码 / EQP_CODE has the 21-character layout from before TSG 08-2017; accepted, "
            "and due for a 设备代码 at re-registration",
        )
    ]
    too_new = record("0101", EQP_CODE="3110" + "12345678X" + "2031" + "0042")
    assert [f[3] for f in faults("0101", too_new) if f[1] == "EQP_CODE"] == [
        "设备代码（EQP_CODE）中的年份 2031 不合理 / EQP_CODE holds an implausible year 2031"
    ]


def test_reg_code_recognises_the_legacy_20_digit_layout_and_a_device_code() -> None:
    for value in ("31103301052014080025", "311033012201900235"):
        assert [f for f in faults("0101", record("0101", REG_CODE=value)) if f[1] == "REG_CODE"] == []
    assert [f for f in faults("0101", record("0101", REG_CODE="31103301052014130025")) if f[1] == "REG_CODE"] == [
        (
            "warning",
            "REG_CODE",
            "reg-code-structure",
            "注册代码（REG_CODE）中的登记年月 201413 不合理 / REG_CODE holds an implausible year-month",
        )
    ]


# ------------------------------------------------------------------ sources


def test_every_code_list_names_its_source() -> None:
    for business in CATALOG.values():
        for spec in business.fields:
            if spec.codes:
                assert spec.codes_source, f"{business.code} {spec.code}"
                assert not set(spec.legacy_codes) & set(spec.codes)


def _catalog_entry(field: dict[str, Any]) -> dict[str, Any]:
    return {"code": "0101", "name": "t", "primary_key": "K", "region_field": "R", "timestamp_field": "T",
            "fields": [{"code": "K"}, {"code": "R"}, {"code": "T", "type": "datetime"}, field]}  # fmt: skip


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"code": "X", "codes": {"1": "a"}},
         "test: field X: a code list needs its codes_source (a document and article, or 'project-defined' / "
         "'provincial practice')"),
        ({"code": "X", "codes": {"1": "a"}, "codes_source": "project-defined", "legacy_codes": {"1": "old"}},
         "test: field X: a legacy code is also a current code"),
        ({"code": "X", "legacy_codes": {"1": "old"}}, "test: field X: legacy_codes need a code list"),
        ({"code": "X", "codes": {"1": "a"}, "codes_source": "project-defined", "legacy_codes": {"2": ""}},
         "test: field X: legacy_codes must be an object of code: what the code means now"),
    ],
)  # fmt: skip
def test_a_code_list_without_its_source_or_with_clashing_legacy_codes_is_refused(
    field: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        parse_business_type(_catalog_entry(field), "test")
    assert str(refused.value) == message


# ------------------------------------------------------------------ related_state (cross-record) configuration


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"business": "9999"}, "0401: rule 'x': business must be a table 7 code, got '9999'"),
        ({"when": {}}, "0401: rule 'x': related_state needs 'when': an object of field → list of values"),
        ({"other_when": {"USE_STATUS": "2"}},
         "0401: rule 'x': related_state needs 'other_when': an object of field → list of values"),
        ({"says": "only Chinese"}, "0401: rule 'x': related_state needs 'says': the zh / en explanation"),
        ({"not_before": {"this": "INSP_DATE"}},
         "0401: rule 'x': not_before must be {\"this\": field, \"other\": field}"),
    ],
)  # fmt: skip
def test_a_badly_configured_cross_record_rule_is_refused(changes: dict[str, Any], message: str) -> None:
    rule = {"id": "x", "type": "related_state", "field": "EQP_CODE", "business": "0101",
            "when": {"INSP_CONCLUSION": ["3"]}, "other_when": {"USE_STATUS": ["2"]},
            "says": "中 / en", **changes}  # fmt: skip
    with pytest.raises(ConfigurationError) as refused:
        RecordValidator(CATALOG["0401"], [rule], clock=CLOCK)
    assert str(refused.value) == message


def test_cross_record_rules_are_skipped_without_the_store() -> None:
    """Rule-set cases run without a store: the rule asks nothing and reports nothing."""
    data = record("0401", INSP_CONCLUSION="3")
    assert [f for f in faults("0401", data) if f[2] == "failing-inspection-of-device-in-use"] == []
    asked: list[tuple[str, set[str]]] = []

    def related(need: Any, keys: Any) -> dict[str, dict[str, Any]]:
        asked.append((need.business, set(keys)))
        return {data["EQP_CODE"]: {"USE_STATUS": "2"}}

    report = validator("0401").check_batch([data], related=related)
    assert asked == [("0101", {data["EQP_CODE"]})]
    assert [w.rule for fault in report.warnings for w in fault.warnings or () if w.rule.endswith("in-use")] == [
        "failing-inspection-of-device-in-use"
    ]
