"""A locked-out caller is served again 24 hours later (spec 7.4: 24h 后再重新校验传输), as it sees it
through the pipeline: refused ``E_LOCKED`` until the last second, accepted from the 24th hour on."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.exchange.test_masking import PERSON
from tests.support import body, call, grant, log_rows, snapshot, tallied
from tzsb import refusals
from tzsb.app import Node
from tzsb.clock import FixedClock
from tzsb.errors import ExchangeError

PERSONS = frozenset({"140103"})
WRONG_SECRET = "0123456789abcdef0123456789abcdef"


def refused_unidentified(node: Node, payload: bytes, expected: ExchangeError, client_addr: str) -> None:
    """``payload`` is refused with ``expected``, unsigned, and nothing is written: no record, no claim, no log
    row (only the count of the address's unidentified refusals)."""
    before, logged = snapshot(node), len(log_rows(node))
    answer = call(node, payload, client_addr=client_addr)
    assert answer["datalist"] == {"result": "0000", "message": expected.message, "code": expected.code.value}
    assert answer["sign"] == ""
    assert snapshot(node) == before
    assert len(log_rows(node)) == logged


def test_an_address_locked_by_failed_signatures_is_served_again_after_24_hours(node: Node) -> None:
    clock = node.clock
    assert isinstance(clock, FixedClock)
    secret = grant(node)
    for attempt in range(3):
        answer = call(node, body("hz-city", WRONG_SECRET, "140101", "04", [{}], random=f"wrong-sign-{attempt:04d}"))
    locked = refusals.locked_out("hz-city", "127.0.0.1", clock.now() + timedelta(hours=24))
    assert (answer["datalist"]["code"], answer["datalist"]["message"]) == ("E_LOCKED", locked.message)

    clock.advance(timedelta(hours=24, seconds=-1))
    refused_unidentified(node, body("hz-city", secret, "140101", "04", [{}], random="after-0001"), locked, "127.0.0.1")
    assert tallied(node, "127.0.0.1")[-1][2] == "E_LOCKED"

    clock.advance(timedelta(seconds=1))
    answer = call(node, body("hz-city", secret, "140101", "04", [{}], random="after-0002"))
    assert answer["datalist"]["result"] == "0001", answer
    # The success cleared the failures: three new ones are needed for a new lock.
    assert node.exchange.admission.lockouts.listing() == []


def test_an_app_locked_for_collisions_is_served_again_after_24_hours(node: Node) -> None:
    clock = node.clock
    assert isinstance(clock, FixedClock)
    writer = grant(node, appid="writer", busicodes=PERSONS)
    assert call(node, body("writer", writer, "140103", "01", [PERSON]))["datalist"]["result"] == "0001"
    ningbo = grant(node, appid="nb-city", region="330200", busicodes=PERSONS)
    probe = [{**PERSON, "AREA_CODE": "330203"}]
    for attempt in range(10):
        answer = call(node, body("nb-city", ningbo, "140103", "01", probe, random=f"probe-{attempt:04d}"))
        assert answer["datalist"]["code"] == "E_CONFLICT", (attempt, answer)
    locked = refusals.locked_out_for_collisions("nb-city", clock.now() + timedelta(hours=24))

    clock.advance(timedelta(hours=24, seconds=-1))
    for address in ("127.0.0.1", "192.0.2.1"):
        query = body("nb-city", ningbo, "140103", "04", [{}], random=f"after-{address.replace('.', '-')}")
        refused_unidentified(node, query, locked, address)

    clock.advance(timedelta(seconds=1))
    for address in ("127.0.0.1", "192.0.2.1"):
        answer = call(
            node,
            body("nb-city", ningbo, "140103", "04", [{}], random=f"later-{address.replace('.', '-')}"),
            client_addr=address,
        )
        assert answer["datalist"]["result"] == "0001", answer


@pytest.mark.parametrize("hours", [1, 23])
def test_the_lock_holds_within_24_hours(node: Node, hours: int) -> None:
    clock = node.clock
    assert isinstance(clock, FixedClock)
    secret = grant(node)
    for attempt in range(3):
        call(node, body("hz-city", WRONG_SECRET, "140101", "04", [{}], random=f"wrong-sign-{attempt:04d}"))
    locked = refusals.locked_out("hz-city", "127.0.0.1", clock.now() + timedelta(hours=24))
    clock.advance(timedelta(hours=hours))
    refused_unidentified(node, body("hz-city", secret, "140101", "04", [{}], random="after-0001"), locked, "127.0.0.1")
