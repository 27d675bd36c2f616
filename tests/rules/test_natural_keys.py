"""Natural keys (一数一源 across keys): the catalog's declarations become rules ``natural-key-<name>``,
checked within the batch and against the store through one look-up per batch."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Final

import pytest

from tzsb.catalog import load_catalog
from tzsb.clock import BEIJING, FixedClock
from tzsb.errors import ConfigurationError, RecordFault
from tzsb.rules import NaturalKeyHolder, RecordValidator
from tzsb.rules.ruleset import shipped_rule_sets

CATALOG: Final = load_catalog()
DEVICES: Final = CATALOG["0101"]
CLOCK: Final = FixedClock(datetime(2026, 11, 28, 9, 30, tzinfo=BEIJING))
VALID: Final = dict(shipped_rule_sets()["0101"].valid_cases[0])

REG_LABEL: Final = "注册代码（REG_CODE）"
PAIR_LABEL: Final = "出厂编号（FACTORY_NO）+制造单位名称（MAKE_UNIT_NAME）"


def device(number: int, **changes: Any) -> dict[str, Any]:
    """A valid device with its own key and natural keys (``number``); ``changes`` set fields, ``...`` removes one."""
    record = dict(
        VALID,
        EQP_CODE=f"3110330122019{number:05d}",
        REG_CODE=f"311033010620190{number:05d}",
        USE_CERT_NO=f"梯11浙A{number:05d}(19)",
        FACTORY_NO=f"E19A{number:05d}",
    )
    record.update(changes)
    return {name: value for name, value in record.items() if value is not ...}


def validator(
    severities: Mapping[str, str] | None = None, disabled: Collection[str] = (), business: Any = DEVICES
) -> RecordValidator:
    return RecordValidator(business, [], severities, disabled, CLOCK)


class Store:
    """A natural-key look-up over fixed holders, counting the questions it is asked."""

    def __init__(self, held: Mapping[str, Mapping[str, Sequence[NaturalKeyHolder]]] | None = None) -> None:
        self.held = held or {}
        self.asked: list[tuple[str, dict[str, set[str]]]] = []

    def __call__(
        self, business: str, wanted: Mapping[str, Collection[str]]
    ) -> Mapping[str, Mapping[str, Sequence[NaturalKeyHolder]]]:
        self.asked.append((business, {name: set(values) for name, values in wanted.items()}))
        return {
            name: {value: holders for value, holders in self.held.get(name, {}).items() if value in values}
            for name, values in wanted.items()
        }


def faults(report_part: Sequence[RecordFault]) -> list[tuple[int, str | None, list[tuple[str, str, str]]]]:
    return [
        (fault.index, fault.key, [(item.field, item.rule, item.message) for item in (fault.errors or fault.warnings)])
        for fault in report_part
    ]


def stored_message(label: str, name: str, *named: tuple[str, str], more: bool = False) -> str:
    zh = "、".join(f"{key}（来源 {source}）" for key, source in named) + ("等" if more else "")
    en = ", ".join(f"{key} (source {source})" for key, source in named) + (" and more" if more else "")
    return (
        f"{label}与本节点已有记录 {zh} 相同，可能是同一对象的重复记录 / "
        f"{name} equals that of stored record {en}: the same thing may be stored twice"
    )


def hidden_message(label: str, name: str) -> str:
    return (
        f"{label}与本节点一条您无权查看的记录相同，可能是同一对象的重复记录 / "
        f"{name} equals that of a record this node holds outside your view: the same thing may be stored twice"
    )


def batch_message(label: str, name: str, index: int, key: str) -> str:
    return (
        f"{label}与本批第 {index} 条记录（{key}）相同，可能是同一对象的重复记录 / "
        f"{name} equals that of record {index} of this batch ({key}): the same thing may be sent twice"
    )


# ------------------------------------------------------------------ within the batch


def test_two_records_of_a_batch_with_one_natural_key_and_two_primary_keys() -> None:
    first, second = device(1), device(2, REG_CODE=device(1)["REG_CODE"])
    third = device(3, FACTORY_NO=device(1)["FACTORY_NO"])
    report = validator().check_batch([first, second, third])
    assert report.errors == []
    key = first["EQP_CODE"]
    assert faults(report.warnings) == [
        (1, second["EQP_CODE"], [("REG_CODE", "natural-key-REG_CODE", batch_message(REG_LABEL, "REG_CODE", 0, key))]),
        (
            2,
            third["EQP_CODE"],
            [
                (
                    "FACTORY_NO",
                    "natural-key-FACTORY_NO+MAKE_UNIT_NAME",
                    batch_message(PAIR_LABEL, "FACTORY_NO+MAKE_UNIT_NAME", 0, key),
                )
            ],
        ),
    ]


def test_one_field_of_a_pair_in_common_is_no_duplicate() -> None:
    batch = [device(1), device(2, MAKE_UNIT_NAME="宁波某电梯有限公司"), device(3, FACTORY_NO="E19A00001X")]
    batch[2]["MAKE_UNIT_NAME"] = batch[1]["MAKE_UNIT_NAME"]
    assert validator().check_batch(batch).warnings == []


def test_the_same_primary_key_twice_is_a_duplicate_key_not_a_natural_key() -> None:
    report = validator().check_batch([device(1), device(1)])
    assert [[item.rule for item in fault.errors or ()] for fault in report.errors] == [["duplicate_key"]]
    assert report.warnings == []


def test_blank_and_missing_values_never_match() -> None:
    batch = [
        device(1, REG_CODE=..., USE_CERT_NO="", FACTORY_NO=" "),
        device(2, REG_CODE=..., USE_CERT_NO="", FACTORY_NO=" "),
        device(3, REG_CODE=None, USE_CERT_NO="\u3000", FACTORY_NO="F1", MAKE_UNIT_NAME=...),
        device(4, REG_CODE=None, USE_CERT_NO="\u3000", FACTORY_NO="F1", MAKE_UNIT_NAME=...),
    ]
    store = Store()
    report = validator().check_batch(batch, natural_keys=store)
    assert (report.errors, report.warnings) == ([], [])
    assert store.asked == []  # no value to ask about


# ------------------------------------------------------------------ against the store


def test_a_stored_record_the_caller_may_see_is_named_with_its_source() -> None:
    record = device(2, REG_CODE=device(1)["REG_CODE"])
    store = Store({"REG_CODE": {record["REG_CODE"]: [NaturalKeyHolder(device(1)["EQP_CODE"], "hz-a", True)]}})
    report = validator().check_batch([record], natural_keys=store)
    message = stored_message(REG_LABEL, "REG_CODE", (device(1)["EQP_CODE"], "hz-a"))
    assert faults(report.warnings) == [(0, record["EQP_CODE"], [("REG_CODE", "natural-key-REG_CODE", message)])]


def test_a_stored_record_outside_the_callers_view_is_not_named() -> None:
    record = device(2, USE_CERT_NO=device(1)["USE_CERT_NO"])
    store = Store({"USE_CERT_NO": {record["USE_CERT_NO"]: [NaturalKeyHolder(device(1)["EQP_CODE"], "", False)]}})
    report = validator().check_batch([record], natural_keys=store)
    message = hidden_message("使用登记证编号（USE_CERT_NO）", "USE_CERT_NO")
    assert faults(report.warnings) == [(0, record["EQP_CODE"], [("USE_CERT_NO", "natural-key-USE_CERT_NO", message)])]
    assert device(1)["EQP_CODE"] not in message


def test_seen_holders_are_named_first_by_key_three_at_most() -> None:
    record = device(9)
    holders = [
        NaturalKeyHolder("K4", "d", True),
        NaturalKeyHolder("K2", "b", True),
        NaturalKeyHolder("K0", "", False),
        NaturalKeyHolder("K3", "c", True),
        NaturalKeyHolder("K1", "a", True),
    ]
    store = Store({"REG_CODE": {record["REG_CODE"]: holders}})
    (warning,) = validator().check_batch([record], natural_keys=store).warnings
    assert [item.message for item in warning.warnings or ()] == [
        stored_message(REG_LABEL, "REG_CODE", ("K1", "a"), ("K2", "b"), ("K3", "c"), more=True)
    ]


def test_a_record_never_duplicates_itself() -> None:
    """A re-send or an update of a stored record finds that record holding its natural keys."""
    record = device(1)
    store = Store(
        {
            "REG_CODE": {record["REG_CODE"]: [NaturalKeyHolder(record["EQP_CODE"], "hz-a", True)]},
            "USE_CERT_NO": {record["USE_CERT_NO"]: [NaturalKeyHolder(record["EQP_CODE"], "", False)]},
        }
    )
    assert validator().check_batch([record], natural_keys=store).warnings == []
    # Itself and another: only the other counts.
    store.held["REG_CODE"] = {
        record["REG_CODE"]: [NaturalKeyHolder(record["EQP_CODE"], "hz-a", True), NaturalKeyHolder("K9", "nb", True)]
    }
    (warning,) = validator().check_batch([record], natural_keys=store).warnings
    assert [item.message for item in warning.warnings or ()] == [stored_message(REG_LABEL, "REG_CODE", ("K9", "nb"))]


def test_the_store_is_asked_once_per_batch_for_every_key() -> None:
    batch = [device(number) for number in range(50)] + [device(50, FACTORY_NO=...), device(51, REG_CODE=" ")]
    store = Store()
    assert validator().check_batch(batch, natural_keys=store).warnings == []
    assert len(store.asked) == 1
    business, asked = store.asked[0]
    assert business == "0101"
    assert asked == {
        "REG_CODE": {record["REG_CODE"] for record in batch[:51]},
        "USE_CERT_NO": {record["USE_CERT_NO"] for record in batch},
        "FACTORY_NO+MAKE_UNIT_NAME": {f"{record['FACTORY_NO']}\x1f{record['MAKE_UNIT_NAME']}" for record in batch[:50]}
        | {f"{batch[51]['FACTORY_NO']}\x1f{batch[51]['MAKE_UNIT_NAME']}"},
    }
    assert validator().natural_key_values(batch) == asked


def test_a_modify_checks_no_natural_key() -> None:
    store = Store({"REG_CODE": {device(1)["REG_CODE"]: [NaturalKeyHolder("K9", "x", True)]}})
    report = validator().check_batch([device(2, REG_CODE=device(1)["REG_CODE"])] * 1, partial=True, natural_keys=store)
    assert (report.errors, report.warnings, store.asked) == ([], [], [])


def test_a_stored_and_a_batch_duplicate_are_both_reported() -> None:
    first, second = device(1), device(2, REG_CODE=device(1)["REG_CODE"])
    store = Store({"REG_CODE": {first["REG_CODE"]: [NaturalKeyHolder("K9", "nb", True)]}})
    report = validator().check_batch([first, second], natural_keys=store)
    stored = ("REG_CODE", "natural-key-REG_CODE", stored_message(REG_LABEL, "REG_CODE", ("K9", "nb")))
    in_batch = ("REG_CODE", "natural-key-REG_CODE", batch_message(REG_LABEL, "REG_CODE", 0, first["EQP_CODE"]))
    assert faults(report.warnings) == [
        (0, first["EQP_CODE"], [stored]),
        (1, second["EQP_CODE"], [stored, in_batch]),
    ]


# ------------------------------------------------------------------ configuration


def test_severity_is_configured_by_rule_id() -> None:
    batch = [device(1), device(2, REG_CODE=device(1)["REG_CODE"])]
    report = validator({"natural-key-REG_CODE": "error"}).check_batch(batch)
    assert report.warnings == []
    assert faults(report.errors) == [
        (
            1,
            batch[1]["EQP_CODE"],
            [("REG_CODE", "natural-key-REG_CODE", batch_message(REG_LABEL, "REG_CODE", 0, batch[0]["EQP_CODE"]))],
        )
    ]


def test_the_catalog_declares_a_key_an_error() -> None:
    strict = replace(
        DEVICES,
        natural_keys=tuple(
            replace(key, severity="error") if key.name == "REG_CODE" else key for key in DEVICES.natural_keys
        ),
    )
    batch = [device(1), device(2, REG_CODE=device(1)["REG_CODE"], USE_CERT_NO=device(1)["USE_CERT_NO"])]
    report = validator(business=strict).check_batch(batch)
    assert [item.rule for fault in report.errors for item in fault.errors or ()] == ["natural-key-REG_CODE"]
    assert [item.rule for fault in report.warnings for item in fault.warnings or ()] == ["natural-key-USE_CERT_NO"]
    # …and a rule set may make it a warning again.
    relaxed = validator({"natural-key-REG_CODE": "warning"}, business=strict).check_batch(batch)
    assert relaxed.errors == []


def test_a_natural_key_can_be_switched_off() -> None:
    batch = [device(1), device(2, REG_CODE=device(1)["REG_CODE"], USE_CERT_NO=device(1)["USE_CERT_NO"])]
    store = Store()
    checked = validator(disabled=["natural-key-REG_CODE"])
    report = checked.check_batch(batch, natural_keys=store)
    assert [item.rule for fault in report.warnings for item in fault.warnings or ()] == ["natural-key-USE_CERT_NO"]
    assert set(store.asked[0][1]) == {"USE_CERT_NO", "FACTORY_NO+MAKE_UNIT_NAME"}
    everything_off = validator(disabled=[key.rule_id for key in DEVICES.natural_keys])
    assert not everything_off.checks_natural_keys
    assert everything_off.natural_key_values(batch) == {}
    assert everything_off.check_batch(batch, natural_keys=store).warnings == []
    assert len(store.asked) == 1


def test_a_bad_severity_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"^0101: severity of natural-key-REG_CODE must be error or warning$"):
        validator({"natural-key-REG_CODE": "fatal"})


def test_a_record_rule_cannot_take_a_natural_keys_id() -> None:
    rule = {"id": "natural-key-REG_CODE", "type": "numeric_range", "field": "FLOORS", "min": 0}
    with pytest.raises(ConfigurationError, match=r"^0101: rule id natural-key-REG_CODE is used twice$"):
        RecordValidator(DEVICES, [rule], clock=CLOCK)


def test_types_without_natural_keys_ask_nothing() -> None:
    units = RecordValidator(CATALOG["0102"], [], clock=CLOCK)
    store = Store()
    record = dict(shipped_rule_sets()["0102"].valid_cases[0])
    assert not units.checks_natural_keys
    assert units.check_batch([record, dict(record, UNIT_CODE="91110000600037341L")], natural_keys=store).warnings == []
    assert store.asked == []
