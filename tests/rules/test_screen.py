"""The column screen of ``check_batch`` changes no report: screened and record-by-record agree.

``check_batch`` checks each distinct value (or tuple of values) of a batch once and sends only the
records holding a failing one through ``violations``. These tests compare its report with the one
built record by record, on batches mixed from the shipped rule-set cases of every business type
and mutated with blanks, nulls, numbers, booleans, lists, unknown fields and values of other cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tzsb.catalog import load_catalog
from tzsb.clock import BEIJING, FixedClock
from tzsb.errors import RecordFault
from tzsb.protocol.codes import BUSINESS_TYPES
from tzsb.rules import RecordValidator
from tzsb.rules.base import Severity
from tzsb.rules.ruleset import CompiledRules, compile_rules, shipped_rule_sets

CATALOG: Final = load_catalog()
SHIPPED: Final = shipped_rule_sets()
COMPILED: Final[CompiledRules] = compile_rules(CATALOG, None, FixedClock(datetime(2026, 11, 28, 9, 30, tzinfo=BEIJING)))


def dicts(faults: Sequence[RecordFault]) -> list[dict[str, Any]]:
    """Record faults in their answer shape, ``{"index", "key", "errors"|"warnings": [...]}``."""
    return [fault.as_dict() for fault in faults]


#: Values that stress de-duplication: equal across types (1, 1.0, True), blank, unhashable.
ODD_VALUES: Final[tuple[Any, ...]] = (
    None, "", " ", "\u3000", "\t x ", 0, 1, 1.0, True, False, -1, 1e300, 0.0, -0.0, 100, 100.0, -10.0, [], ["1"], {},
    {"a": 1},
    "1", "2026-02-29", "2024-02-29", "9999-12-31 23:59:59", "３３０１０６", "330106", "x" * 300,
)  # fmt: skip


def record_by_record(validator: RecordValidator, records: list[dict[str, Any]]) -> Any:
    """The report with the screen and the per-batch memo off: every record goes through ``violations``."""
    unscreened = RecordValidator.__new__(RecordValidator)
    unscreened.__dict__.update(validator.__dict__)
    unscreened._suspects = lambda batch, now: set(range(len(batch)))  # type: ignore[method-assign]
    unscreened.violations = (  # type: ignore[method-assign]
        lambda record, *, partial=False, now=None, memo=None: RecordValidator.violations(
            unscreened, record, partial=partial, now=now
        )
    )
    return unscreened.check_batch(records)


def cases(code: str) -> list[dict[str, Any]]:
    rule_set = SHIPPED[code]
    return [dict(case) for case in rule_set.valid_cases] + [dict(case["record"]) for case in rule_set.invalid_cases]


@st.composite
def batches(draw: st.DrawFn, code: str) -> list[dict[str, Any]]:
    pool = cases(code)
    names = sorted({name for record in pool for name in record} | {spec.code for spec in CATALOG[code].fields})
    values = [value for record in pool for value in record.values()]
    size = draw(st.integers(1, 12))
    batch = [dict(draw(st.sampled_from(pool))) for _ in range(size)]
    for _ in range(draw(st.integers(0, 8))):
        record = draw(st.sampled_from(batch))
        name = draw(st.sampled_from([*names, "NOT_A_FIELD"]))
        change = draw(st.sampled_from(["remove", "odd", "borrow"]))
        if change == "remove":
            record.pop(name, None)
        elif change == "odd":
            record[name] = draw(st.sampled_from(ODD_VALUES))
        else:
            record[name] = draw(st.sampled_from(values))
    # Repeat some records so that values (and keys) occur more than once.
    return batch + [dict(record) for record in draw(st.lists(st.sampled_from(batch), max_size=3))]


@pytest.mark.parametrize("code", sorted(BUSINESS_TYPES))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_screened_report_equals_the_record_by_record_report(code: str, data: st.DataObject) -> None:
    validator = COMPILED.validators[code]
    records = data.draw(batches(code))
    assert validator.check_batch(records) == record_by_record(validator, records)


@pytest.mark.parametrize("code", sorted(BUSINESS_TYPES))
def test_every_shipped_case_alone_and_all_together(code: str) -> None:
    validator = COMPILED.validators[code]
    pool = cases(code)
    for record in pool:
        assert validator.check_batch([record]) == record_by_record(validator, [record])
    assert validator.check_batch(pool) == record_by_record(validator, pool)


def test_equal_values_of_different_types_are_screened_apart() -> None:
    """1 and True are equal keys to a set: the screen must not let True pass because 1 did."""
    validator = COMPILED.validators["0101"]
    valid = dict(SHIPPED["0101"].valid_cases[0])
    batch = [dict(valid, DESIGN_LIFE=1), dict(valid, EQP_CODE=valid["EQP_CODE"][:-1] + "9", DESIGN_LIFE=True)]
    report = validator.check_batch(batch)
    assert [(item["index"], [error["rule"] for error in item["errors"]]) for item in dicts(report.errors)] == [
        (1, ["type"])
    ]
    assert report == record_by_record(validator, batch)


def test_zero_and_negative_zero_are_screened_apart() -> None:
    """0.0 == -0.0, but their text differs in length: a length rule passes one and fails the other."""
    validator = RecordValidator(
        CATALOG["0101"],
        SHIPPED["0101"].rules,
        disabled=["DESIGN_LIFE.type"],
        clock=FixedClock(datetime(2026, 11, 28, tzinfo=BEIJING)),
    )
    valid = dict(SHIPPED["0101"].valid_cases[0])
    positive = dict(valid, DESIGN_LIFE=0.0)
    negative = dict(valid, EQP_CODE=valid["EQP_CODE"][:-1] + "9", DESIGN_LIFE=-0.0)
    assert [v.rule for v in validator.violations(negative)] == ["length"]
    report = validator.check_batch([positive, negative])
    assert [item["index"] for item in dicts(report.errors)] == [1]
    assert report == record_by_record(validator, [positive, negative])


def test_a_warning_on_a_shared_value_reaches_every_record_holding_it() -> None:
    validator = COMPILED.validators["0101"]
    valid = dict(SHIPPED["0101"].valid_cases[0])
    # One device five times, each with its own codes (the same 注册代码 would be a natural-key warning).
    batch = [
        dict(
            valid,
            EQP_CODE=valid["EQP_CODE"][:-2] + f"{n:02d}",
            REG_CODE=valid["REG_CODE"][:-2] + f"{n:02d}",
            USE_CERT_NO=f"梯11浙A0{n}234(19)",
            FACTORY_NO=f"E19A023{n}",
            USE_UNIT_CODE="91110000600037341X",
        )
        for n in range(5)
    ]
    report = validator.check_batch(batch)
    assert report.errors == []
    assert [item["index"] for item in dicts(report.warnings)] == [0, 1, 2, 3, 4]
    assert {w["rule"] for item in dicts(report.warnings) for w in item["warnings"]} == {"use-unit-code-check-digit"}
    assert all(v.severity is Severity.WARNING for v in validator.violations(batch[0]))


def test_a_required_field_no_record_holds_fails_every_record() -> None:
    validator = COMPILED.validators["0101"]
    valid = dict(SHIPPED["0101"].valid_cases[0])
    batch = [{name: value for name, value in valid.items() if name != "USE_STATUS"}] * 2
    report = validator.check_batch(batch)
    assert [item["index"] for item in dicts(report.errors)] == [0, 1]
    assert report == record_by_record(validator, batch)
