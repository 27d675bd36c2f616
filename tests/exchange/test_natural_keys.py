"""一数一源 across natural keys (issue 17): a second device under a new EQP_CODE with the 注册代码, the
使用登记证编号, or the 出厂编号 and 制造单位名称 of a stored one is no longer accepted silently.

The warning names the stored record and its source when the caller may access that record (as an add
colliding with its key would be told); of a record outside the caller's view it says only that one
exists, and of personal data (a sensitive field, a value that is an ID or mobile number) nothing at
all. The store is asked once per batch, before the batch's own records are inserted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import orjson
import pytest
import sqlalchemy as sa

from tests.catalog.test_loader import shipped_document
from tests.support import body, call, claimed, device, grant, snapshot
from tzsb import refusals
from tzsb.app import Node, build_node
from tzsb.clock import FixedClock
from tzsb.exchange.writes import WriteOutcome
from tzsb.registry import MasterKey
from tzsb.rules import shipped_rule_sets
from tzsb.rules.ruleset import RULES_FILE
from tzsb.settings import load_settings, write_config
from tzsb.store import natural_keys

DEVICES: Final = frozenset({"140101"})
LABELS: Final = {
    ("REG_CODE",): "注册代码（REG_CODE）",
    ("USE_CERT_NO",): "使用登记证编号（USE_CERT_NO）",
    ("FACTORY_NO", "MAKE_UNIT_NAME"): "出厂编号（FACTORY_NO）+制造单位名称（MAKE_UNIT_NAME）",
}
KEYS: Final = list(LABELS)
LOOKUP_MARK: Final = "found.source_appid"
ONE_INVALID: Final = refusals.records_invalid((), 1)
#: A valid ID number (GB 11643): a certificate number may be one.
ID_NUMBER: Final = "11010519491231002X"


def lift(number: int, **changes: Any) -> dict[str, Any]:
    """A valid 0101 device whose natural keys are its own (``number``)."""
    natural = {
        "REG_CODE": f"3110330106201908{number:04d}",
        "USE_CERT_NO": f"梯11浙A{number:05d}(19)",
        "FACTORY_NO": f"E19A{number:04d}",
        "MAKE_UNIT_NAME": "杭州华信电梯股份有限公司",
    }
    return device(number, **{**natural, **changes})


def same_key_as(number: int, other: int, fields: tuple[str, ...]) -> dict[str, Any]:
    """Device ``number`` holding device ``other``'s natural key ``fields`` (its other keys its own)."""
    stored = lift(other)
    return lift(number, **{field: stored[field] for field in fields})


def stored_message(fields: tuple[str, ...], key: str, source: str) -> str:
    name = "+".join(fields)
    return (
        f"{LABELS[fields]}与本节点已有记录 {key}（来源 {source}） 相同，可能是同一对象的重复记录 / "
        f"{name} equals that of stored record {key} (source {source}): the same thing may be stored twice"
    )


def hidden_message(fields: tuple[str, ...]) -> str:
    return (
        f"{LABELS[fields]}与本节点一条您无权查看的记录相同，可能是同一对象的重复记录 / "
        f"{'+'.join(fields)} equals that of a record this node holds outside your view: the same thing may be "
        "stored twice"
    )


def batch_message(fields: tuple[str, ...], index: int, key: str) -> str:
    return (
        f"{LABELS[fields]}与本批第 {index} 条记录（{key}）相同，可能是同一对象的重复记录 / "
        f"{'+'.join(fields)} equals that of record {index} of this batch ({key}): the same thing may be sent twice"
    )


def fault(fields: tuple[str, ...], message: str) -> dict[str, str]:
    return {"field": fields[0], "rule": f"natural-key-{'+'.join(fields)}", "message": message}


def with_warnings(outcome: WriteOutcome, count: int) -> str:
    return outcome.message() + f"；数据质量警告 {count} 条 / {count} record(s) with warnings"


class Sender:
    """One app, sending 0101 requests; counts the natural-key look-ups the node makes meanwhile."""

    def __init__(self, node: Node, appid: str, busicode: str = "140101", **options: Any) -> None:
        options.setdefault("busicodes", DEVICES | {busicode})
        self.node, self.appid, self.busicode = node, appid, busicode
        self.secret = grant(node, appid=appid, **options)

    def send(self, busilist: list[dict[str, Any]], action: str = "01") -> dict[str, Any]:
        answer: dict[str, Any] = call(self.node, body(self.appid, self.secret, self.busicode, action, busilist))
        return answer

    def ok(self, busilist: list[dict[str, Any]], action: str = "01") -> dict[str, Any]:
        datalist: dict[str, Any] = self.send(busilist, action)["datalist"]
        assert datalist["result"] == "0001", datalist
        return datalist

    def clean(self, busilist: list[dict[str, Any]], outcome: WriteOutcome) -> None:
        """Accepted with no warning at all."""
        datalist = self.ok(busilist)
        assert (datalist["message"], datalist.get("warnings")) == (outcome.message(), None), datalist

    def refused_invalid(self, busilist: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Refused E_VALIDATION for one record, nothing written but the claim; returns the details."""
        before = snapshot(self.node)
        answer = self.send(busilist)
        datalist = answer["datalist"]
        assert (datalist["result"], datalist["code"], datalist["message"]) == (
            "0000",
            ONE_INVALID.code.value,
            ONE_INVALID.message,
        ), datalist
        assert snapshot(self.node) == claimed(before, answer)
        details: list[dict[str, Any]] = datalist["busilist"]
        return details


@pytest.fixture
def hz_a(node: Node) -> Sender:
    """杭州 (330100): stored device 1 first."""
    sender = Sender(node, "hz-a")
    sender.clean([lift(1)], WriteOutcome(inserted=1))
    return sender


@pytest.fixture
def hz_b(node: Node) -> Sender:
    """Another app of 杭州, seeing devices unmasked: it may access hz-a's devices."""
    return Sender(node, "hz-b")


@pytest.fixture
def ningbo(node: Node) -> Sender:
    """宁波 (330200): hz-a's devices are outside its view."""
    return Sender(node, "nb-city", region="330200")


def stored_keys(node: Node) -> list[str]:
    with node.store.read() as connection:
        return [key for (key,) in connection.exec_driver_sql("SELECT record_key FROM records ORDER BY record_key")]


class Lookups:
    """Counts the natural-key look-ups sent on the node's database."""

    def __init__(self, node: Node) -> None:
        self.count = 0
        sa.event.listen(node.store.engine, "before_cursor_execute", self._seen)

    def _seen(self, connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.count += LOOKUP_MARK in statement


def validate_first(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make adds validate before they plan (as when the writers' lock is taken, or a reference rule is on)."""
    monkeypatch.setattr(node.exchange.local, "_add_while_validating", lambda *args: None)


PATHS: Final = ["insert-while-validating", "validate-first"]


# ------------------------------------------------------------------ the issue


@pytest.mark.parametrize("fields", KEYS, ids=["+".join(fields) for fields in KEYS])
@pytest.mark.parametrize("path", PATHS)
def test_a_second_device_with_a_stored_natural_key_is_warned_of(
    node: Node, hz_a: Sender, hz_b: Sender, fields: tuple[str, ...], path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if path == "validate-first":
        validate_first(node, monkeypatch)
    second = same_key_as(2, 1, fields)
    datalist = hz_b.ok([second])
    assert datalist["message"] == with_warnings(WriteOutcome(inserted=1), 1)
    assert datalist["warnings"] == [
        {
            "index": 0,
            "key": second["EQP_CODE"],
            "warnings": [fault(fields, stored_message(fields, lift(1)["EQP_CODE"], "hz-a"))],
        }
    ]
    assert stored_keys(node) == sorted([lift(1)["EQP_CODE"], second["EQP_CODE"]])


@pytest.mark.parametrize("path", PATHS)
def test_an_error_severity_refuses_the_batch_and_writes_nothing(
    make_node: Callable[..., Node], path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = make_node(rules_check_seconds=0)
    (node.settings.home / RULES_FILE).write_bytes(
        orjson.dumps({"0101": {"severity": {"natural-key-REG_CODE": "error"}}})
    )
    if path == "validate-first":
        validate_first(node, monkeypatch)
    hz_a, hz_b = Sender(node, "hz-a"), Sender(node, "hz-b")
    hz_a.clean([lift(1)], WriteOutcome(inserted=1))
    second = same_key_as(2, 1, ("REG_CODE",))
    # Two records: the batch is refused as a whole, the valid one included.
    details = hz_b.refused_invalid([lift(3), second])
    assert details == [
        {
            "index": 1,
            "key": second["EQP_CODE"],
            "errors": [fault(("REG_CODE",), stored_message(("REG_CODE",), lift(1)["EQP_CODE"], "hz-a"))],
        }
    ]
    assert stored_keys(node) == [lift(1)["EQP_CODE"]]
    # The other natural keys stay warnings.
    datalist = hz_b.ok([same_key_as(4, 1, ("USE_CERT_NO",))])
    assert [item["rule"] for item in datalist["warnings"][0]["warnings"]] == ["natural-key-USE_CERT_NO"]


@pytest.mark.parametrize("path", PATHS)
def test_a_node_may_switch_a_natural_key_off(
    make_node: Callable[..., Node], path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = make_node(rules_check_seconds=0)
    (node.settings.home / RULES_FILE).write_bytes(orjson.dumps({"0101": {"disabled": ["natural-key-USE_CERT_NO"]}}))
    if path == "validate-first":
        validate_first(node, monkeypatch)
    hz_a, hz_b = Sender(node, "hz-a"), Sender(node, "hz-b")
    hz_a.clean([lift(1)], WriteOutcome(inserted=1))
    hz_b.clean([same_key_as(2, 1, ("USE_CERT_NO",))], WriteOutcome(inserted=1))


# ------------------------------------------------------------------ the batch, itself, the deleted


@pytest.mark.parametrize("path", PATHS)
def test_two_devices_of_one_batch_with_one_natural_key(
    node: Node, hz_b: Sender, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if path == "validate-first":
        validate_first(node, monkeypatch)
    first, second = lift(5), same_key_as(6, 5, ("FACTORY_NO", "MAKE_UNIT_NAME"))
    datalist = hz_b.ok([first, second])
    pair = ("FACTORY_NO", "MAKE_UNIT_NAME")
    # Record 0 of the batch, not "a stored record": the store is asked before the batch is inserted.
    assert datalist["warnings"] == [
        {"index": 1, "key": second["EQP_CODE"], "warnings": [fault(pair, batch_message(pair, 0, first["EQP_CODE"]))]}
    ]


@pytest.mark.parametrize("path", PATHS)
def test_a_record_is_no_duplicate_of_itself(
    node: Node, hz_a: Sender, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if path == "validate-first":
        validate_first(node, monkeypatch)
    hz_a.clean([lift(1)], WriteOutcome(unchanged=1))
    hz_a.clean([lift(1, EQP_NAME="乘客电梯", UPDATE_TIME="2026-11-02 10:00:00")], WriteOutcome(updated=1))
    hz_a.ok([{"EQP_CODE": lift(1)["EQP_CODE"], "USE_STATUS": "3"}], action="02")


def test_a_deleted_record_holds_no_natural_key(node: Node, hz_a: Sender, hz_b: Sender) -> None:
    hz_a.ok([{"EQP_CODE": lift(1)["EQP_CODE"]}], action="03")
    hz_b.clean([same_key_as(2, 1, ("REG_CODE",))], WriteOutcome(inserted=1))
    # Revived (newer than its deletion), it holds them again, and is itself told of device 2.
    revived = hz_a.ok([lift(1, UPDATE_TIME="2026-11-28 09:35:00")])
    assert revived["counts"]["updated"] == 1
    assert revived["warnings"][0]["warnings"] == [
        fault(("REG_CODE",), stored_message(("REG_CODE",), lift(2)["EQP_CODE"], "hz-b"))
    ]
    datalist = hz_b.ok([same_key_as(3, 1, ("USE_CERT_NO",))])
    assert datalist["warnings"][0]["warnings"] == [
        fault(("USE_CERT_NO",), stored_message(("USE_CERT_NO",), lift(1)["EQP_CODE"], "hz-a"))
    ]


# ------------------------------------------------------------------ one look-up per batch


@pytest.mark.parametrize("path", PATHS)
def test_one_look_up_per_batch(node: Node, hz_b: Sender, path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if path == "validate-first":
        validate_first(node, monkeypatch)
    hz_a = Sender(node, "hz-a")
    hz_a.clean([lift(number) for number in range(100)], WriteOutcome(inserted=100))
    lookups = Lookups(node)
    # 300 new devices, every one with three natural keys; every tenth shares its 注册代码 with a stored one.
    batch = [
        same_key_as(1000 + number, number // 10, ("REG_CODE",)) if number % 10 == 0 else lift(1000 + number)
        for number in range(300)
    ]
    datalist = hz_b.ok(batch)
    assert lookups.count == 1
    assert [item["index"] for item in datalist["warnings"]] == list(range(0, 300, 10))
    assert {item["warnings"][0]["rule"] for item in datalist["warnings"]} == {"natural-key-REG_CODE"}
    # A batch with no natural-key value asks nothing.
    hz_b.clean([device(5000)], WriteOutcome(inserted=1))
    assert lookups.count == 1


# ------------------------------------------------------------------ privacy


def test_a_device_of_another_region_is_not_named(node: Node, hz_a: Sender, ningbo: Sender) -> None:
    second = same_key_as(2, 1, ("REG_CODE",)) | {"AREA_CODE": "330203"}
    answer = ningbo.send([second])
    datalist = answer["datalist"]
    assert datalist["warnings"] == [
        {"index": 0, "key": second["EQP_CODE"], "warnings": [fault(("REG_CODE",), hidden_message(("REG_CODE",)))]}
    ]
    text = orjson.dumps(answer).decode()
    assert lift(1)["EQP_CODE"] not in text
    assert "hz-a" not in text


def test_an_app_that_sees_devices_masked_is_not_told_another_sources_record(node: Node, hz_a: Sender) -> None:
    masked = Sender(node, "hz-masked", unmasked=frozenset())
    datalist = masked.ok([same_key_as(2, 1, ("USE_CERT_NO",))])
    assert datalist["warnings"][0]["warnings"] == [fault(("USE_CERT_NO",), hidden_message(("USE_CERT_NO",)))]
    # Of its own records it is told.
    masked.clean([lift(3)], WriteOutcome(inserted=1))
    datalist = masked.ok([same_key_as(4, 3, ("USE_CERT_NO",))])
    assert datalist["warnings"][0]["warnings"] == [
        fault(("USE_CERT_NO",), stored_message(("USE_CERT_NO",), lift(3)["EQP_CODE"], "hz-masked"))
    ]


def test_an_id_number_held_outside_the_callers_view_is_never_confirmed(
    node: Node, hz_b: Sender, ningbo: Sender
) -> None:
    """A certificate number may be its holder's ID number: "this ID number exists elsewhere" is no answer."""
    Sender(node, "hz-a").clean([lift(1, USE_CERT_NO=ID_NUMBER)], WriteOutcome(inserted=1))
    ningbo.clean([lift(2, USE_CERT_NO=ID_NUMBER, AREA_CODE="330203")], WriteOutcome(inserted=1))
    # In view, it is named as any other value.
    datalist = hz_b.ok([lift(3, USE_CERT_NO=ID_NUMBER)])
    assert datalist["warnings"][0]["warnings"] == [
        fault(("USE_CERT_NO",), stored_message(("USE_CERT_NO",), lift(1)["EQP_CODE"], "hz-a"))
    ]


@pytest.fixture
def personal_node(database_url: str, tmp_path: Path, clock: FixedClock) -> Iterator[Node]:
    """A node whose catalog makes a sensitive field (the safety manager's mobile) a natural key of 0101."""
    home = tmp_path / "personal"
    (home / "catalog").mkdir(parents=True)
    document = shipped_document("0101")
    document["natural_keys"] = [{"fields": ["SAFETY_MANAGER_PHONE"], "severity": "error"}]
    (home / "catalog" / "0101.json").write_bytes(orjson.dumps(document))
    config = load_settings(home, environ={}, level="province", region="330000", database_url=database_url)
    MasterKey.generate().write(config.master_key_path)
    write_config(config)
    node = build_node(config, clock)
    yield node
    node.close()


def test_personal_data_is_never_reported_across_the_callers_view(personal_node: Node) -> None:
    node = personal_node
    # The node's start indexed the deployment's key in place of the shipped ones (and the field the
    # shipped cross-record rules find a device's inspections by).
    with node.store.read() as connection:
        assert natural_keys.index_names(connection) == {
            natural_keys.index_name("0101", ("SAFETY_MANAGER_PHONE",)),
            natural_keys.index_name("0500", ("EQP_CODE", "ACCIDENT_TIME")),
            natural_keys.index_name("0401", ("EQP_CODE",)),
        }
    hz_a, hz_b, ningbo = Sender(node, "hz-a"), Sender(node, "hz-b"), Sender(node, "nb-city", region="330200")
    hz_a.clean([lift(1, SAFETY_MANAGER_PHONE="13800138000")], WriteOutcome(inserted=1))
    # Another region: not even "a record outside your view" (that would confirm the number exists).
    ningbo.clean([lift(2, SAFETY_MANAGER_PHONE="13800138000", AREA_CODE="330203")], WriteOutcome(inserted=1))
    # In view: refused (the deployment made it an error), naming the record it may access.
    details = hz_b.refused_invalid([lift(3, SAFETY_MANAGER_PHONE="13800138000")])
    label = "安全管理员联系电话（SAFETY_MANAGER_PHONE）"
    key = lift(1)["EQP_CODE"]
    assert details == [
        {"index": 0, "key": lift(3)["EQP_CODE"], "errors": [{
            "field": "SAFETY_MANAGER_PHONE", "rule": "natural-key-SAFETY_MANAGER_PHONE",
            "message": f"{label}与本节点已有记录 {key}（来源 hz-a） 相同，可能是同一对象的重复记录 / "
            f"SAFETY_MANAGER_PHONE equals that of stored record {key} (source hz-a): the same thing may be "
            "stored twice",
        }]}
    ]  # fmt: skip


def test_an_error_severity_across_the_callers_view_refuses_without_naming(
    make_node: Callable[..., Node],
) -> None:
    """The residual oracle of non-personal keys, as for a colliding primary key: the caller learns that
    such a 注册代码 exists somewhere, never which record, region or source."""
    node = make_node(rules_check_seconds=0)
    (node.settings.home / RULES_FILE).write_bytes(
        orjson.dumps({"0101": {"severity": {"natural-key-REG_CODE": "error"}}})
    )
    Sender(node, "hz-a").clean([lift(1)], WriteOutcome(inserted=1))
    ningbo = Sender(node, "nb-city", region="330200")
    second = same_key_as(2, 1, ("REG_CODE",)) | {"AREA_CODE": "330203"}
    assert ningbo.refused_invalid([second]) == [
        {"index": 0, "key": second["EQP_CODE"], "errors": [fault(("REG_CODE",), hidden_message(("REG_CODE",)))]}
    ]


# ------------------------------------------------------------------ 0500


def test_one_accident_reported_twice_under_two_numbers(node: Node) -> None:
    accident = dict(shipped_rule_sets()["0500"].valid_cases[0])
    county = Sender(node, "yw-county", busicode="140500", region="330782", busicodes=frozenset({"140500"}))
    city = Sender(
        node,
        "jh-city",
        busicode="140500",
        region="330700",
        busicodes=frozenset({"140500"}),
        unmasked=frozenset({"0500"}),
    )
    assert county.ok([accident])["message"] == WriteOutcome(inserted=1).message()
    second = dict(accident, ACCIDENT_NO="JH-SG-2026-0031")
    datalist = city.ok([second])
    name = "EQP_CODE+ACCIDENT_TIME"
    assert datalist["warnings"] == [
        {"index": 0, "key": "JH-SG-2026-0031", "warnings": [{
            "field": "EQP_CODE", "rule": f"natural-key-{name}",
            "message": f"设备代码（EQP_CODE）+事故发生时间（ACCIDENT_TIME）与本节点已有记录 {accident['ACCIDENT_NO']}"
            f"（来源 yw-county） 相同，可能是同一对象的重复记录 / {name} equals that of stored record "
            f"{accident['ACCIDENT_NO']} (source yw-county): the same thing may be stored twice",
        }]}
    ]  # fmt: skip
