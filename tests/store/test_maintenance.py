"""Pruning old request ids: old claims go, recent ones stay (so replays inside the horizon still fail)."""

from __future__ import annotations

from datetime import timedelta

from tests.support import body, call, device, grant, snapshot
from tzsb.app import Node
from tzsb.clock import FixedClock
from tzsb.store import nonces


def test_prune_keeps_recent_claims(node: Node, clock: FixedClock) -> None:
    secret = grant(node)
    old = body("hz-city", secret, "140101", "01", [device(1)], random="old-request-1")
    assert call(node, old)["datalist"]["result"] == "0001"
    clock.advance(timedelta(days=40))
    recent = body("hz-city", secret, "140101", "01", [device(2)], random="new-request-1")
    assert call(node, recent)["datalist"]["result"] == "0001"
    assert nonces.prune(node.store, clock.now() - timedelta(days=30)) == 1
    assert [claim[1] for claim in snapshot(node)["nonces"]] == ["new-request-1"]
    replayed = call(node, body("hz-city", secret, "140101", "01", [device(3)], random="new-request-1"))
    assert replayed["datalist"]["code"] == "E_REPLAY"
