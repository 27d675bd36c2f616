"""Read-ahead of the next page: served only while no record changed since it was read."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from tests.exchange.test_actions import Caller, key
from tests.support import device, grant
from tzsb.app import Node
from tzsb.exchange.readahead import ReadAhead
from tzsb.store import RecordQuery, records_read


def keys(page: dict[str, Any]) -> list[str]:
    return [record["EQP_CODE"] for record in page["busilist"]]


def pages_of(caller: Caller, conditions: dict[str, Any], between: Callable[[int], None] = lambda _: None) -> list[str]:
    """Every key, page by page, calling ``between(n)`` after page n arrived."""
    found: list[str] = []
    page = caller.query(conditions)
    number = 1
    while True:
        found += keys(page)
        between(number)
        if not page["next_cursor"]:
            return found
        page = caller.query({**conditions, "_cursor": page["next_cursor"]})
        number += 1


@pytest.fixture
def node(make_node: Callable[..., Node]) -> Node:
    """A node that reads pages ahead (it does not by default)."""
    return make_node(read_ahead_pages=16)


@pytest.fixture
def hz(node: Node) -> Caller:
    return Caller(node, "hz-city", grant(node))


def test_a_record_added_into_the_next_page_after_it_was_read_ahead_is_in_it(node: Node, hz: Caller) -> None:
    hz.ok("01", [device(n) for n in (1, 2, 3, 5, 6, 7)])
    first = hz.query({"_page_size": 3})
    assert keys(first) == [key(1), key(2), key(3)]
    node.exchange.read_ahead.wait_idle()  # page 2 (5, 6, 7) has been read ahead
    hz.ok("01", [device(4)])
    second = hz.query({"_page_size": 3, "_cursor": first["next_cursor"]})
    assert keys(second) == [key(4), key(5), key(6)]


def test_a_record_changed_or_deleted_after_the_read_ahead_shows_as_it_is_now(node: Node, hz: Caller) -> None:
    hz.ok("01", [device(n) for n in range(1, 7)])
    first = hz.query({"_page_size": 3})
    node.exchange.read_ahead.wait_idle()
    hz.ok("02", [{"EQP_CODE": key(4), "USE_STATUS": "3", "UPDATE_TIME": "2026-11-02 10:00:00"}])
    hz.ok("03", [{"EQP_CODE": key(5)}])
    second = hz.query({"_page_size": 3, "_cursor": first["next_cursor"]})
    assert keys(second) == [key(4), key(6)]
    assert second["busilist"][0]["USE_STATUS"] == "3"


def test_paging_with_writes_between_pages_loses_and_repeats_nothing(hz: Caller) -> None:
    hz.ok("01", [device(n) for n in range(0, 40, 2)])
    added: list[int] = []

    def write_ahead_of_the_cursor(page: int) -> None:
        number = 6 * page + 1  # an odd key the next page will reach
        if number < 40:
            hz.ok("01", [device(number)])
            added.append(number)

    found = pages_of(hz, {"_page_size": 4}, write_ahead_of_the_cursor)
    assert found == sorted(found) and len(found) == len(set(found))
    assert set(found) == {key(n) for n in range(0, 40, 2)} | {key(n) for n in added}


def test_the_change_feed_is_read_ahead_and_stays_exact(node: Node, hz: Caller) -> None:
    hz.ok("01", [device(n) for n in range(10)])
    first = hz.query({"_since": "0", "_page_size": 4})
    assert first["has_more"] is True
    node.exchange.read_ahead.wait_idle()
    hz.ok("03", [{"EQP_CODE": key(5)}])  # moves key 5 to the end of the feed as a tombstone
    second = hz.query({"_since": first["next_since"], "_page_size": 4})
    third = hz.query({"_since": second["next_since"], "_page_size": 4})
    assert keys(second) == [key(4), key(6), key(7), key(8)]
    assert keys(third) == [key(9), key(5)]
    assert third["busilist"][-1]["_deleted"] is True


def test_a_page_read_ahead_is_served_when_nothing_changed(
    node: Node, hz: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    hz.ok("01", [device(n) for n in range(6)])
    read_ahead = node.exchange.read_ahead
    reads: list[RecordQuery] = []
    select = records_read.select_records

    def counting(connection: Any, query: RecordQuery, *, raw: bool = False, masked_plan: str | None = None) -> Any:
        reads.append(query)
        return select(connection, query, raw=raw, masked_plan=masked_plan)

    monkeypatch.setattr(records_read, "select_records", counting)
    first = hz.query({"_page_size": 3})
    read_ahead.wait_idle()
    assert len(reads) == 2  # page 1 now, page 2 ahead
    second = hz.query({"_page_size": 3, "_cursor": first["next_cursor"]})
    read_ahead.wait_idle()
    assert keys(second) == [key(3), key(4), key(5)]
    assert len(reads) == 2  # page 2 came from the read-ahead; it was the last page, so nothing more


def test_one_apps_read_ahead_is_not_served_to_another(node: Node, hz: Caller) -> None:
    other = Caller(node, "hz-other", grant(node, appid="hz-other"))
    hz.ok("01", [device(n) for n in range(6)])
    mine = hz.query({"_page_size": 3})
    theirs = other.query({"_page_size": 3})
    node.exchange.read_ahead.wait_idle()
    assert keys(other.query({"_page_size": 3, "_cursor": theirs["next_cursor"]})) == [key(3), key(4), key(5)]
    assert keys(hz.query({"_page_size": 3, "_cursor": mine["next_cursor"]})) == [key(3), key(4), key(5)]


def test_read_ahead_keeps_at_most_its_capacity_and_zero_turns_it_off(node: Node) -> None:
    read_ahead = ReadAhead(node.store, capacity=2)
    try:
        for number in range(5):
            read_ahead.prepare("app", RecordQuery("0101", key=key(number)), raw=False)
        read_ahead.wait_idle()
        assert read_ahead.pending() == 2
    finally:
        read_ahead.close()
    off = ReadAhead(node.store, capacity=0)
    off.prepare("app", RecordQuery("0101"), raw=False)
    assert off.pending() == 0
    off.close()


def _read_ahead_by_two_requests_at_once(node: Node, cores: int) -> int:
    """Pages read ahead when a second request asks for one while the first is still being answered."""
    read_ahead = ReadAhead(node.store, cores=cores)
    try:
        with read_ahead.answering():
            read_ahead.prepare("app", RecordQuery("0101", key=key(1)), raw=False)
            with read_ahead.answering():
                read_ahead.prepare("app", RecordQuery("0101", key=key(2)), raw=False)
        read_ahead.wait_idle()
        return read_ahead.pending()
    finally:
        read_ahead.close()


def test_no_page_is_read_ahead_while_the_node_has_no_core_to_spare(node: Node) -> None:
    assert _read_ahead_by_two_requests_at_once(node, cores=4) == 2
    assert _read_ahead_by_two_requests_at_once(node, cores=2) == 1
    # One core still reads ahead for a request answered alone: the caller's own time on its page.
    assert _read_ahead_by_two_requests_at_once(node, cores=1) == 1


def test_a_request_that_failed_is_no_longer_counted(node: Node) -> None:
    read_ahead = ReadAhead(node.store, cores=2)
    try:
        with pytest.raises(RuntimeError), read_ahead.answering():
            raise RuntimeError("refused")
        with read_ahead.answering():
            read_ahead.prepare("app", RecordQuery("0101", key=key(3)), raw=False)
        read_ahead.wait_idle()
        assert read_ahead.pending() == 1
    finally:
        read_ahead.close()


def test_the_node_reads_no_page_ahead_unless_asked(make_node: Callable[..., Node]) -> None:
    default = make_node()
    caller = Caller(default, "hz-city", grant(default))
    caller.ok("01", [device(n) for n in range(4)])
    assert keys(caller.query({"_page_size": 2})) == [key(0), key(1)]
    assert default.exchange.read_ahead.pending() == 0


def test_close_stops_the_read_ahead_thread(node: Node) -> None:
    def threads() -> int:
        return sum(thread.name.startswith("tzsb-read-ahead") for thread in threading.enumerate())

    before = threads()
    read_ahead = ReadAhead(node.store)
    read_ahead.prepare("app", RecordQuery("0101"), raw=False)
    read_ahead.wait_idle()
    assert threads() == before + 1
    read_ahead.close()
    assert threads() == before
    read_ahead.prepare("app", RecordQuery("0101", key="x"), raw=False)  # after close: ignored
    assert read_ahead.pending() == 0


def test_a_page_still_queued_behind_another_apps_read_is_read_at_once(
    node: Node, hz: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    hz.ok("01", [device(n) for n in range(3)])
    read_ahead = ReadAhead(node.store)
    release, slow_done = threading.Event(), threading.Event()
    select = records_read.select_records

    def slow_for_other(
        connection: Any, query: RecordQuery, *, raw: bool = False, masked_plan: str | None = None
    ) -> Any:
        if query.key == "slow":
            release.wait(2)
            slow_done.set()
        return select(connection, query, raw=raw, masked_plan=masked_plan)

    monkeypatch.setattr(records_read, "select_records", slow_for_other)
    try:
        read_ahead.prepare("other", RecordQuery("0101", key="slow"), raw=False)  # occupies the thread
        mine = RecordQuery("0101", region_prefixes=("3301",), limit=10)
        read_ahead.prepare("mine", mine, raw=False)  # queued behind it
        rows = read_ahead.page("mine", mine, raw=False)
        # Read at once: had it waited for its queued read-ahead, the other app's read would be done.
        assert not slow_done.is_set()
        assert [row.key for row in rows] == [key(0), key(1), key(2)]
    finally:
        release.set()
        read_ahead.close()
