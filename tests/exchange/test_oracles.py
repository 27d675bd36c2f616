"""Writes are no oracle: what an answer tells about records the caller may not see is no more than a query would.

Items 2 and 3 of the outside attack: an app that sees persons masked probed which ID numbers exist
(02 with an old UPDATE_TIME: skipped vs E_NOTFOUND) and whether a guessed mobile was right
(unchanged vs E_CONFLICT); an app of another region probed a thousand ID numbers per 01 (E_REGION
listed which exist elsewhere) and squatted keys that belong to another region.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.exchange.test_masking import PERSON
from tests.support import body, call, claimed, device, grant, log_rows, snapshot
from tzsb import refusals
from tzsb.app import Node
from tzsb.clock import FixedClock
from tzsb.exchange import reassign_record

MISSING_ID = "110105194912310038"
PERSONS = frozenset({"140103"})


def send(node: Node, appid: str, secret: str, action: str, busilist: list[dict[str, Any]]) -> dict[str, Any]:
    return call(node, body(appid, secret, "140103", action, busilist))


@pytest.fixture
def writer(node: Node) -> str:
    """An app of 330100 that supplied PERSON (and sees persons unmasked)."""
    secret = grant(node, appid="writer", busicodes=PERSONS)
    assert send(node, "writer", secret, "01", [PERSON])["datalist"]["result"] == "0001"
    return secret


@pytest.fixture
def masked(node: Node) -> str:
    """Another app of 330100, granted every action on persons but seeing them masked."""
    return grant(node, appid="masked", busicodes=PERSONS, unmasked=frozenset())


def refusal_of(answer: dict[str, Any]) -> tuple[str, str, Any]:
    datalist = answer["datalist"]
    return datalist.get("code", ""), datalist["message"], datalist.get("busilist")


@pytest.mark.usefixtures("writer")
def test_a_masked_app_s_modify_cannot_tell_which_id_numbers_exist(node: Node, masked: str) -> None:
    stale = "2000-01-01 00:00:00"
    held = send(node, "masked", masked, "02", [{"ID_NO": PERSON["ID_NO"], "UPDATE_TIME": stale}])
    absent = send(node, "masked", masked, "02", [{"ID_NO": MISSING_ID, "UPDATE_TIME": stale}])
    # Both answers are the same "not found" (each names the caller's own key, which it sent).
    assert (
        refusal_of(held)[:2]
        == refusal_of(absent)[:2]
        == ("E_NOTFOUND", refusals.records_not_found([1], "ID_NO").message)
    )


@pytest.mark.usefixtures("writer")
@pytest.mark.parametrize("action", ["02", "03"])
def test_a_masked_app_s_write_cannot_check_a_guessed_value(node: Node, masked: str, action: str) -> None:
    right, wrong = PERSON["MOBILE"], "13900000000"
    if action == "02":
        answers = [
            send(node, "masked", masked, "02", [{"ID_NO": PERSON["ID_NO"], "MOBILE": guess}])
            for guess in (right, wrong)
        ]
    else:
        answers = [send(node, "masked", masked, "03", [{"ID_NO": key}]) for key in (PERSON["ID_NO"], MISSING_ID)]
    before = snapshot(node)
    assert refusal_of(answers[0])[:2] == refusal_of(answers[1])[:2]
    assert refusal_of(answers[0])[0] == "E_NOTFOUND"
    assert snapshot(node)["records"] == before["records"]


@pytest.mark.usefixtures("writer")
def test_a_masked_app_s_add_over_another_source_is_one_refusal_whatever_it_sends(node: Node, masked: str) -> None:
    """Identical data (was: unchanged), older (was: skipped), newer (was: E_CONFLICT naming the source)."""
    older = {**PERSON, "UPDATE_TIME": "2026-01-01 00:00:00"}
    newer = {**PERSON, "UPDATE_TIME": "2026-11-02 00:00:00", "MOBILE": "13900000000"}
    answers = [send(node, "masked", masked, "01", [record]) for record in (PERSON, older, newer)]
    expected = refusals.keys_held_elsewhere()
    assert [refusal_of(answer) for answer in answers] == [(expected.code.value, expected.message, None)] * 3
    assert "writer" not in str(answers)


@pytest.mark.usefixtures("writer")
def test_a_masked_app_still_writes_its_own_records(node: Node, masked: str) -> None:
    own = {**PERSON, "ID_NO": MISSING_ID, "PERSON_NAME": "李四"}
    assert send(node, "masked", masked, "01", [own])["datalist"]["result"] == "0001"
    answer = send(node, "masked", masked, "02", [{"ID_NO": MISSING_ID, "MOBILE": "13900000000"}])
    assert answer["datalist"]["counts"]["updated"] == 1, answer
    assert send(node, "masked", masked, "03", [{"ID_NO": MISSING_ID}])["datalist"]["counts"]["deleted"] == 1


@pytest.mark.usefixtures("writer")
def test_an_unmasked_app_keeps_its_answers(node: Node) -> None:
    """An app that may query by ID number learns nothing new from a write: answers as before."""
    secret = grant(node, appid="peer", busicodes=PERSONS)
    answer = send(node, "peer", secret, "02", [{"ID_NO": PERSON["ID_NO"], "MOBILE": "13900000000"}])
    assert refusal_of(answer)[0] == "E_CONFLICT"
    assert answer["datalist"]["busilist"] == [{"index": 0, "key": PERSON["ID_NO"], "source": "writer"}]
    assert send(node, "peer", secret, "01", [PERSON])["datalist"]["counts"]["unchanged"] == 1


# -- another region (item 3) -------------------------------------------------------------------------------


@pytest.fixture
def ningbo(node: Node) -> str:
    """An app of 宁波 (330200) that sees persons unmasked: region, not masking, hides Hangzhou's records."""
    return grant(node, appid="nb-city", region="330200", busicodes=PERSONS)


@pytest.mark.usefixtures("writer")
def test_an_add_over_keys_held_in_another_region_does_not_say_which(node: Node, ningbo: str) -> None:
    guesses = [{**PERSON, "ID_NO": MISSING_ID, "AREA_CODE": "330203"}, {**PERSON, "AREA_CODE": "330203"}]
    before, logged = snapshot(node), len(log_rows(node))

    answer = call(node, body("nb-city", ningbo, "140103", "01", guesses))

    expected = refusals.keys_held_elsewhere()
    assert refusal_of(answer) == (expected.code.value, expected.message, None)
    assert PERSON["ID_NO"] not in str(answer)
    assert snapshot(node) == claimed(before, answer)
    [row] = log_rows(node)[logged:]
    assert (row["code"], row["message"]) == ("E_CONFLICT", expected.message)
    # The operator sees the key, where it is held and by whom.
    [collision] = node.exchange.local.collisions.listing("nb-city")
    assert (collision.business, collision.record_key, collision.held_region, collision.held_source) == (
        "0103",
        PERSON["ID_NO"],
        "330106",
        "writer",
    )
    assert collision.client_addr == "127.0.0.1"


@pytest.mark.usefixtures("writer")
def test_an_app_that_keeps_colliding_is_locked_out_from_every_address(node: Node, ningbo: str) -> None:
    clock = node.clock
    assert isinstance(clock, FixedClock)
    probe = [{**PERSON, "AREA_CODE": "330203"}]
    for attempt in range(10):
        answer = call(node, body("nb-city", ningbo, "140103", "01", probe, random=f"probe-{attempt:04d}"))
        assert refusal_of(answer)[0] == "E_CONFLICT", (attempt, answer)
    until = clock.now() + timedelta(hours=24)
    locked = refusals.locked_out_for_collisions("nb-city", until)
    elsewhere = node.exchange.handle(
        body("nb-city", ningbo, "140103", "04", [{}], random="after-0001"), "application/json", "192.0.2.1"
    )
    assert b'"code":"E_LOCKED"' in elsewhere
    assert locked.message.encode() in elsewhere
    # tzsb app unlock: the lock lifted and the collisions so far no longer count.
    node.exchange.admission.lockouts.clear("nb-city")
    node.exchange.local.collisions.acknowledge("nb-city")
    assert call(node, body("nb-city", ningbo, "140103", "04", [{}]))["datalist"]["result"] == "0001"
    again = call(node, body("nb-city", ningbo, "140103", "01", probe, random="probe-0099"))
    assert refusal_of(again)[0] == "E_CONFLICT"
    assert (
        call(node, body("nb-city", ningbo, "140103", "04", [{}], random="after-0002"))["datalist"]["result"] == "0001"
    )


def test_collisions_on_keys_that_are_no_personal_data_do_not_lock_the_rightful_source_out(node: Node) -> None:
    """A squatter registered Hangzhou's device codes from Ningbo first: Hangzhou's adds are refused
    (the operator reassigns the records) but Hangzhou is not locked out for it."""
    ningbo = grant(node, appid="nb-city", region="330200")
    squatted = [device(n, AREA_CODE="330203") for n in range(12)]
    assert call(node, body("nb-city", ningbo, "140101", "01", squatted))["datalist"]["result"] == "0001"
    hangzhou = grant(node)
    for attempt in range(12):
        answer = call(node, body("hz-city", hangzhou, "140101", "01", [device(attempt)], random=f"own-{attempt:04d}"))
        assert refusal_of(answer)[0] == "E_CONFLICT", answer
    assert call(node, body("hz-city", hangzhou, "140101", "04", [{}]))["datalist"]["result"] == "0001"
    assert len(node.exchange.local.collisions.listing("hz-city")) == 12


@pytest.mark.usefixtures("writer")
def test_the_operator_hands_a_squatted_record_to_its_rightful_region(node: Node, ningbo: str) -> None:
    """Ningbo added a Hangzhou person first; Hangzhou's app could never add it. The operator reassigns it."""
    squatted = {**PERSON, "ID_NO": MISSING_ID, "AREA_CODE": "330203"}
    assert call(node, body("nb-city", ningbo, "140103", "01", [squatted]))["datalist"]["result"] == "0001"
    hangzhou = grant(node, appid="hz-city", busicodes=PERSONS)
    rightful = {**PERSON, "ID_NO": MISSING_ID}
    assert refusal_of(call(node, body("hz-city", hangzhou, "140103", "01", [rightful])))[0] == "E_CONFLICT"
    seq = snapshot(node)["seq"]

    done = reassign_record(node.store, node.catalog, node.clock, "0103", MISSING_ID, "330106", source="hz-city")

    assert (done.region_before, done.source_before, done.region, done.source, done.seq) == (
        "330203", "nb-city", "330106", "hz-city", seq + 1
    )  # fmt: skip
    changed = call(node, body("hz-city", hangzhou, "140103", "02", [{"ID_NO": MISSING_ID, "MOBILE": "13900000000"}]))
    assert changed["datalist"]["counts"]["updated"] == 1, changed
    # The log names the record as a masked answer would.
    reassigned = [row for row in log_rows(node) if row["client_addr"] == "(operator)"]
    assert [row["message"].split(" / ")[1] for row in reassigned] == [
        "operator operator reassigned 0103 record 110105********0038 from 330203 (nb-city) to 330106 (hz-city)"
    ]
    # Ningbo no longer sees it.
    query = call(node, body("nb-city", ningbo, "140103", "04", [{}]))
    assert [record["ID_NO"] for record in query["datalist"]["busilist"]] == []


def test_reassigning_an_unknown_record_is_refused(node: Node) -> None:
    from tzsb.errors import OperatorError

    with pytest.raises(OperatorError, match="holds no 0103 record with key X"):
        reassign_record(node.store, node.catalog, node.clock, "0103", "X", "330106")
    with pytest.raises(OperatorError, match="not a 6-digit"):
        reassign_record(node.store, node.catalog, node.clock, "0103", "X", "3301")


def test_devices_follow_the_same_rules(node: Node) -> None:
    """Item 3 with devices: a Ningbo add over a Hangzhou device key is refused without naming it."""
    hangzhou = grant(node)
    assert call(node, body("hz-city", hangzhou, "140101", "01", [device(1)]))["datalist"]["result"] == "0001"
    ningbo = grant(node, appid="nb-city", region="330200")
    answer = call(node, body("nb-city", ningbo, "140101", "01", [device(1, AREA_CODE="330203")]))
    assert refusal_of(answer)[:2] == (refusals.keys_held_elsewhere().code.value, refusals.keys_held_elsewhere().message)
    assert refusal_of(answer)[2] is None
