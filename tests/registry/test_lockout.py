"""Lock-outs after failed signatures (7.4) when several server processes serve one node."""

from __future__ import annotations

from tzsb.app import Node
from tzsb.clock import FixedClock
from tzsb.registry.lockout import Lockouts


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
