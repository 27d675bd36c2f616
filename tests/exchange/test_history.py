"""Record history: every change keeps the version it replaced, with who made it, when, how and
through which request; a 04 with ``_history: true`` and the key returns the versions newest first,
within the caller's region and masking."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support import body, call, device, grant, log_rows, snapshot
from tzsb import refusals
from tzsb.app import Node
from tzsb.clock import FixedClock
from tzsb.exchange import reassign_record, record_history
from tzsb.protocol import failure_datalist
from tzsb.store.schema import record_changes, record_versions

KEY = device(1)["EQP_CODE"]


def _ok(answer: dict[str, Any]) -> dict[str, Any]:
    assert answer["datalist"]["result"] == "0001", answer["datalist"]
    return answer


def _history(node: Node, appid: str, secret: str, random: str, **conditions: Any) -> dict[str, Any]:
    wanted: dict[str, Any] = {"EQP_CODE": KEY, "_history": True, **conditions}
    return call(node, body(appid, secret, "140101", "04", [wanted], random=random))


def _life(node: Node, secret: str) -> None:
    """Add, modify, delete, add again (a revive), then an add with newer data (a modify); the clock
    stands at 2026-11-28 09:30 and moves an hour before each of the last two."""
    _ok(call(node, body("hz", secret, "140101", "01", [device(1)], random="life-add-0001")))
    changed = {"EQP_CODE": KEY, "USE_STATUS": "3", "UPDATE_TIME": "2026-11-02 10:00:00"}
    _ok(call(node, body("hz", secret, "140101", "02", [changed], random="life-modify-0002")))
    _ok(call(node, body("hz", secret, "140101", "03", [{"EQP_CODE": KEY}], random="life-delete-0003")))
    clock = node.clock
    assert isinstance(clock, FixedClock)
    clock.advance(timedelta(hours=1))
    revived = device(1, UPDATE_TIME="2026-11-28 10:00:00")
    _ok(call(node, body("hz", secret, "140101", "01", [revived], random="life-revive-0004")))
    clock.advance(timedelta(hours=1))
    newer = device(1, UPDATE_TIME="2026-11-28 11:00:00", EQP_NAME="曳引驱动载货电梯")
    _ok(call(node, body("hz", secret, "140101", "01", [newer], random="life-newer-0005")))


def test_every_change_keeps_the_version_it_replaced(node: Node) -> None:
    secret = grant(node, appid="hz", region="330100")
    _life(node, secret)

    answer = _ok(_history(node, "hz", secret, "history-0001"))

    versions = answer["datalist"]["busilist"]
    about = [version["_version"] for version in versions]
    assert [item["action"] for item in about] == ["modify", "revive", "delete", "modify", "add"]
    assert [item["random"] for item in about] == [
        "life-newer-0005", "life-revive-0004", "life-delete-0003", "life-modify-0002", "life-add-0001",
    ]  # fmt: skip
    assert {item["by"] for item in about} == {"hz"}
    assert {item["source"] for item in about} == {"hz"}
    seqs = [item["seq"] for item in about]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == 5
    assert [item["at"] for item in about] == [
        "2026-11-28 11:30:00", "2026-11-28 10:30:00", "2026-11-28 09:30:00", "2026-11-28 09:30:00",
        "2026-11-28 09:30:00",
    ]  # fmt: skip
    # The versions as they were.
    assert versions[0]["EQP_NAME"] == "曳引驱动载货电梯"
    assert versions[1]["UPDATE_TIME"] == "2026-11-28 10:00:00" and versions[1]["USE_STATUS"] == "2"
    assert versions[2]["_deleted"] is True and about[2]["deleted_at"] == "2026-11-28 09:30:00"
    assert versions[3]["USE_STATUS"] == "3"
    assert {name: value for name, value in versions[4].items() if name != "_version"} == device(1)
    # Each version names the request that made it: its log entry is found by app and random.
    logged = {(row["appid"], row["random"]) for row in log_rows(node)}
    assert all(("hz", item["random"]) in logged for item in about)
    # The history query is itself a query: logged, its random claimed.
    assert log_rows(node)[-1]["random"] == "history-0001"


def test_an_unchanged_or_skipped_write_adds_no_version(node: Node) -> None:
    secret = grant(node, appid="hz", region="330100")
    _ok(call(node, body("hz", secret, "140101", "01", [device(1)], random="first-add-0001")))
    _ok(call(node, body("hz", secret, "140101", "01", [device(1)], random="same-again-0002")))  # unchanged
    older = device(1, UPDATE_TIME="2026-01-01 00:00:00", USE_STATUS="9")
    _ok(call(node, body("hz", secret, "140101", "01", [older], random="older-add-0003")))  # skipped

    versions = _ok(_history(node, "hz", secret, "history-0002"))["datalist"]["busilist"]

    assert [version["_version"]["random"] for version in versions] == ["first-add-0001"]
    with node.store.read() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(record_versions)).scalar_one() == 0
        assert connection.execute(sa.select(sa.func.count()).select_from(record_changes)).scalar_one() == 1


def test_a_masked_caller_sees_masked_versions_without_who_or_which_request(node: Node) -> None:
    secret = grant(node, appid="hz", region="330100")
    _life(node, secret)
    masked = grant(node, appid="viewer", region="330100", unmasked=frozenset())

    versions = _ok(_history(node, "viewer", masked, "history-0003"))["datalist"]["busilist"]

    assert len(versions) == 5
    assert all(version["SAFETY_MANAGER_PHONE"] != "13800138000" for version in versions)
    assert all(set(version["_version"]) <= {"seq", "at", "action", "deleted_at"} for version in versions)


def test_versions_outside_the_callers_region_are_not_shown(node: Node) -> None:
    hangzhou = grant(node, appid="hz", region="330100")
    ningbo = grant(node, appid="nb", region="330200")
    _ok(call(node, body("hz", hangzhou, "140101", "01", [device(1)], random="hz-add-0001")))
    reassign_record(node.store, node.catalog, node.clock, "0101", KEY, "330205", operator="ops-li")

    seen_hz = _ok(_history(node, "hz", hangzhou, "history-0004"))["datalist"]["busilist"]
    seen_nb = _ok(_history(node, "nb", ningbo, "history-0005"))["datalist"]["busilist"]

    assert [(version["AREA_CODE"], version["_version"]["action"]) for version in seen_hz] == [("330106", "add")]
    assert [(version["AREA_CODE"], version["_version"]["action"]) for version in seen_nb] == [("330205", "reassign")]


def test_a_key_never_stored_has_no_versions(node: Node) -> None:
    secret = grant(node, appid="hz", region="330100")
    answer = _ok(_history(node, "hz", secret, "history-0007"))
    assert answer["datalist"]["busilist"] == []


@pytest.mark.parametrize(
    ("conditions", "refusal"),
    [
        ({"_history": "yes"}, refusals.history_flag_malformed()),
        ({"_history": 1}, refusals.history_flag_malformed()),
        ({"USE_STATUS": "2"}, refusals.history_needs_key("EQP_CODE")),
        ({"_page_size": 5}, refusals.history_needs_key("EQP_CODE")),
        ({"EQP_CODE": None}, refusals.history_needs_key("EQP_CODE")),
        ({"EQP_CODE": 5}, refusals.query_value_not_text("EQP_CODE")),
    ],
    ids=["text-flag", "number-flag", "other-condition", "paging", "no-key", "key-not-text"],
)
def test_a_bad_history_query_is_refused_and_writes_nothing(
    node: Node, conditions: dict[str, Any], refusal: Any
) -> None:
    secret = grant(node, appid="hz", region="330100")
    _ok(call(node, body("hz", secret, "140101", "01", [device(1)], random="first-add-0001")))
    before = snapshot(node)
    wanted: dict[str, Any] = {"EQP_CODE": KEY, "_history": True, **conditions}
    wanted = {name: value for name, value in wanted.items() if value is not None}

    answer = call(node, body("hz", secret, "140101", "04", [wanted], random="bad-history-0001"))

    assert answer["datalist"] == failure_datalist(refusal)
    after = snapshot(node)
    assert (after["records"], after["seq"]) == (before["records"], before["seq"])


def test_a_masked_caller_cannot_ask_the_history_of_an_id_number(node: Node) -> None:
    masked = grant(node, appid="viewer", region="330100", unmasked=frozenset())
    person = {"ID_NO": "11010519491231002X", "_history": True}

    answer = call(node, body("viewer", masked, "140103", "04", [person], random="probe-history-0001"))

    spec = node.catalog["0103"].field("ID_NO")
    assert spec is not None
    assert answer["datalist"] == failure_datalist(refusals.query_by_sensitive_field("ID_NO", spec.name))


def test_the_operator_sees_every_version_and_a_reassignment(node: Node) -> None:
    secret = grant(node, appid="hz", region="330100")
    _life(node, secret)
    reassign_record(node.store, node.catalog, node.clock, "0101", KEY, "330205", operator="ops-li")

    found = record_history(node.store, node.catalog, "0101", KEY)

    assert [action for _, action in found] == ["reassign", "modify", "revive", "delete", "modify", "add"]
    newest, _ = found[0]
    assert (newest.changed_by, newest.region, newest.random) == ("ops-li", "330205", "")
    assert found[0][0].data["SAFETY_MANAGER_PHONE"] == "13800138000"  # the operator's view is unmasked
