"""Record-shape checks of 02 modify and 03 delete batches: exact rules, messages and order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from tzsb.catalog import load_catalog
from tzsb.errors import FieldFault, RecordFault
from tzsb.rules import compile_validator, delete_faults, modify_faults
from tzsb.rules.shape import duplicate_key_message

DEVICES: Final = load_catalog()["0101"]
KEY: Final = "31103301062014080025"
OTHER: Final = "31103301062014080026"
MODIFY_KEY: Final = FieldFault(
    "EQP_CODE",
    "required",
    "设备代码（EQP_CODE）为必填项：修改须按主键指定记录 / EQP_CODE is required to name the record",
)
DELETE_KEY: Final = FieldFault(
    "EQP_CODE", "required", "删除须按主键 EQP_CODE 指定记录 / EQP_CODE is required to name the record to delete"
)


def dicts(faults: Sequence[RecordFault]) -> list[dict[str, Any]]:
    return [fault.as_dict() for fault in faults]


def extra(name: str) -> FieldFault:
    return FieldFault(
        name, "unknown_field", f"删除只接受主键 EQP_CODE，请去掉 {name} / a delete takes only EQP_CODE; remove {name}"
    )


def duplicate(key: str, first: int) -> FieldFault:
    return FieldFault("EQP_CODE", "duplicate_key", duplicate_key_message(key, first))


# ------------------------------------------------------------------ 02 modify


def test_modify_names_each_record_by_its_key() -> None:
    records: list[dict[str, Any]] = [{"EQP_CODE": KEY, "USE_STATUS": "3"}, {"USE_STATUS": "3"}, {"EQP_CODE": " \u3000"}]
    assert modify_faults(records, DEVICES, []) == [
        RecordFault(1, None, errors=(MODIFY_KEY,)),
        RecordFault(2, None, errors=(MODIFY_KEY,)),
    ]
    assert dicts(modify_faults(records[:1], DEVICES, [])) == []


def test_modify_key_error_comes_first_among_the_validators_errors() -> None:
    validator = compile_validator(DEVICES)
    records = [{"USE_STATUS": "7"}, {"EQP_CODE": KEY, "USE_STATUS": "7"}, {"EQP_CODE": ""}]
    found = modify_faults(records, DEVICES, validator.validate_batch(records, partial=True))
    assert [(fault.index, fault.key, [error.rule for error in fault.errors or ()]) for fault in found] == [
        (0, None, ["required", "code_list"]),
        (1, KEY, ["code_list"]),
        (2, "", ["required"]),
    ]
    assert found[0].errors is not None
    assert found[0].errors[0] == MODIFY_KEY
    # A key sent blank already has the validator's required error on the key field: no second one.
    assert found[2].errors is not None
    assert found[2].errors[0].message == (
        "设备代码（EQP_CODE）为必填项，不能为空 / EQP_CODE is required and must not be blank"
    )


def test_modify_keeps_an_existing_error_on_the_key_field() -> None:
    """A key that is there but wrong (a number) keeps its own error; no second one is added."""
    validator = compile_validator(DEVICES)
    records = [{"EQP_CODE": 42}]
    faults = validator.validate_batch(records, partial=True)
    assert [error.rule for fault in faults for error in fault.errors or ()] == ["type"]
    assert modify_faults(records, DEVICES, faults) == faults


def test_modify_answers_in_batch_order() -> None:
    given = [RecordFault(3, "x", errors=(FieldFault("USE_STATUS", "code_list", "m"),))]
    records: list[dict[str, Any]] = [{}, {"EQP_CODE": KEY}, {}, {"EQP_CODE": OTHER}]
    assert [fault.index for fault in modify_faults(records, DEVICES, given)] == [0, 2, 3]


# ------------------------------------------------------------------ 03 delete


def test_delete_takes_only_the_key() -> None:
    assert delete_faults([{"EQP_CODE": KEY}, {"EQP_CODE": OTHER}], DEVICES) == []
    records: list[dict[str, Any]] = [{"EQP_CODE": KEY, "USE_STATUS": "3", "NOPE": 1}, {}, {"EQP_CODE": 42}]
    assert delete_faults(records, DEVICES) == [
        RecordFault(0, KEY, errors=(extra("USE_STATUS"), extra("NOPE"))),
        RecordFault(1, None, errors=(DELETE_KEY,)),
        RecordFault(2, None, errors=(DELETE_KEY,)),
    ]


def test_delete_reports_a_key_sent_twice() -> None:
    records = [{"EQP_CODE": KEY}, {"EQP_CODE": OTHER}, {"EQP_CODE": KEY, "X": "1"}, {"EQP_CODE": KEY}]
    assert dicts(delete_faults(records, DEVICES)) == [
        {
            "index": 2,
            "key": KEY,
            "errors": [
                {
                    "field": "EQP_CODE",
                    "rule": "duplicate_key",
                    "message": f"主键 {KEY} 与第 0 条重复，同一批次中每条记录只能出现一次 / "
                    f"primary key {KEY} repeats record 0; send each record once per batch",
                },
                extra("X").as_dict(),
            ],
        },
        {"index": 3, "key": KEY, "errors": [duplicate(KEY, 0).as_dict()]},
    ]


def test_delete_with_blank_keys_reports_them_missing_and_repeated() -> None:
    assert delete_faults([{"EQP_CODE": ""}, {"EQP_CODE": " "}, {"EQP_CODE": ""}], DEVICES) == [
        RecordFault(0, "", errors=(DELETE_KEY,)),
        RecordFault(1, " ", errors=(DELETE_KEY,)),
        RecordFault(2, "", errors=(duplicate("", 0), DELETE_KEY)),
    ]


def test_the_duplicate_key_message_is_the_validators() -> None:
    validator = compile_validator(DEVICES)
    record = {"EQP_CODE": KEY}
    (validated,) = validator.validate_batch([record, record], partial=True)
    (deleted,) = delete_faults([record, record], DEVICES)
    assert validated == deleted == RecordFault(1, KEY, errors=(duplicate(KEY, 0),))
