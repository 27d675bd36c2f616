"""What a caller can make the node keep is bounded.

Item 5 of the outside attack: 3,000 posts with an unknown appid wrote 3,000 log rows (about 17 GB a
day from one client). Item 6: 20 queries of 1,000 records kept 26 MB of answers until an operator
pruned them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest

from tests.support import body, call, claimed, device, grant, log_rows, snapshot, tallied
from tzsb import refusals
from tzsb.app import Node
from tzsb.clock import FixedClock
from tzsb.exchange import replays as replays_module
from tzsb.store import nonces

JSON = "application/json"


def handle(node: Node, payload: bytes, address: str) -> dict[str, object]:
    answer: dict[str, object] = orjson.loads(node.exchange.handle(payload, JSON, address))
    return answer


def code_of(answer: dict[str, object]) -> object:
    datalist = answer["datalist"]
    assert isinstance(datalist, dict)
    return datalist.get("code")


def test_unsigned_junk_writes_one_row_per_address_and_minute(node: Node) -> None:
    logged = len(log_rows(node))
    stranger = orjson.dumps({"appid": "nobody", "busicode": "140101", "action": "01", "busilist": "[]",
                             "random": "0123456789", "sign": "00"})  # fmt: skip
    for _ in range(200):
        handle(node, stranger, "198.51.100.7")
    assert len(log_rows(node)) == logged
    assert tallied(node) == [("198.51.100.7", 200, "E_LIMIT")]  # the last 140 came after the limit


def test_an_address_past_the_limit_learns_nothing_more_but_signed_callers_are_served(node: Node) -> None:
    """Past the limit an address's unidentified requests get a short "too many"; an app that signs
    correctly from the same address (callers behind one NAT) is still served."""
    clock = node.clock
    assert isinstance(clock, FixedClock)
    secret = grant(node)
    limit = node.exchange.answers.tally.per_minute
    for _ in range(limit):
        assert code_of(handle(node, b"not json", "198.51.100.7")) == "E_JSON"

    refused = handle(node, b'{"appid": "nobody"}', "198.51.100.7")
    assert refused["datalist"] == {
        "result": "0000",
        "message": refusals.too_many_refusals(limit).message,
        "code": "E_LIMIT",
    }
    assert refused["sign"] == ""
    assert code_of(handle(node, body("hz-city", secret, "140101", "04", [{}]), "198.51.100.7")) is None
    # Another address is not affected, and the next minute the address starts afresh.
    assert code_of(handle(node, b"not json", "198.51.100.8")) == "E_JSON"
    clock.advance(timedelta(seconds=60))
    assert code_of(handle(node, b"not json", "198.51.100.7")) == "E_JSON"
    assert sorted((address, count) for address, count, _ in tallied(node)) == [
        ("198.51.100.7", 1),
        ("198.51.100.7", limit + 1),
        ("198.51.100.8", 1),
    ]


def test_failed_signatures_count_toward_the_limit_and_stop_being_logged_past_it(node: Node) -> None:
    grant(node)
    node.exchange.answers.tally.per_minute = 3
    logged = len(log_rows(node))
    for attempt in range(2):
        forged = body("hz-city", "0" * 32, "140101", "04", [{}], random=f"forged-{attempt:04d}")
        assert code_of(handle(node, forged, "2001:db8:1:2::7")) == "E_SIGN"
    for _ in range(2):  # the same /64: counted as one source
        handle(node, b"junk", "2001:db8:1:2::8")
    forged = body("hz-city", "0" * 32, "140101", "04", [{}], random="forged-0099")
    assert code_of(handle(node, forged, "2001:db8:1:2::9")) == "E_LIMIT"
    assert [row["code"] for row in log_rows(node)[logged:]] == ["E_SIGN", "E_SIGN"]
    assert [(address, count) for address, count, _ in tallied(node)] == [("2001:db8:1:2::/64", 5)]


def test_sources_beyond_the_cap_share_one_row(node: Node) -> None:
    tally = node.exchange.answers.tally
    tally.max_sources = 3
    for host in range(10):
        handle(node, b"junk", f"198.51.100.{host}")
    assert sorted(count for _, count, _ in tallied(node)) == [1, 1, 1, 7]
    assert ("*", 7) in [(address, count) for address, count, _ in tallied(node)]


def test_failed_signatures_of_a_known_app_stay_one_row_each(node: Node) -> None:
    grant(node)
    logged = len(log_rows(node))
    for attempt in range(2):
        forged = body("hz-city", "0" * 32, "140101", "04", [{}], random=f"forged-{attempt:04d}")
        assert code_of(handle(node, forged, "198.51.100.7")) == "E_SIGN"
    assert [row["code"] for row in log_rows(node)[logged:]] == ["E_SIGN", "E_SIGN"]


# -- answers kept for retries (item 6) ----------------------------------------------------------------------


def test_a_first_answer_expires_and_its_random_stays_spent(node: Node) -> None:
    clock = node.clock
    assert isinstance(clock, FixedClock)
    secret = grant(node)
    add = body("hz-city", secret, "140101", "01", [device(1)], random="expiring-0001")
    first = call(node, add)
    assert call(node, add) == first  # a retry gets the first answer

    clock.advance(node.exchange.answers.replays.answer_ttl + timedelta(seconds=1))
    assert node.exchange.answers.replays.run() == 1
    before = snapshot(node)

    replayed = call(node, add)

    assert replayed["datalist"] == {
        "result": "0000",
        "message": refusals.answer_expired().message,
        "code": "E_REPLAY",
    }
    assert snapshot(node) == before


def test_an_apps_kept_answers_stay_under_its_quota(node: Node) -> None:
    secret = grant(node, max_records=1000)
    assert (
        call(node, body("hz-city", secret, "140101", "01", [device(n) for n in range(300)]))["datalist"]["result"]
        == "0001"
    )
    page = call(node, body("hz-city", secret, "140101", "04", [{"_page_size": "300"}], random="size-0001"))
    size = len(orjson.dumps(page))
    replays = node.exchange.answers.replays
    replays.quota_bytes = 3 * size

    for number in range(20):
        answer = call(
            node, body("hz-city", secret, "140101", "04", [{"_page_size": "300"}], random=f"query-{number:04d}")
        )
        assert answer["datalist"]["result"] == "0001", answer["datalist"]["message"]
    replays.run(["hz-city"])

    with node.store.read() as connection:
        kept = nonces.kept_bytes(connection, "hz-city")
    assert 0 < kept <= replays.quota_bytes
    # The newest answer is still there for a retry; the oldest are gone (their randoms stay spent).
    newest = body("hz-city", secret, "140101", "04", [{"_page_size": "300"}], random="query-0019")
    assert call(node, newest)["datalist"]["result"] == "0001"
    oldest = call(node, body("hz-city", secret, "140101", "04", [{"_page_size": "300"}], random="query-0000"))
    assert oldest["datalist"]["code"] == "E_REPLAY"


@pytest.mark.parametrize("quota", [1, 10**9])
def test_claims_stay_when_answers_go(node: Node, quota: int) -> None:
    secret = grant(node)
    node.exchange.answers.replays.quota_bytes = quota
    before = snapshot(node)
    answer = call(node, body("hz-city", secret, "140101", "04", [{}], random="claim-0001"))
    node.exchange.answers.replays.run(["hz-city"])
    assert snapshot(node) == claimed(before, answer)


def test_ended_minutes_leave_memory(node: Node) -> None:
    clock = node.clock
    assert isinstance(clock, FixedClock)
    tally = node.exchange.answers.tally
    for address in ("198.51.100.1", "198.51.100.2"):
        handle(node, b"junk", address)
    tally.listing()  # written, and still this minute
    clock.advance(timedelta(minutes=2))
    handle(node, b"junk", "198.51.100.3")
    assert [key[0] for key in tally._counts] == ["198.51.100.3"]
    assert sorted(count for _, count, _ in tallied(node)) == [1, 1, 1]


def _kept_answers(node: Node, count: int) -> tuple[str, int]:
    """``count`` answered queries of hz-city, each keeping its answer; its secret and the answers' size."""
    secret = grant(node)
    sizes = {
        len(orjson.dumps(call(node, body("hz-city", secret, "140101", "04", [{}], random=f"kept-{number:04d}"))))
        for number in range(count)
    }
    assert len(sizes) == 1
    return secret, sizes.pop()


def test_an_app_is_held_to_its_quota_a_chunk_at_a_time_without_holding_writers_up(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What to drop is read with no writer's lock held (a write can start meanwhile), and each chunk of
    ``DROP_CHUNK`` answers is committed on its own, so that no writer waits for all of them."""
    secret, size = _kept_answers(node, 7)
    replays = node.exchange.answers.replays
    monkeypatch.setattr(replays_module, "DROP_CHUNK", 2)
    replays.quota_bytes = 2 * size
    over_quota, write_grouped = nonces.over_quota, node.store.write_grouped
    chunks: list[int] = []

    def read_with_writers_free(connection: Any, appid: str, quota: int) -> list[str]:
        with node.store.write_if_free() as free:
            assert free is not None, "the writers' lock was held while what to drop was worked out"
        return over_quota(connection, appid, quota)

    def counted(work: Any) -> Any:
        dropped = write_grouped(work)
        chunks.append(dropped)
        return dropped

    monkeypatch.setattr(nonces, "over_quota", read_with_writers_free)
    monkeypatch.setattr(node.store, "write_grouped", counted)

    assert replays.hold_quota("hz-city") == 5
    assert chunks == [2, 2, 1]
    with node.store.read() as connection:
        assert nonces.kept_bytes(connection, "hz-city") == 2 * size
    # The two newest answers are kept for retries; the oldest are gone, their randoms still spent.
    assert call(node, body("hz-city", secret, "140101", "04", [{}], random="kept-0006"))["datalist"]["result"] == "0001"
    assert code_of(call(node, body("hz-city", secret, "140101", "04", [{}], random="kept-0004"))) == "E_REPLAY"


def test_expired_answers_go_a_chunk_a_transaction(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    _kept_answers(node, 5)
    clock = node.clock
    assert isinstance(clock, FixedClock)
    replays = node.exchange.answers.replays
    monkeypatch.setattr(replays_module, "DROP_CHUNK", 2)
    write_grouped = node.store.write_grouped
    chunks: list[int] = []

    def counted(work: Any) -> Any:
        dropped = write_grouped(work)
        chunks.append(dropped)
        return dropped

    monkeypatch.setattr(node.store, "write_grouped", counted)
    clock.advance(replays.answer_ttl + timedelta(seconds=1))

    assert replays.run() == 5
    assert chunks == [2, 2, 1]
    with node.store.read() as connection:
        assert nonces.kept_bytes(connection, "hz-city") == 0
