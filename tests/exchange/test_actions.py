"""Actions 01–04 on the node's own store (issue 2, "Actions"), the change sequence and 一数一源."""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support import body, call, claimed, device, grant, placeholder_faults, snapshot
from tzsb import refusals
from tzsb.app import Node
from tzsb.clock import FixedClock
from tzsb.errors import ExchangeError
from tzsb.store.schema import records

BUSICODE = "140101"
NODE_REGION = "330000"  # the conftest node: a province
NOW = "2026-11-28 09:30:00"  # the conftest clock, as a business timestamp
STORED_TIME = device()["UPDATE_TIME"]  # "2026-11-01 10:00:00"
OTHER_UNIT = "91330106MA2B3C4D5E"
ZERO = {"inserted": 0, "updated": 0, "deleted": 0, "skipped": 0, "unchanged": 0}


def key(number: int) -> str:
    return str(device(number)["EQP_CODE"])


def outcome_message(inserted: int = 0, updated: int = 0, deleted: int = 0, skipped: int = 0, unchanged: int = 0) -> str:
    return (
        f"成功：新增 {inserted} 条，更新 {updated} 条，删除 {deleted} 条，"
        f"跳过 {skipped} 条（已有更新的数据），无变化 {unchanged} 条 / "
        f"OK: inserted {inserted}, updated {updated}, deleted {deleted}, "
        f"skipped {skipped} (stored data is newer), unchanged {unchanged}"
    )


def not_found(count: int) -> ExchangeError:
    """``count`` 0101 records do not exist."""
    return refusals.records_not_found(placeholder_faults(count), "EQP_CODE")


def invalid(count: int) -> ExchangeError:
    """``count`` records fail validation."""
    return refusals.records_invalid((), count)


CONFLICT = refusals.records_of_another_source(placeholder_faults(1), "0101")
CURSOR_MISMATCH = refusals.cursor_of_other_conditions()
CURSOR_INVALID = refusals.cursor_invalid("_cursor")


@dataclass(frozen=True, slots=True)
class Caller:
    """One registered app, sending signed requests through the node's pipeline."""

    node: Node
    appid: str
    secret: str
    busicode: str = BUSICODE

    def send(self, action: str, busilist: list[dict[str, Any]], busicode: str | None = None) -> dict[str, Any]:
        payload = body(self.appid, self.secret, busicode or self.busicode, action, busilist)
        datalist: dict[str, Any] = call(self.node, payload)["datalist"]
        return datalist

    def ok(self, action: str, busilist: list[dict[str, Any]]) -> dict[str, Any]:
        datalist = self.send(action, busilist)
        assert datalist["result"] == "0001", datalist
        return datalist

    def refused(self, action: str, busilist: list[dict[str, Any]], expected: ExchangeError) -> dict[str, Any]:
        """Send a request that must be refused as ``expected`` (its code, its exact message) and must write
        nothing but its claim."""
        before = snapshot(self.node)
        answer = call(self.node, body(self.appid, self.secret, self.busicode, action, busilist))
        datalist: dict[str, Any] = answer["datalist"]
        assert datalist["result"] == "0000", datalist
        assert (datalist["code"], datalist["message"]) == (expected.code.value, expected.message), datalist
        # Nothing written but the claim of the request's random, with this refusal as its first answer.
        assert snapshot(self.node) == claimed(before, answer)
        return datalist

    def query(self, conditions: dict[str, Any]) -> dict[str, Any]:
        return self.ok("04", [conditions])

    def keys(self, conditions: dict[str, Any]) -> list[str]:
        return [record["EQP_CODE"] for record in self.query(conditions)["busilist"]]


@pytest.fixture
def hz(node: Node) -> Caller:
    """A city app (杭州, 330100) granted 140101–140103 and every action."""
    return Caller(node, "hz-city", grant(node))


def app(node: Node, appid: str, region: str = "330100", **options: Any) -> Caller:
    """Another app. A province-wide one (the node's own level and region) uses purpose 11, 本级内部接口;
    lower levels use purpose 14, 省级—所辖下级."""
    busicode = "110101" if region == NODE_REGION else BUSICODE
    options.setdefault("busicodes", frozenset({busicode, "140102", "140103"}))
    return Caller(node, appid, grant(node, appid=appid, region=region, **options), busicode)


def rows(node: Node) -> dict[str, dict[str, Any]]:
    """The stored 0101 rows by key, every column."""
    with node.store.read() as connection:
        result = connection.execute(sa.select(records).where(records.c.business == "0101"))
        return {row.record_key: dict(row._mapping) for row in result}


def seqs(node: Node) -> dict[str, int]:
    return {record_key: int(row["seq"]) for record_key, row in rows(node).items()}


def counter(node: Node) -> int:
    return int(snapshot(node)["seq"])


def records_and_seq(node: Node) -> tuple[Any, Any]:
    """What a write may change besides its random claim (a successful no-op still claims its random)."""
    state = snapshot(node)
    return state["records"], state["seq"]


# -- 01 add ----------------------------------------------------------------------------------


def test_add_inserts_records_with_source_and_sequence(node: Node, hz: Caller) -> None:
    datalist = hz.ok("01", [device(1), device(2, AREA_CODE="330102")])

    assert datalist["counts"] == {**ZERO, "inserted": 2}
    assert datalist["message"] == outcome_message(inserted=2)
    assert datalist["busilist"] == []
    assert datalist["skipped_keys"] == []
    stored = rows(node)
    assert set(stored) == {key(1), key(2)}
    first, second = stored[key(1)], stored[key(2)]
    assert first["data"] == device(1)
    assert (first["region"], first["updated_at"]) == ("330106", STORED_TIME)
    assert second["region"] == "330102"
    for row in (first, second):
        assert row["deleted"] is False
        assert row["deleted_at"] is None
        assert row["deleted_by"] is None
        assert (row["source_appid"], row["changed_by"], row["changed_at"]) == ("hz-city", "hz-city", NOW)
    assert (first["seq"], second["seq"]) == (1, 2)
    assert counter(node) == 2


UPSERT_CASES = [
    pytest.param("2026-10-31 10:00:00", {"EQP_NAME": "新名称"}, "skipped", id="older-with-changes"),
    pytest.param("2026-11-01 09:59:59", {}, "skipped", id="older-by-a-second"),
    pytest.param(STORED_TIME, {}, "unchanged", id="identical"),
    pytest.param(STORED_TIME, {"EQP_NAME": "新名称"}, "updated", id="same-time-new-data"),
    pytest.param("2026-11-02 08:00:00", {"EQP_NAME": "新名称", "USE_STATUS": "3"}, "updated", id="newer"),
    pytest.param("2026-11-01 10:00:01", {}, "updated", id="newer-by-a-second"),
]


def test_add_upserts_by_primary_key(node: Node, hz: Caller, subtests: pytest.Subtests) -> None:
    hz.ok("01", [device(n) for n in range(len(UPSERT_CASES))])
    for number, case in enumerate(UPSERT_CASES):
        update_time, changes, outcome = case.values
        with subtests.test(case.id):
            before_records, before_seq = records_and_seq(node)
            before_rows = rows(node)
            sent = device(number, UPDATE_TIME=update_time, **changes)

            datalist = hz.ok("01", [sent])

            assert datalist["counts"] == {**ZERO, outcome: 1}
            assert datalist["message"] == outcome_message(**{outcome: 1})
            assert datalist["skipped_keys"] == ([key(number)] if outcome == "skipped" else [])
            stored = rows(node)
            if outcome == "updated":
                assert stored[key(number)]["data"] == sent
                assert stored[key(number)]["updated_at"] == update_time
                assert stored[key(number)]["seq"] == before_seq + 1
                assert counter(node) == before_seq + 1
                assert {k: v for k, v in stored.items() if k != key(number)} == {
                    k: v for k, v in before_rows.items() if k != key(number)
                }
            else:
                # Skipped and unchanged records are not touched and take no change sequence.
                assert records_and_seq(node) == (before_records, before_seq)
            assert hz.query({"EQP_CODE": key(number)})["busilist"] == [stored[key(number)]["data"]]


def test_full_reupload_mixes_every_outcome(node: Node, hz: Caller) -> None:
    hz.ok("01", [device(1), device(2), device(3)])
    batch = [
        device(1),  # identical
        device(2, UPDATE_TIME="2026-11-05 10:00:00", USE_STATUS="3"),  # newer
        device(3, UPDATE_TIME="2026-10-01 10:00:00", USE_STATUS="4"),  # older
        device(4),  # new
        device(5, UPDATE_TIME="2026-09-01 00:00:00"),  # new, however old
    ]

    datalist = hz.ok("01", batch)

    assert datalist["counts"] == {**ZERO, "inserted": 2, "updated": 1, "skipped": 1, "unchanged": 1}
    assert datalist["message"] == outcome_message(inserted=2, updated=1, skipped=1, unchanged=1)
    assert datalist["skipped_keys"] == [key(3)]
    stored = rows(node)
    assert {k: row["data"] for k, row in stored.items()} == {
        key(1): device(1),
        key(2): batch[1],
        key(3): device(3),
        key(4): batch[3],
        key(5): batch[4],
    }
    assert counter(node) == 3 + 3
    assert sorted(seqs(node).values()) == [1, 3, 4, 5, 6]

    # The same full upload again changes nothing at all.
    again = hz.ok("01", batch)
    assert again["counts"] == {**ZERO, "skipped": 1, "unchanged": 4}
    assert counter(node) == 6


def test_skipped_keys_list_every_skipped_record_in_batch_order(hz: Caller) -> None:
    hz.ok("01", [device(n, UPDATE_TIME="2026-11-10 00:00:00") for n in (1, 2, 3)])
    datalist = hz.ok("01", [device(3), device(1), device(2, UPDATE_TIME="2026-11-11 00:00:00")])
    assert datalist["counts"] == {**ZERO, "updated": 1, "skipped": 2}
    assert datalist["skipped_keys"] == [key(3), key(1)]


REVIVAL_CASES = [
    pytest.param("2026-11-28 09:30:01", True, id="after-the-deletion"),
    pytest.param("2026-11-28 09:39:00", True, id="well-after-the-deletion"),  # clocks may run 10 min ahead
    pytest.param(NOW, False, id="same-time-as-the-deletion"),
    pytest.param("2026-11-15 00:00:00", False, id="newer-than-record-but-older-than-deletion"),
    pytest.param(STORED_TIME, False, id="same-time-as-the-record"),
    pytest.param("2026-10-01 00:00:00", False, id="older"),
]


def test_add_revives_a_deleted_record_only_when_newer(node: Node, hz: Caller, subtests: pytest.Subtests) -> None:
    numbers = range(len(REVIVAL_CASES))
    hz.ok("01", [device(n) for n in numbers])
    hz.ok("03", [{"EQP_CODE": key(n)} for n in numbers])
    for number, case in enumerate(REVIVAL_CASES):
        update_time, revived = case.values
        with subtests.test(case.id):
            before_records, before_seq = records_and_seq(node)
            sent = device(number, UPDATE_TIME=update_time, EQP_NAME="重新启用")

            datalist = hz.ok("01", [sent])

            row = rows(node)[key(number)]
            if revived:
                assert datalist["counts"] == {**ZERO, "updated": 1}
                assert (row["deleted"], row["deleted_at"], row["deleted_by"]) == (False, None, None)
                assert row["data"] == sent
                assert row["seq"] == before_seq + 1
                assert hz.query({"EQP_CODE": key(number)})["busilist"] == [sent]
            else:
                assert datalist["counts"] == {**ZERO, "skipped": 1}
                assert datalist["skipped_keys"] == [key(number)]
                assert records_and_seq(node) == (before_records, before_seq)
                assert row["deleted"] is True
                assert hz.query({"EQP_CODE": key(number)})["busilist"] == []


def test_add_refuses_duplicate_keys_in_one_batch(hz: Caller) -> None:
    datalist = hz.refused("01", [device(1), device(2), device(1, EQP_NAME="again")], invalid(1))
    assert datalist["busilist"] == [
        {
            "index": 2,
            "key": key(1),
            "errors": [
                {
                    "field": "EQP_CODE",
                    "rule": "duplicate_key",
                    "message": f"主键 {key(1)} 与第 0 条重复，同一批次中每条记录只能出现一次 / "
                    f"primary key {key(1)} repeats record 0; send each record once per batch",
                }
            ],
        }
    ]


def test_a_repeated_key_is_a_validation_refusal_whichever_way_the_insert_goes(
    node: Node, hz: Caller, subtests: pytest.Subtests
) -> None:
    """New records go in while the batch is validated; a repeated key makes that insert fail too, but
    the caller is told what validation found, and nothing stays written."""
    hz.ok("01", [device(2)])
    batches = {
        # New and changed records interleaved: the rows are inserted one by one.
        "interleaved": [device(1), device(2, EQP_NAME="changed"), device(1, EQP_NAME="again")],
        # A full batch, the repeat at its end: one statement on SQLite, a long COPY on PostgreSQL.
        "full batch": [device(number) for number in range(10, 1009)] + [device(10, EQP_NAME="again")],
    }
    for name, batch in batches.items():
        with subtests.test(name):
            before = records_and_seq(node)
            datalist = hz.refused("01", batch, invalid(1))
            assert [(item["index"], item["errors"][0]["rule"]) for item in datalist["busilist"]] == [
                (len(batch) - 1, "duplicate_key")
            ]
            assert records_and_seq(node) == before


def test_a_nul_character_gets_the_same_answer_on_every_backend(hz: Caller) -> None:
    hz.refused("01", [device(1, USE_ADDRESS="杭州市\u0000西湖区")], refusals.busilist_holds_nul())


# -- 02 modify -------------------------------------------------------------------------------


def test_modify_merges_the_given_fields(node: Node, hz: Caller) -> None:
    hz.ok("01", [device(1), device(2)])
    before = counter(node)
    change = {"EQP_CODE": key(1), "USE_STATUS": "3", "AREA_CODE": "330102", "UPDATE_TIME": "2026-11-20 08:00:00"}

    datalist = hz.ok("02", [change])

    assert datalist["counts"] == {**ZERO, "updated": 1}
    assert datalist["message"] == outcome_message(updated=1)
    expected = {**device(1), **change}
    stored = rows(node)
    assert stored[key(1)]["data"] == expected
    assert stored[key(1)]["region"] == "330102"
    assert stored[key(1)]["updated_at"] == "2026-11-20 08:00:00"
    assert stored[key(1)]["seq"] == before + 1
    assert stored[key(2)]["data"] == device(2)
    assert hz.keys({"_region": "330102"}) == [key(1)]
    assert hz.keys({"_region": "330106"}) == [key(2)]


def test_modify_without_update_time_takes_the_node_clock(node: Node, hz: Caller, clock: FixedClock) -> None:
    hz.ok("01", [device(1)])
    hz.ok("02", [{"EQP_CODE": key(1), "EQP_NAME": "一号梯"}])
    assert rows(node)[key(1)]["data"] == {**device(1), "EQP_NAME": "一号梯", "UPDATE_TIME": NOW}
    assert rows(node)[key(1)]["updated_at"] == NOW

    clock.advance(timedelta(hours=1, seconds=5))
    hz.ok("02", [{"EQP_CODE": key(1), "EQP_NAME": "二号梯"}])
    assert rows(node)[key(1)]["data"]["UPDATE_TIME"] == "2026-11-28 10:30:05"
    assert rows(node)[key(1)]["changed_at"] == "2026-11-28 10:30:05"


NO_CHANGES = [
    pytest.param({}, id="key-only"),
    pytest.param({"EQP_NAME": device()["EQP_NAME"]}, id="same-value"),
    pytest.param({"EQP_NAME": device()["EQP_NAME"], "UPDATE_TIME": STORED_TIME}, id="same-value-same-time"),
]


def test_modify_that_changes_nothing_is_unchanged(node: Node, hz: Caller, subtests: pytest.Subtests) -> None:
    hz.ok("01", [device(1)])
    for case in NO_CHANGES:
        [change] = case.values
        with subtests.test(case.id):
            before = records_and_seq(node)
            datalist = hz.ok("02", [{"EQP_CODE": key(1), **change}])
            assert datalist["counts"] == {**ZERO, "unchanged": 1}
            assert records_and_seq(node) == before


def test_modify_older_than_the_stored_record_is_skipped(node: Node, hz: Caller) -> None:
    hz.ok("01", [device(1)])
    before = records_and_seq(node)
    datalist = hz.ok("02", [{"EQP_CODE": key(1), "USE_STATUS": "4", "UPDATE_TIME": "2026-10-01 00:00:00"}])
    assert datalist["counts"] == {**ZERO, "skipped": 1}
    assert datalist["skipped_keys"] == [key(1)]
    assert records_and_seq(node) == before


def test_modify_of_a_missing_key_refuses_the_whole_batch(hz: Caller) -> None:
    hz.ok("01", [device(1), device(3)])
    datalist = hz.refused(
        "02",
        [
            {"EQP_CODE": key(1), "USE_STATUS": "3"},
            {"EQP_CODE": key(2), "USE_STATUS": "3"},
            {"EQP_CODE": key(3), "USE_STATUS": "3"},
            {"EQP_CODE": key(4), "USE_STATUS": "3"},
        ],
        not_found(2),
    )
    assert datalist["busilist"] == [{"index": 1, "key": key(2)}, {"index": 3, "key": key(4)}]
    assert hz.query({"EQP_CODE": key(1)})["busilist"] == [device(1)]


def test_modify_of_a_deleted_record_is_not_found(hz: Caller) -> None:
    hz.ok("01", [device(1)])
    hz.ok("03", [{"EQP_CODE": key(1)}])
    datalist = hz.refused("02", [{"EQP_CODE": key(1), "USE_STATUS": "3"}], not_found(1))
    assert datalist["busilist"] == [{"index": 0, "key": key(1)}]


INVALID_CHANGES = [
    pytest.param({"USE_STATUS": "7"}, "USE_STATUS", "code_list", id="code-list"),
    pytest.param({"USE_UNIT_NAME": ""}, "USE_UNIT_NAME", "required", id="blank-required"),
    pytest.param({"USE_ADDRESS": None}, "USE_ADDRESS", "required", id="null-required"),
    pytest.param({"AREA_CODE": "3301"}, "AREA_CODE", "pattern", id="pattern"),
    pytest.param({"UPDATE_TIME": "2026-11-31 10:00:00"}, "UPDATE_TIME", "type", id="type"),
    pytest.param({"EQP_NAME": "梯" * 101}, "EQP_NAME", "length", id="length"),
    pytest.param({"NOT_A_FIELD": "x"}, "NOT_A_FIELD", "unknown_field", id="unknown-field"),
]


def test_modify_that_makes_the_record_invalid_is_refused(hz: Caller, subtests: pytest.Subtests) -> None:
    hz.ok("01", [device(1), device(2)])
    for case in INVALID_CHANGES:
        change, field, rule = case.values
        with subtests.test(case.id):
            datalist = hz.refused(
                "02", [{"EQP_CODE": key(2), "USE_STATUS": "3"}, {"EQP_CODE": key(1), **change}], invalid(1)
            )
            [detail] = datalist["busilist"]
            assert (detail["index"], detail["key"]) == (1, key(1))
            assert [(error["field"], error["rule"]) for error in detail["errors"]] == [(field, rule)]


KEYLESS_MODIFIES = [
    pytest.param({"USE_STATUS": "3"}, None, id="absent"),
    pytest.param({"EQP_CODE": None, "USE_STATUS": "3"}, None, id="null"),
    pytest.param({"EQP_CODE": "", "USE_STATUS": "3"}, "", id="empty"),
    pytest.param({"EQP_CODE": "  ", "USE_STATUS": "3"}, "  ", id="blank"),
]


def test_modify_without_the_primary_key_is_refused(hz: Caller, subtests: pytest.Subtests) -> None:
    hz.ok("01", [device(1)])
    for case in KEYLESS_MODIFIES:
        record, reported_key = case.values
        with subtests.test(case.id):
            datalist = hz.refused("02", [{"EQP_CODE": key(1), "USE_STATUS": "4"}, record], invalid(1))
            [detail] = datalist["busilist"]
            assert (detail["index"], detail["key"]) == (1, reported_key)
            assert [(error["field"], error["rule"]) for error in detail["errors"]] == [("EQP_CODE", "required")]


# -- 03 delete -------------------------------------------------------------------------------


def test_delete_is_a_soft_delete(node: Node, hz: Caller) -> None:
    hz.ok("01", [device(1), device(2)])
    before = counter(node)

    datalist = hz.ok("03", [{"EQP_CODE": key(1)}])

    assert datalist["counts"] == {**ZERO, "deleted": 1}
    assert datalist["message"] == outcome_message(deleted=1)
    row = rows(node)[key(1)]
    assert (row["deleted"], row["deleted_at"], row["deleted_by"]) == (True, NOW, "hz-city")
    assert row["data"] == device(1)
    assert row["seq"] == before + 1
    assert hz.keys({}) == [key(2)]
    assert hz.query({"EQP_CODE": key(1)})["busilist"] == []
    with_deleted = hz.query({"_include_deleted": True})["busilist"]
    assert with_deleted == [{**device(1), "_deleted": True, "_deleted_at": NOW}, device(2)]
    assert hz.query({"EQP_CODE": key(1), "_include_deleted": False})["busilist"] == []


def test_delete_of_a_missing_key_refuses_the_whole_batch(hz: Caller) -> None:
    hz.ok("01", [device(1)])
    datalist = hz.refused("03", [{"EQP_CODE": key(1)}, {"EQP_CODE": key(2)}], not_found(1))
    assert datalist["busilist"] == [{"index": 1, "key": key(2)}]
    assert hz.keys({}) == [key(1)]


BAD_DELETES = [
    pytest.param({"EQP_NAME": "x"}, [("EQP_CODE", "required"), ("EQP_NAME", "unknown_field")], id="no-key"),
    pytest.param(
        {"EQP_CODE": key(1), "USE_STATUS": "4", "UPDATE_TIME": NOW},
        [("USE_STATUS", "unknown_field"), ("UPDATE_TIME", "unknown_field")],
        id="extra-fields",
    ),
]


def test_delete_takes_only_the_primary_key(hz: Caller, subtests: pytest.Subtests) -> None:
    hz.ok("01", [device(1)])
    for case in BAD_DELETES:
        record, errors = case.values
        with subtests.test(case.id):
            datalist = hz.refused("03", [record], invalid(1))
            [detail] = datalist["busilist"]
            assert detail["index"] == 0
            assert detail["key"] == record.get("EQP_CODE")
            assert [(error["field"], error["rule"]) for error in detail["errors"]] == errors


def test_delete_of_a_deleted_record_is_unchanged(node: Node, hz: Caller) -> None:
    hz.ok("01", [device(1)])
    hz.ok("03", [{"EQP_CODE": key(1)}])
    before = records_and_seq(node)
    datalist = hz.ok("03", [{"EQP_CODE": key(1)}])
    assert datalist["counts"] == {**ZERO, "unchanged": 1}
    assert datalist["message"] == outcome_message(unchanged=1)
    assert records_and_seq(node) == before


def test_delete_counts_a_repeated_key_once(node: Node, hz: Caller) -> None:
    hz.ok("01", [device(1)])
    before = counter(node)
    datalist = hz.send("03", [{"EQP_CODE": key(1)}, {"EQP_CODE": key(1)}])
    # Either refused like a repeated key in 01/02 (E_VALIDATION duplicate_key), or one record deleted once.
    if datalist["result"] == "0000":
        assert datalist["code"] == "E_VALIDATION"
        assert counter(node) == before
    else:
        assert datalist["counts"]["deleted"] == 1
        assert counter(node) == before + 1


# -- 04 query --------------------------------------------------------------------------------


@pytest.fixture
def province(node: Node) -> Caller:
    """A province-wide app, with records in three cities' counties already stored."""
    caller = app(node, "zj-prov", region="330000")
    caller.ok(
        "01",
        [
            device(1),  # 330106 西湖区
            device(2, AREA_CODE="330102", USE_UNIT_CODE=OTHER_UNIT, USE_STATUS="3"),  # 上城区
            device(3, USE_UNIT_CODE=OTHER_UNIT),  # 330106
            device(4, AREA_CODE="330205"),  # 宁波市江北区
            device(5, AREA_CODE="330100"),  # 杭州市 itself
            device(6, AREA_CODE="331002"),  # 台州市椒江区: starts with 3310, not 3301
        ],
    )
    return caller


QUERY_CASES = [
    pytest.param({}, [5, 2, 1, 3, 4, 6], id="everything-in-scope"),
    pytest.param({"EQP_CODE": key(3)}, [3], id="primary-key"),
    pytest.param({"EQP_CODE": key(99)}, [], id="unknown-key"),
    pytest.param({"USE_UNIT_CODE": OTHER_UNIT}, [2, 3], id="other-field"),
    pytest.param({"USE_UNIT_CODE": OTHER_UNIT, "USE_STATUS": "2"}, [3], id="two-fields"),
    pytest.param({"AREA_CODE": "330106"}, [1, 3], id="region-field-equality"),
    pytest.param({"AREA_CODE": "330100"}, [5], id="region-field-is-exact"),
    pytest.param({"_region": "330106"}, [1, 3], id="county"),
    pytest.param({"_region": "330100"}, [5, 2, 1, 3], id="city"),
    pytest.param({"_region": "330200"}, [4], id="other-city"),
    pytest.param({"_region": "331000"}, [6], id="city-with-similar-prefix"),
    pytest.param({"_region": "330000"}, [5, 2, 1, 3, 4, 6], id="province"),
    pytest.param({"_region": "330106", "USE_UNIT_CODE": OTHER_UNIT}, [3], id="region-and-field"),
]


def test_query_conditions(province: Caller, subtests: pytest.Subtests) -> None:
    for case in QUERY_CASES:
        conditions, expected = case.values
        with subtests.test(case.id):
            datalist = province.query(conditions)
            assert [record["EQP_CODE"] for record in datalist["busilist"]] == [key(n) for n in expected]
            assert datalist["message"] == f"查询成功，返回 {len(expected)} 条 / OK: {len(expected)} record(s)"
            assert datalist["next_cursor"] is None
            by_key = {record["EQP_CODE"]: record for record in datalist["busilist"]}
            if key(1) in by_key:
                assert by_key[key(1)] == device(1)


SCOPE_CASES = [
    pytest.param({}, [5, 2, 1, 3], id="own-city-only"),
    pytest.param({"_region": "330106"}, [1, 3], id="county-inside"),
    pytest.param({"EQP_CODE": key(4)}, [], id="key-outside-is-invisible"),
    pytest.param({"_since": "0"}, [1, 2, 3, 5], id="change-feed"),
]


def test_query_stays_inside_the_apps_region(node: Node, province: Caller, subtests: pytest.Subtests) -> None:
    city = app(node, "hz-city")
    for case in SCOPE_CASES:
        conditions, expected = case.values
        with subtests.test(case.id):
            assert city.keys(conditions) == [key(n) for n in expected]


UPDATE_TIME_CASES = [
    pytest.param({"_updated_from": "2026-11-02"}, [2, 3, 4], id="from-date"),
    pytest.param({"_updated_to": "2026-11-02"}, [1, 2, 3], id="to-date-includes-the-whole-day"),
    pytest.param({"_updated_from": "2026-11-02", "_updated_to": "2026-11-02"}, [2, 3], id="one-day"),
    pytest.param({"_updated_from": "2026-11-01 10:00:01"}, [2, 3, 4], id="from-datetime"),
    pytest.param({"_updated_to": "2026-11-02 23:59:58"}, [1, 2], id="to-datetime"),
    pytest.param({"_updated_from": STORED_TIME, "_updated_to": STORED_TIME}, [1], id="bounds-inclusive"),
    pytest.param({"_updated_from": "2026-11-04"}, [], id="after-everything"),
]


def test_query_by_update_time(hz: Caller, subtests: pytest.Subtests) -> None:
    hz.ok(
        "01",
        [
            device(1),
            device(2, UPDATE_TIME="2026-11-02 00:00:00"),
            device(3, UPDATE_TIME="2026-11-02 23:59:59"),
            device(4, UPDATE_TIME="2026-11-03 00:00:00"),
        ],
    )
    for case in UPDATE_TIME_CASES:
        conditions, expected = case.values
        with subtests.test(case.id):
            assert hz.keys(conditions) == [key(n) for n in expected]


AREAS = ("330106", "330102", "330108")


def test_paging_returns_every_record_exactly_once(hz: Caller, subtests: pytest.Subtests) -> None:
    hz.ok("01", [device(n, AREA_CODE=AREAS[n % 3]) for n in range(23)])
    hz.ok("03", [{"EQP_CODE": key(7)}])
    expected = sorted((AREAS[n % 3], key(n)) for n in range(23) if n != 7)

    for page_size in (1, 5, "7", 22, 23, 100):
        with subtests.test(page_size=page_size):
            pages: list[list[str]] = []
            conditions: dict[str, Any] = {"_region": "330100", "_page_size": page_size}
            while True:
                datalist = hz.query(conditions)
                pages.append([record["EQP_CODE"] for record in datalist["busilist"]])
                assert len(pages) <= 25, "paging does not end"
                if datalist["next_cursor"] is None:
                    break
                conditions = {**conditions, "_cursor": datalist["next_cursor"]}

            size = int(page_size)
            assert len(pages) == max(1, math.ceil(22 / size))
            assert all(len(page) == size for page in pages[:-1])
            assert [k for page in pages for k in page] == [k for _, k in expected]


def test_a_cursor_outlives_writes_behind_it(hz: Caller) -> None:
    hz.ok("01", [device(n) for n in range(1, 7)])
    first = hz.query({"_page_size": 3})
    assert [r["EQP_CODE"] for r in first["busilist"]] == [key(1), key(2), key(3)]
    hz.ok("01", [device(0), device(9)])  # one before the cursor, one after it
    second = hz.query({"_page_size": 3, "_cursor": first["next_cursor"]})
    assert [r["EQP_CODE"] for r in second["busilist"]] == [key(4), key(5), key(6)]
    third = hz.query({"_page_size": 3, "_cursor": second["next_cursor"]})
    assert [r["EQP_CODE"] for r in third["busilist"]] == [key(9)]
    assert third["next_cursor"] is None


def _unpack(token: str) -> bytearray:
    return bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


def _pack(raw: bytearray) -> str:
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode("ascii")


def _tamper(token: str) -> str:
    """The same token with one byte of its encrypted payload changed (nonce 12 bytes, tag last 16)."""
    raw = _unpack(token)
    raw[12] ^= 0x01
    return _pack(raw)


def _edit_mac(token: str) -> str:
    """The same token with one byte of its authentication tag changed."""
    raw = _unpack(token)
    raw[-1] ^= 0x01
    return _pack(raw)


def test_a_cursor_does_not_show_the_key_it_holds(node: Node, hz: Caller) -> None:
    hz.ok("01", [device(n) for n in range(3)])
    cursor = hz.query({"_page_size": 1})["next_cursor"]
    assert key(0).encode() not in _unpack(cursor)


CURSOR_CASES = [
    pytest.param(lambda c, t, s: {**c, "_cursor": t, "_region": "330106"}, CURSOR_MISMATCH, id="other-region"),
    pytest.param(lambda c, t, s: {**c, "_cursor": t, "USE_STATUS": "2"}, CURSOR_MISMATCH, id="added-field"),
    pytest.param(lambda c, t, s: {"_page_size": 2, "_cursor": t}, CURSOR_MISMATCH, id="dropped-condition"),
    pytest.param(lambda c, t, s: {**c, "_cursor": t, "_include_deleted": True}, CURSOR_MISMATCH, id="include-deleted"),
    pytest.param(lambda c, t, s: {**c, "_cursor": s}, CURSOR_MISMATCH, id="feed-token-as-cursor"),
    pytest.param(lambda c, t, s: {**c, "_cursor": _tamper(t)}, CURSOR_INVALID, id="tampered-payload"),
    pytest.param(lambda c, t, s: {**c, "_cursor": _edit_mac(t)}, CURSOR_INVALID, id="tampered-mac"),
    pytest.param(lambda c, t, s: {**c, "_cursor": t[:-22]}, CURSOR_INVALID, id="no-mac"),
    pytest.param(lambda c, t, s: {**c, "_cursor": "not-a-cursor"}, CURSOR_INVALID, id="garbage"),
    pytest.param(lambda c, t, s: {**c, "_cursor": 12}, CURSOR_INVALID, id="number"),
]


def test_a_cursor_only_serves_its_own_conditions(hz: Caller, subtests: pytest.Subtests) -> None:
    hz.ok("01", [device(n) for n in range(5)])
    conditions = {"_region": "330100", "_page_size": 2}
    token = hz.query(conditions)["next_cursor"]
    since = hz.query({"_since": "0", "_page_size": 2})["next_since"]
    assert token and since
    for case in CURSOR_CASES:
        change, refusal = case.values
        with subtests.test(case.id):
            datalist = hz.refused("04", [change(conditions, token, since)], refusal)
            assert datalist == {"result": "0000", "message": refusal.message, "code": refusal.code.value}


def test_a_cursor_is_bound_to_the_apps_scope(node: Node, hz: Caller) -> None:
    wider = app(node, "zj-prov", region="330000")
    hz.ok("01", [device(n) for n in range(5)])
    token = hz.query({"_page_size": 2})["next_cursor"]
    wider.refused("04", [{"_page_size": 2, "_cursor": token}], CURSOR_MISMATCH)


# -- 04 query: the change feed ---------------------------------------------------------------


def pull(caller: Caller, since: str, page_size: int = 2) -> tuple[list[tuple[str, bool]], str, bool]:
    """One page of the feed: (key, deleted) pairs, next_since, has_more."""
    datalist = caller.query({"_since": since, "_page_size": page_size})
    assert datalist["next_cursor"] is None
    changes = [(record["EQP_CODE"], record.get("_deleted", False)) for record in datalist["busilist"]]
    return changes, datalist["next_since"], datalist["has_more"]


def pull_all(caller: Caller, since: str, page_size: int = 2) -> tuple[list[tuple[str, bool]], str]:
    """Every change after ``since``, following next_since until has_more is false."""
    everything: list[tuple[str, bool]] = []
    for _ in range(50):
        changes, since, more = pull(caller, since, page_size)
        everything += changes
        if not more:
            return everything, since
    raise AssertionError("the change feed does not end")


def test_change_feed_from_the_beginning_with_tombstones(hz: Caller) -> None:
    hz.ok("01", [device(n) for n in (3, 1, 2)])
    hz.ok("03", [{"EQP_CODE": key(1)}])

    first, since, more = pull(hz, "0")
    assert first == [(key(3), False), (key(2), False)]
    assert more is True
    second, since, more = pull(hz, since)
    assert second == [(key(1), True)]
    assert more is False
    tombstone = hz.query({"_since": "0", "_page_size": 10})["busilist"][-1]
    assert tombstone == {**device(1), "_deleted": True, "_deleted_at": NOW}

    # Nothing new: an empty page, has_more false, and the position does not move.
    empty, again, more = pull(hz, since)
    assert (empty, more) == ([], False)
    assert pull(hz, again)[0] == []


def test_change_feed_loses_and_repeats_nothing_across_pages_and_pulls(hz: Caller) -> None:
    hz.ok("01", [device(n) for n in range(1, 6)])
    page, since, more = pull(hz, "0")
    assert page == [(key(1), False), (key(2), False)]
    assert more

    # Changes while the consumer is half-way: one already seen, one not yet seen, one new.
    hz.ok("02", [{"EQP_CODE": key(1), "USE_STATUS": "3"}, {"EQP_CODE": key(4), "USE_STATUS": "3"}])
    hz.ok("01", [device(6)])
    rest, since = pull_all(hz, since)
    assert rest == [(key(3), False), (key(5), False), (key(1), False), (key(4), False), (key(6), False)]

    # Later changes appear in the next pull exactly once, deletes as tombstones.
    hz.ok("03", [{"EQP_CODE": key(2)}])
    hz.ok("01", [device(3, UPDATE_TIME="2026-11-20 00:00:00"), device(7)])
    hz.ok("01", [device(7)])  # unchanged: no new change
    later, since = pull_all(hz, since)
    assert later == [(key(2), True), (key(3), False), (key(7), False)]
    assert pull_all(hz, since)[0] == []


def test_change_feed_has_more_tells_when_to_stop(hz: Caller, subtests: pytest.Subtests) -> None:
    hz.ok("01", [device(n) for n in range(7)])
    for page_size in (1, 3, 7, 100):
        with subtests.test(page_size=page_size):
            changes, _ = pull_all(hz, "0", page_size)
            assert changes == [(key(n), False) for n in range(7)]


def test_change_feed_cursor_of_another_business_type_is_refused(node: Node) -> None:
    caller = app(node, "hz-city")
    unit_feed = call(node, body("hz-city", caller.secret, "140102", "04", [{"_since": "0"}]))["datalist"]
    assert unit_feed["result"] == "0001", unit_feed
    caller.refused("04", [{"_since": unit_feed["next_since"]}], refusals.since_of_another_business())


CONTROLS = ["_cursor", "_include_deleted", "_page_size", "_region", "_since", "_updated_from", "_updated_to"]


BAD_QUERY_CASES = [
    pytest.param([{"_since": "0", "_cursor": "x.y"}], refusals.since_with_cursor(), id="since-with-cursor"),
    pytest.param([{"_since": 0}], refusals.cursor_invalid("_since"), id="since-not-a-token"),
    pytest.param([{"NOT_A_FIELD": "x"}], refusals.query_field_unknown("NOT_A_FIELD", "0101"), id="unknown-field"),
    pytest.param([{"_sort": "EQP_CODE"}], refusals.query_control_unknown("_sort", CONTROLS), id="unknown-control"),
    pytest.param(
        [{"EQP_CODE": key(1)}, {"EQP_CODE": key(2)}], refusals.query_needs_one_condition(), id="two-condition-objects"
    ),
    pytest.param([{"_page_size": 1001}], refusals.page_size_malformed(1000), id="page-size-above-cap"),
    pytest.param([{"_page_size": 0}], refusals.page_size_malformed(1000), id="page-size-zero"),
    pytest.param([{"_page_size": True}], refusals.page_size_malformed(1000), id="page-size-boolean"),
    pytest.param(
        [{"_updated_from": "2026/11/01"}], refusals.query_time_malformed("_updated_from"), id="updated-from-format"
    ),
    pytest.param(
        [{"_updated_to": "2026-11-01T10:00:00"}], refusals.query_time_malformed("_updated_to"), id="updated-to-format"
    ),
    pytest.param(
        [{"_include_deleted": "true"}], refusals.include_deleted_malformed(), id="include-deleted-not-boolean"
    ),
    pytest.param([{"_region": "3301"}], refusals.query_region_malformed("_region"), id="region-format"),
    pytest.param([{"USE_STATUS": 2}], refusals.query_value_not_text("USE_STATUS"), id="condition-not-a-string"),
]


def test_bad_query_parameters(hz: Caller, subtests: pytest.Subtests) -> None:
    hz.ok("01", [device(1), device(2)])
    for case in BAD_QUERY_CASES:
        busilist, refusal = case.values
        with subtests.test(case.id):
            datalist = hz.refused("04", busilist, refusal)
            assert datalist == {"result": "0000", "message": refusal.message, "code": refusal.code.value}


# -- the change sequence ---------------------------------------------------------------------


LATER = "2026-11-28 09:35:00"  # after the node clock (within the 10 min allowed ahead): it revives deleted records
SEQUENCE_STEPS: list[tuple[str, list[dict[str, Any]], dict[str, int]]] = [
    ("01", [device(1), device(2), device(3)], {key(1): 1, key(2): 2, key(3): 3}),
    # identical, older (skipped), new
    ("01", [device(1), device(2, UPDATE_TIME="2026-10-01 00:00:00"), device(4)], {key(4): 4}),
    ("02", [{"EQP_CODE": key(2), "USE_STATUS": "3"}], {key(2): 5}),
    ("02", [{"EQP_CODE": key(1), "USE_STATUS": "2"}], {}),  # the value it already has
    ("03", [{"EQP_CODE": key(3)}], {key(3): 6}),
    ("03", [{"EQP_CODE": key(3)}], {}),  # already deleted
    ("01", [device(3, UPDATE_TIME=LATER), device(1, UPDATE_TIME=LATER)], {key(3): 7, key(1): 8}),  # revive, update
]


def test_change_sequence_is_one_per_changed_record_and_only_grows(node: Node, hz: Caller) -> None:
    expected: dict[str, int] = {}
    for action, busilist, changed in SEQUENCE_STEPS:
        before = seqs(node)
        hz.ok(action, busilist)
        after = seqs(node)
        expected.update(changed)
        assert after == expected, (action, busilist)
        assert all(seq > max(before.values(), default=0) for seq in changed.values())
        assert counter(node) == max(after.values())
    # A refused request takes no sequence either.
    hz.refused("02", [{"EQP_CODE": key(1), "USE_STATUS": "3"}, {"EQP_CODE": key(9)}], not_found(1))
    assert seqs(node) == expected
    assert counter(node) == 8
    # The feed hands the changes out in sequence order.
    changes, _ = pull_all(hz, "0", page_size=10)
    assert changes == [(key(4), False), (key(2), False), (key(3), False), (key(1), False)]


# -- 一数一源: one record, one source ---------------------------------------------------------

OTHERS_CHANGES = [
    pytest.param("01", lambda n: device(n, UPDATE_TIME="2026-11-20 00:00:00", USE_STATUS="3"), id="add-newer"),
    pytest.param("02", lambda n: {"EQP_CODE": key(n), "USE_STATUS": "3"}, id="modify"),
    pytest.param("03", lambda n: {"EQP_CODE": key(n)}, id="delete"),
]


def test_another_source_may_not_change_a_record(node: Node, hz: Caller, subtests: pytest.Subtests) -> None:
    hz.ok("01", [device(1), device(2)])
    other = app(node, "hz-other")
    other.ok("01", [device(5)])
    for case in OTHERS_CHANGES:
        action, change = case.values
        with subtests.test(case.id):
            # The app's own record in the same batch does not save it: the whole batch is refused.
            datalist = other.refused(action, [change(5), change(1)], CONFLICT)
            assert datalist["busilist"] == [{"index": 1, "key": key(1), "source": "hz-city"}]
    assert rows(node)[key(1)]["data"] == device(1)


def test_an_override_grant_may_change_another_sources_record(node: Node, hz: Caller, subtests: pytest.Subtests) -> None:
    hz.ok("01", [device(n) for n in range(len(OTHERS_CHANGES))])
    overrider = app(node, "zj-override", overrides=frozenset({"0101"}))
    for number, case in enumerate(OTHERS_CHANGES):
        action, change = case.values
        with subtests.test(case.id):
            datalist = overrider.ok(action, [change(number)])
            counts = {"01": "updated", "02": "updated", "03": "deleted"}[action]
            assert datalist["counts"] == {**ZERO, counts: 1}
            row = rows(node)[key(number)]
            assert (row["source_appid"], row["changed_by"]) == ("hz-city", "zj-override")
            assert row["deleted"] is (action == "03")
            # The record still belongs to its source, which keeps changing it.
            newer = hz.ok("01", [device(number, UPDATE_TIME=LATER)])
            assert newer["counts"] == {**ZERO, "updated": 1}


def test_another_sources_stale_or_identical_add_is_harmless(node: Node, hz: Caller) -> None:
    hz.ok("01", [device(1), device(2)])
    other = app(node, "hz-other")
    before = records_and_seq(node)
    datalist = other.ok("01", [device(1), device(2, UPDATE_TIME="2026-10-01 00:00:00")])
    assert datalist["counts"] == {**ZERO, "skipped": 1, "unchanged": 1}
    assert records_and_seq(node) == before
