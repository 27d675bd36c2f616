"""Cross-record plausibility (issue 18): an inspection that fails (or grades a pressure vessel 5) while the
device it concerns is stored 在用 is a 重大事故隐患 under the 2024 criteria, and the add says so; the device
is fetched once per batch, and only a device the caller may see is judged."""

from __future__ import annotations

from typing import Any, Final

import pytest

from tests.support import body, call, device, grant
from tzsb.app import Node
from tzsb.exchange import local
from tzsb.rules import shipped_rule_sets

INSPECTION: Final = dict(shipped_rule_sets()["0401"].valid_cases[0])
DEVICES_AND_INSPECTIONS: Final = frozenset({"140101", "140401"})
FAILING: Final = (
    "检验结论不合格，而设备仍为在用：按《特种设备重大事故隐患判定准则》（2024）属重大事故隐患，请核实设备已停用或已整改"
    "（0101 {key}）/ the inspection fails while the device is 在用 (in use): a 重大事故隐患 under the 2024 criteria; "
    "confirm the device is out of use or repaired (0101 {key})"
)
GRADE_5: Final = (
    "压力容器安全状况等级为 5 级，而设备仍为在用：按《特种设备重大事故隐患判定准则》（2024）属重大事故隐患，"
    "请核实设备已停用（0101 {key}）/ the pressure vessel is graded 5 while the device is 在用 (in use): "
    "a 重大事故隐患 under the 2024 criteria; confirm the device is out of use (0101 {key})"
)


def inspection(number: int, device_code: str, **changes: Any) -> dict[str, Any]:
    return {**INSPECTION, "REPORT_NO": f"ZJTJ-T-{number:05d}", "EQP_CODE": device_code, **changes}


def send(node: Node, appid: str, secret: str, busicode: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    answer = call(node, body(appid, secret, busicode, "01", records))
    assert answer["datalist"]["result"] == "0001", answer
    datalist: dict[str, Any] = answer["datalist"]
    return datalist


def rule_warnings(datalist: dict[str, Any]) -> list[tuple[int, str, str]]:
    return [
        (entry["index"], warning["rule"], warning["message"])
        for entry in datalist.get("warnings", [])
        for warning in entry["warnings"]
        if warning["rule"] in ("failing-inspection-of-device-in-use", "grade-5-vessel-in-use")
    ]


@pytest.fixture
def city(node: Node) -> str:
    return grant(node, busicodes=DEVICES_AND_INSPECTIONS)


def test_a_failing_inspection_of_a_device_in_use_is_a_major_hidden_danger(node: Node, city: str) -> None:
    lift = device(1, LAST_INSP_DATE="2025-08-15")
    send(node, "hz-city", city, "140101", [lift])
    added = send(node, "hz-city", city, "140401", [inspection(1, lift["EQP_CODE"], INSP_CONCLUSION="3")])
    assert rule_warnings(added) == [(0, "failing-inspection-of-device-in-use", FAILING.format(key=lift["EQP_CODE"]))]


@pytest.mark.parametrize(
    ("device_changes", "inspection_changes"),
    [
        ({"USE_STATUS": "3"}, {"INSP_CONCLUSION": "3"}),  # the device is 停用
        ({}, {"INSP_CONCLUSION": "1"}),  # the inspection passes
        ({"LAST_INSP_DATE": "2026-09-01"}, {"INSP_CONCLUSION": "3"}),  # an older inspection than the device's last
    ],
    ids=["device-out-of-use", "inspection-passes", "older-than-last-inspection"],
)
def test_nothing_to_report(
    node: Node, city: str, device_changes: dict[str, str], inspection_changes: dict[str, str]
) -> None:
    lift = device(1, **device_changes)
    send(node, "hz-city", city, "140101", [lift])
    added = send(node, "hz-city", city, "140401", [inspection(1, lift["EQP_CODE"], **inspection_changes)])
    assert rule_warnings(added) == []


def test_a_pressure_vessel_graded_5_while_in_use(node: Node, city: str) -> None:
    vessel = device(7, EQP_CODE="215033010620150007", EQP_TYPE="2000", EQP_SORT="2100", EQP_VART="2150")
    send(node, "hz-city", city, "140101", [vessel])
    graded = inspection(2, vessel["EQP_CODE"], EQP_VART="2150", INSP_CONCLUSION="6", SAFETY_GRADE="5")
    added = send(node, "hz-city", city, "140401", [graded])
    assert rule_warnings(added) == [(0, "grade-5-vessel-in-use", GRADE_5.format(key=vessel["EQP_CODE"]))]


def test_the_devices_are_fetched_once_per_batch(node: Node, city: str, monkeypatch: pytest.MonkeyPatch) -> None:
    lifts = [device(number) for number in range(40)]
    send(node, "hz-city", city, "140101", lifts)
    calls: list[tuple[str, int]] = []
    fetch = local.records_read.fetch

    def counted(connection: Any, business: str, keys: Any) -> Any:
        keys = list(keys)
        calls.append((business, len(keys)))
        return fetch(connection, business, keys)

    monkeypatch.setattr(local.records_read, "fetch", counted)
    batch = [inspection(n, lift["EQP_CODE"], INSP_CONCLUSION="3") for n, lift in enumerate(lifts)]
    added = send(node, "hz-city", city, "140401", batch)
    assert len(rule_warnings(added)) == 40
    assert calls.count(("0101", 40)) == 1
    assert [call for call in calls if call[0] == "0101"] == [("0101", 40)]


def test_a_device_the_caller_may_not_see_is_not_judged(node: Node, city: str) -> None:
    lift = device(1)
    send(node, "hz-city", city, "140101", [lift])
    failing = inspection(1, lift["EQP_CODE"], INSP_CONCLUSION="3")
    # An inspection institute granted inspections only: a warning would tell it the device's status.
    institute = grant(node, "institute", busicodes=frozenset({"140401"}))
    assert rule_warnings(send(node, "institute", institute, "140401", [failing])) == []
    # An app that sees devices masked learns nothing of another source's device either.
    masked = grant(node, "masked", busicodes=DEVICES_AND_INSPECTIONS, unmasked=frozenset())
    other = inspection(2, lift["EQP_CODE"], INSP_CONCLUSION="3")
    assert rule_warnings(send(node, "masked", masked, "140401", [other])) == []


# ------------------------------------------------------------------ the device side: a device sent 在用

LATEST_FAILING: Final = (
    "设备为在用，而其最新检验结论不合格：按《特种设备重大事故隐患判定准则》（2024）属重大事故隐患，请核实已整改并复检"
    "（0401 {key}）/ the device is 在用 (in use) while its latest inspection fails: a 重大事故隐患 under the 2024 "
    "criteria; confirm it was repaired and re-inspected (0401 {key})"
)


def test_a_device_sent_in_use_whose_latest_inspection_fails(node: Node, city: str) -> None:
    lift = device(1, USE_STATUS="3")
    send(node, "hz-city", city, "140101", [lift])
    send(node, "hz-city", city, "140401", [
        inspection(1, lift["EQP_CODE"], INSP_DATE="2024-08-15", INSP_CONCLUSION="1"),
        inspection(2, lift["EQP_CODE"], INSP_DATE="2026-08-15", INSP_CONCLUSION="3"),
    ])  # fmt: skip
    back_in_use = send(
        node, "hz-city", city, "140101", [{**lift, "USE_STATUS": "2", "UPDATE_TIME": "2026-11-02 10:00:00"}]
    )
    assert [(i, rule) for i, rule, _ in rule_warnings_device(back_in_use)] == [
        (0, "in-use-with-failing-latest-inspection")
    ]
    assert rule_warnings_device(back_in_use)[0][2] == LATEST_FAILING.format(key=lift["EQP_CODE"])


def test_a_passing_latest_inspection_clears_the_device(node: Node, city: str) -> None:
    lift = device(1, USE_STATUS="3")
    send(node, "hz-city", city, "140101", [lift])
    send(node, "hz-city", city, "140401", [
        inspection(1, lift["EQP_CODE"], INSP_DATE="2024-08-15", INSP_CONCLUSION="3"),
        inspection(2, lift["EQP_CODE"], INSP_DATE="2026-08-15", INSP_CONCLUSION="2"),  # 复检合格, later
    ])  # fmt: skip
    again = send(node, "hz-city", city, "140101", [{**lift, "USE_STATUS": "2", "UPDATE_TIME": "2026-11-02 10:00:00"}])
    assert rule_warnings_device(again) == []


def test_the_device_side_keeps_the_insert_overlap_and_asks_once(
    node: Node, city: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 0101 add still inserts while it validates; the inspections are asked once, before the insert."""
    lifts = [device(number, USE_STATUS="3") for number in range(30)]
    send(node, "hz-city", city, "140101", lifts)
    send(
        node,
        "hz-city",
        city,
        "140401",
        [inspection(n, lift["EQP_CODE"], INSP_CONCLUSION="4") for n, lift in enumerate(lifts)],
    )
    asked: list[int] = []
    newest = local.natural_keys.newest

    def counted(connection: Any, business: str, field: str, newest_by: Any, values: Any) -> Any:
        asked.append(len(values))
        return newest(connection, business, field, newest_by, values)

    monkeypatch.setattr(local.natural_keys, "newest", counted)
    in_use = [{**lift, "USE_STATUS": "2", "UPDATE_TIME": "2026-11-02 10:00:00"} for lift in lifts]
    added = send(node, "hz-city", city, "140101", in_use)
    assert len(rule_warnings_device(added)) == 30
    assert asked == [30]
    assert not node.rules.current().validators["0101"].reads_store


def test_inspections_the_caller_may_not_see_say_nothing(node: Node, city: str) -> None:
    first, second = device(2), device(3)
    send(node, "hz-city", city, "140401", [
        inspection(1, first["EQP_CODE"], INSP_CONCLUSION="3"),
        inspection(2, second["EQP_CODE"], INSP_CONCLUSION="3"),
    ])  # fmt: skip
    # Granted devices only: a warning would tell it an inspection's conclusion.
    devices_only = grant(node, "devices-only", busicodes=frozenset({"140101"}))
    assert rule_warnings_device(send(node, "devices-only", devices_only, "140101", [first])) == []
    # Granted both, but seeing inspections masked: another source's inspection says nothing either.
    masked = grant(node, "masked", busicodes=DEVICES_AND_INSPECTIONS, unmasked=frozenset({"0101"}))
    assert rule_warnings_device(send(node, "masked", masked, "140101", [second])) == []


def rule_warnings_device(datalist: dict[str, Any]) -> list[tuple[int, str, str]]:
    return [
        (entry["index"], warning["rule"], warning["message"])
        for entry in datalist.get("warnings", [])
        for warning in entry["warnings"]
        if warning["rule"] in ("in-use-with-failing-latest-inspection", "in-use-vessel-graded-5")
    ]
