"""``/readyz``: ready only when the database answers, the master key is present, the rules are
loaded and pass their cases, and the sync schedule runs when it should; cached for a second."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx

from tests.sync.nodes import make_home, open_home, serve_in_thread
from tzsb.app import Node
from tzsb.monitor import Check, ReadinessProbe
from tzsb.sync import LinkSpec


def _node(tmp_path: Path, **settings: object) -> Node:
    return open_home(make_home(tmp_path, "node", "county", "330106", ""), **settings)


def _link(node: Node) -> None:
    node.links.add(
        LinkSpec(
            name="up", url="http://127.0.0.1:9/tzsb/exchange", appid="county-330106", secret="s", direction="up",
            businesses=("0101",), every_seconds=30,
        )
    )  # fmt: skip


def test_a_healthy_node_is_ready_and_says_so_over_http(tmp_path: Path) -> None:
    node = _node(tmp_path)
    try:
        with serve_in_thread(node) as served:
            reply = httpx.get(served.url.split("/tzsb/")[0] + "/readyz", timeout=5)
    finally:
        node.close()
    assert reply.status_code == 200
    body = reply.json()
    assert (body["status"], body["failing"]) == ("ready", [])
    # Loopback is a listed network (health_details_from): it sees each check.
    assert body["checks"] == {
        name: {"ok": True, "reason": ""} for name in ("database", "master_key", "rules", "schedule")
    }


def test_broken_rules_and_a_missing_master_key_fail_readiness(tmp_path: Path) -> None:
    node = _node(tmp_path, rules_check_seconds=0.0)
    try:
        (node.settings.home / "rules.json").write_text("{ not json", encoding="utf-8")
        node.settings.master_key_path.unlink()
        with serve_in_thread(node) as served:
            reply = httpx.get(served.url.split("/tzsb/")[0] + "/readyz", timeout=5)
    finally:
        node.close()
    assert reply.status_code == 503
    body = reply.json()
    assert (body["status"], body["failing"]) == ("not ready", ["master_key", "rules"])
    assert body["checks"]["rules"]["reason"].startswith("rules.json rejected: ")
    assert body["checks"]["master_key"]["reason"].endswith("master.key is missing and TZSB_MASTER_KEY is not set")


def test_a_database_that_is_gone_fails_readiness(tmp_path: Path) -> None:
    node = _node(tmp_path)
    try:
        probe = ReadinessProbe(node, None, cache_seconds=0.0)
        assert probe.readiness().ready
        node.store.engine.dispose()
        node.settings.home.rename(tmp_path / "moved")  # the SQLite file's folder is gone
        found = probe.readiness()
    finally:
        node.close()
    assert found.failing == ["database", "master_key"]
    assert found.checks[0] == Check("database", False, "OperationalError")


def test_the_schedule_must_run_when_links_are_due(tmp_path: Path) -> None:
    node = _node(tmp_path)
    alive = [True]
    try:
        probe = ReadinessProbe(node, lambda: alive[0], cache_seconds=0.0)
        assert probe.readiness().ready  # no link: nothing to schedule
        _link(node)
        assert probe.readiness().ready  # just added: the schedule has not had its chance yet
        from tzsb.store import links

        an_hour_ago = (node.clock.now() - timedelta(hours=1)).isoformat(timespec="seconds")
        with node.store.write() as connection:
            links.update(connection, "up", created_at=an_hour_ago)
        found = probe.readiness()
        assert found.failing == ["schedule"]
        assert found.checks[-1].reason == "links due but not run for over a minute: up"
        with node.store.write() as connection:
            links.update(connection, "up", last_attempt_at=node.clock.now().isoformat(timespec="seconds"))
        assert probe.readiness().ready
        alive[0] = False
        found = probe.readiness()
        assert (found.failing, found.checks[-1].reason) == (["schedule"], "the sync schedule's thread has stopped")
        # A process that runs no schedule does not judge it.
        assert ReadinessProbe(node, None, cache_seconds=0.0).readiness().ready
    finally:
        node.close()


def test_readiness_is_computed_at_most_once_a_second(tmp_path: Path) -> None:
    node = _node(tmp_path)
    now = [100.0]
    clock: Callable[[], float] = lambda: now[0]  # noqa: E731 - a settable clock
    try:
        probe = ReadinessProbe(node, None, clock=clock)
        first = probe.readiness()
        node.settings.master_key_path.unlink()
        now[0] += 0.5
        assert probe.readiness() is first
        now[0] += 0.6
        assert probe.readiness().failing == ["master_key"]
    finally:
        node.close()
