"""Lock-outs after failed signatures (7.4) when several server processes serve one node."""

from __future__ import annotations

from datetime import timedelta

from tzsb.app import Node
from tzsb.clock import FixedClock
from tzsb.registry.lockout import Lockouts, PairLocks


def test_a_lock_set_by_one_process_holds_at_once_in_another(node: Node, clock: FixedClock) -> None:
    recording, other = Lockouts(node.store, clock, shared=True), Lockouts(node.store, clock, shared=True)
    assert other.status("hz-city", "10.0.0.1") == (False, None)  # its view of the failures is fresh now
    for _ in range(3):
        locked = recording.record_failure("hz-city", "10.0.0.1")
    assert locked is not None
    assert other.status("hz-city", "10.0.0.1") == (True, locked)
    assert other.status("hz-city", "10.0.0.2") == (False, None)


def test_one_process_alone_trusts_its_own_list_between_reads(node: Node, clock: FixedClock) -> None:
    """What a single process does (and why several must not): another process's lock shows only
    after the list of suspects is read again."""
    recording, other = Lockouts(node.store, clock), Lockouts(node.store, clock)
    assert other.status("hz-city", "10.0.0.1") == (False, None)
    for _ in range(3):
        recording.record_failure("hz-city", "10.0.0.1")
    assert other.status("hz-city", "10.0.0.1") == (False, None)
    other.refresh_seconds = 0
    assert other.status("hz-city", "10.0.0.1")[1] is not None


# -- the lock lifts after the cool-down (7.4: 24h 后再重新校验传输) ---------------------------------------------


def test_a_pair_locked_by_failed_signatures_is_unlocked_after_exactly_24_hours(node: Node, clock: FixedClock) -> None:
    lockouts = Lockouts(node.store, clock)
    for _ in range(3):
        locked = lockouts.record_failure("hz-city", "10.0.0.1")
    assert locked == clock.now() + timedelta(hours=24)
    assert lockouts.status("hz-city", "10.0.0.1") == (True, locked)
    clock.advance(timedelta(hours=24, seconds=-1))
    assert lockouts.status("hz-city", "10.0.0.1") == (True, locked)
    clock.advance(timedelta(seconds=1))
    assert lockouts.status("hz-city", "10.0.0.1")[1] is None
    assert [row["locked"] for row in lockouts.listing()] == [False]
    # The count starts again: the first failure after the lock does not lock the pair again.
    assert lockouts.record_failure("hz-city", "10.0.0.1") is None
    assert lockouts.status("hz-city", "10.0.0.1") == (True, None)


def test_an_app_wide_lock_lifts_after_exactly_24_hours(node: Node, clock: FixedClock) -> None:
    lockouts = Lockouts(node.store, clock)
    until = lockouts.lock_app("nb-city", 10)
    assert until == clock.now() + timedelta(hours=24)
    clock.advance(timedelta(hours=24, seconds=-1))
    assert lockouts.app_locked_until("nb-city") == until
    clock.advance(timedelta(seconds=1))
    assert lockouts.app_locked_until("nb-city") is None


def test_a_lock_lifts_in_every_process_after_24_hours(node: Node, clock: FixedClock) -> None:
    """Several server processes read the row on every request: the end of the lock is the same for all."""
    recording, other = Lockouts(node.store, clock, shared=True), Lockouts(node.store, clock, shared=True)
    for _ in range(3):
        locked = recording.record_failure("hz-city", "10.0.0.1")
    clock.advance(timedelta(hours=24, seconds=-1))
    assert other.status("hz-city", "10.0.0.1") == (True, locked)
    clock.advance(timedelta(seconds=1))
    assert other.status("hz-city", "10.0.0.1")[1] is None


def test_one_read_tells_every_process_of_app_and_address_locks(node: Node, clock: FixedClock) -> None:
    """``locks``: what admission asks on every request, in one statement when shared; the same
    answers as ``app_locked_until`` and ``status`` asked one by one, in both modes."""
    recording = Lockouts(node.store, clock, shared=True)
    shared, alone = Lockouts(node.store, clock, shared=True), Lockouts(node.store, clock)
    recording.record_failure("hz-city", "10.0.0.3")  # failures, not yet locked
    for _ in range(3):
        locked = recording.record_failure("hz-city", "10.0.0.1")
    for lockouts in (shared, alone):
        assert lockouts.locks("hz-city", "10.0.0.1") == PairLocks(None, True, locked)
        assert lockouts.locks("hz-city", "10.0.0.3") == PairLocks(None, True, None)
        assert lockouts.locks("hz-city", "10.0.0.2") == PairLocks(None, False, None)
        assert lockouts.locks("nb-city", "10.0.0.1") == PairLocks(None, False, None)
    app_locked = recording.lock_app("hz-city", 5)
    alone = Lockouts(node.store, clock)  # a process started now reads the app-wide row too
    for lockouts in (shared, alone):
        assert lockouts.locks("hz-city", "10.0.0.2") == PairLocks(app_locked, False, None)
        assert lockouts.locks("hz-city", "10.0.0.1") == PairLocks(app_locked, True, locked)
    # The app-wide row's address is no caller's: asked as a pair it is the app-wide lock alone.
    assert shared.locks("hz-city", "*") == PairLocks(app_locked, False, None)
    clock.advance(timedelta(hours=24))
    assert shared.locks("hz-city", "10.0.0.1") == PairLocks(None, True, None)


def test_pairs_whose_failures_are_over_are_pruned_by_every_process(node: Node, clock: FixedClock) -> None:
    """Shared or not, a process drops the rows of pairs whose failures are out of the window (and
    whose lock, if any, is over) as it answers requests: strangers cannot grow the table for good."""
    for shared in (True, False):
        recording = Lockouts(node.store, clock, shared=shared)
        recording.record_failure("hz-city", "10.0.0.9")
        assert [row["client_addr"] for row in recording.listing()] == ["10.0.0.9"]
        clock.advance(timedelta(hours=1, seconds=1))
        answering = Lockouts(node.store, clock, shared=shared, refresh_seconds=0.0)
        assert answering.locks("hz-city", "10.0.0.1") == PairLocks(None, False, None)
        assert answering.listing() == []
