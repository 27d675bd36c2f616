"""The rule contract: the public face of ``tzsb.rules``, declared rule types, and a new type as one module."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tzsb.catalog import load_catalog
from tzsb.clock import BEIJING, FixedClock
from tzsb.rules import record_rules, validator
from tzsb.rules.contract import BuiltRule, RecordLookup, RecordRuleType
from tzsb.rules.record_rules import RECORD_RULE_TYPES
from tzsb.rules.ruleset import shipped_rule_sets


def test_every_record_rule_module_declares_one_rule_type() -> None:
    for rule_id, rule_type in RECORD_RULE_TYPES.items():
        assert isinstance(rule_type, RecordRuleType)
        assert rule_type.id == rule_id


def test_the_validator_knows_no_rule_type_by_name() -> None:
    source = Path(validator.__file__).read_text(encoding="utf-8")
    for rule_id in RECORD_RULE_TYPES:
        assert f'"{rule_id}"' not in source
        assert f"record_rules.{rule_id}" not in source


def test_a_built_rule_is_a_check_or_a_lookup() -> None:
    with pytest.raises(TypeError):
        BuiltRule(None, ("A",), frozenset({"A"}))
    with pytest.raises(TypeError):
        BuiltRule(lambda record, now: [], ("A",), frozenset({"A"}), RecordLookup("0101", "A", "m"))


NEW_TYPE = """
from tzsb.rules.base import present, require_field
from tzsb.rules.contract import BuiltRule, RecordLookup, RecordRuleType


def build(params, context):
    field = require_field(params, "field", context)
    if params.get("held_in"):
        return BuiltRule(None, (field,), frozenset({field}), RecordLookup(params["held_in"], field, "not held"))

    def check(record, now):
        value = present(record, field)
        return [(field, f"lower case at {now}")] if isinstance(value, str) and value != value.upper() else []

    return BuiltRule(check, (field,), frozenset({field}))


RULE_TYPE = RecordRuleType("upper_case", build)
"""


def test_a_new_rule_type_is_one_new_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "upper_case.py").write_text(NEW_TYPE, encoding="utf-8")
    monkeypatch.setattr(record_rules, "__path__", [*record_rules.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "tzsb.rules.record_rules.upper_case", raising=False)
    discovered = record_rules._discover()
    sys.modules.pop("tzsb.rules.record_rules.upper_case", None)
    assert set(discovered) == {*RECORD_RULE_TYPES, "upper_case"}
    monkeypatch.setattr(validator, "RECORD_RULE_TYPES", discovered)

    clock = FixedClock(datetime(2026, 11, 28, 9, 30, tzinfo=BEIJING))
    rules: list[Mapping[str, Any]] = [
        {"id": "name-upper", "type": "upper_case", "field": "EQP_NAME", "severity": "warning"},
        {"id": "code-held", "type": "upper_case", "field": "USE_UNIT_CODE", "held_in": "0102"},
    ]
    compiled = validator.RecordValidator(load_catalog()["0101"], rules, clock=clock)
    assert compiled.reads_store
    record = dict(shipped_rule_sets()["0101"].valid_cases[0], EQP_NAME="lift", USE_UNIT_CODE="91110000600037341L")
    assert [(v.field, v.rule, v.message) for v in compiled.violations(record)] == [
        ("EQP_NAME", "name-upper", "lower case at 2026-11-28 09:30:00")
    ]
    asked: list[tuple[str, set[str]]] = []

    def lookup(business: str, keys: Any) -> set[str]:
        asked.append((business, set(keys)))
        return set()

    report = compiled.check_batch([record], partial=False, now="2026-12-01 00:00:00", lookup=lookup)
    assert asked == [("0102", {"91110000600037341L"})]
    assert [fault.as_dict()["warnings"] for fault in report.warnings] == [
        [{"field": "EQP_NAME", "rule": "name-upper", "message": "lower case at 2026-12-01 00:00:00"}]
    ]
    assert [(e.field, e.rule, e.message) for fault in report.errors for e in fault.errors or ()] == [
        ("USE_UNIT_CODE", "code-held", "not held")
    ]
