"""Guards on rules and answers: clocks a little ahead, key fields that stay strict, bounded error answers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support import body, call, claimed, device, grant, snapshot
from tzsb.app import Node
from tzsb.catalog import load_catalog
from tzsb.clock import FixedClock, business_timestamp
from tzsb.errors import ConfigurationError, RecordFault
from tzsb.rules.ruleset import RULES_FILE, compile_rules
from tzsb.rules.validator import RecordValidator

FUTURE = "更新时间（UPDATE_TIME）不能晚于当前时间 / UPDATE_TIME must not be in the future"


def dicts(faults: Sequence[RecordFault]) -> list[dict[str, Any]]:
    """Record faults in their answer shape, ``{"index", "key", "errors"|"warnings": [...]}``."""
    return [fault.as_dict() for fault in faults]


@pytest.mark.parametrize(("minutes", "accepted"), [(9, True), (11, False)])
def test_a_source_clock_may_run_ten_minutes_ahead(node: Node, clock: FixedClock, minutes: int, accepted: bool) -> None:
    secret = grant(node)
    stamp = business_timestamp(clock.now() + timedelta(minutes=minutes))
    answer = call(node, body("hz-city", secret, "140101", "01", [device(1, UPDATE_TIME=stamp)]))
    if accepted:
        assert answer["datalist"]["result"] == "0001"
    else:
        assert answer["datalist"]["code"] == "E_VALIDATION"
        (detail,) = answer["datalist"]["busilist"]
        assert detail["errors"] == [{"field": "UPDATE_TIME", "rule": "update-time-not-future", "message": FUTURE}]


def test_an_error_answer_stays_small(node: Node) -> None:
    secret = grant(node)
    junk = [{**device(n), **{f"X{field}": "x" for field in range(40)}} for n in range(150)]
    before = snapshot(node)
    answer = call(node, body("hz-city", secret, "140101", "01", junk))
    datalist = answer["datalist"]
    assert datalist["code"] == "E_VALIDATION"
    assert datalist["message"].startswith("有 150 条记录未通过数据校验")
    assert len(datalist["busilist"]) == 100
    assert all(len(detail["errors"]) == 20 for detail in datalist["busilist"])
    assert snapshot(node) == claimed(before, answer)


@pytest.mark.parametrize(
    "override",
    [
        {"severity": {"UPDATE_TIME.required": "warning"}},
        {"severity": {"AREA_CODE.pattern": "warning"}},
        {"disabled": ["EQP_CODE.type"]},
    ],
)
def test_key_region_and_timestamp_rules_cannot_be_relaxed(override: dict[str, object]) -> None:
    catalog = load_catalog()
    with pytest.raises(ConfigurationError, match="cannot be switched off or made a warning"):
        RecordValidator(catalog["0101"], (), override.get("severity"), override.get("disabled", ()))  # type: ignore[arg-type]


def test_a_valid_case_must_be_a_record(tmp_path: Path, clock: FixedClock) -> None:
    path = tmp_path / RULES_FILE
    path.write_bytes(orjson.dumps({"0101": {"cases": {"valid": ["x"]}}}))
    with pytest.raises(ConfigurationError, match="each valid case of 0101 must be a record"):
        compile_rules(load_catalog(), path, clock)


def test_max_ahead_must_be_whole_seconds() -> None:
    rule = {"id": "x", "type": "date_range", "field": "UPDATE_TIME", "not_future": True, "max_ahead_seconds": "10"}
    with pytest.raises(ConfigurationError, match="max_ahead_seconds must be a whole number"):
        RecordValidator(load_catalog()["0101"], [rule])


def test_rule_results_are_not_shared_between_equal_but_different_values(clock: FixedClock) -> None:
    """Within one batch rule results are remembered by value: 1, 1.0 and True must stay apart."""
    rule = {"id": "floors-max", "type": "numeric_range", "field": "FLOORS", "max": 0}
    validator = RecordValidator(load_catalog()["0101"], [rule], clock=clock)
    records = [device(1, FLOORS=True), device(2, FLOORS=1), device(3, FLOORS=1.0)]
    report = validator.check_batch(records)
    faulted = {detail["index"]: sorted(error["rule"] for error in detail["errors"]) for detail in dicts(report.errors)}
    assert faulted == {0: ["type"], 1: ["floors-max"], 2: ["floors-max", "type"]}
