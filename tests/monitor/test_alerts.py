"""Alerts: thresholds from the settings become firing and resolved events — a log row each, and a
JSON POST to a webhook receiver on loopback — once when they start and once when they end."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support import body, call, device, grant, log_rows
from tests.sync.nodes import make_home
from tzsb.app import Node, build_node
from tzsb.clock import FixedClock
from tzsb.monitor import AlertWatcher, evaluate
from tzsb.settings import load_settings
from tzsb.store import links
from tzsb.sync import LinkSpec


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts", received
    server.shutdown()
    server.server_close()


@pytest.fixture
def open_node(tmp_path: Path, clock: FixedClock) -> Iterator[Callable[..., Node]]:
    opened: list[Node] = []

    def factory(**settings: Any) -> Node:
        home = make_home(tmp_path, f"node{len(opened)}", "province", "330000", "")
        node = build_node(load_settings(home, environ={}, **settings), clock)
        opened.append(node)
        return node

    yield factory
    for node in opened:
        node.close()


def test_the_error_rate_fires_once_and_resolves_through_the_webhook(
    open_node: Callable[..., Node], clock: FixedClock, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook
    node = open_node(alert_error_rate=0.5, alert_window_seconds=300, alert_webhook=url, alert_overdue_reporters=False)
    secret = grant(node, appid="hz", region="330100")
    watcher = AlertWatcher(node)
    assert watcher.check() == []
    assert call(node, body("hz", secret, "140101", "01", [device(1)]))["datalist"]["result"] == "0001"
    for number in (2, 3):
        call(node, body("hz", secret, "140101", "01", [device(number, AREA_CODE="330205")]))  # E_REGION

    [(state, alert)] = watcher.check()
    assert (state, alert.name, alert.subject) == ("firing", "error_rate", "")
    assert "2 of 3 requests refused in the last 300 s (67%; threshold 50%)" in alert.message
    assert watcher.check() == []  # still holding: announced once
    clock.advance(timedelta(seconds=301))
    [(state, _)] = watcher.check()
    assert state == "resolved"

    assert [(event["alert"], event["state"]) for event in received] == [
        ("error_rate", "firing"),
        ("error_rate", "resolved"),
    ]
    assert received[0]["node"] == {"level": "province", "region": "330000"}
    rows = [row for row in log_rows(node) if row["direction"] == "sys"]
    assert [(row["appid"], row["code"], row["result"]) for row in rows] == [
        ("(alert)", "error_rate", "0000"), ("(alert)", "error_rate", "0001"),
    ]  # fmt: skip


def test_latency_overdue_reporters_and_failed_links_are_alerts(
    open_node: Callable[..., Node], clock: FixedClock
) -> None:
    node = open_node(alert_p99_ms=0.000001)
    secret = grant(node, appid="xihu", region="330106")
    assert call(node, body("xihu", secret, "140101", "04", [{"_region": "330106"}]))["datalist"]["result"] == "0001"
    assert {alert.name for alert in evaluate(node)} == {"p99_latency"}
    clock.advance(timedelta(days=2))  # the county's data is now overdue (5.4: daily)
    node.links.add(
        LinkSpec(
            name="up", url="http://127.0.0.1:9/x", appid="province-330000", secret="s", direction="up",
            businesses=("0101",),
        )
    )  # fmt: skip
    with node.store.write() as connection:
        links.update(connection, "up", state="failed", wait_until="2026-12-01T00:00:00+08:00", last_error="unreachable")
    found = {(alert.name, alert.subject): alert.message for alert in evaluate(node)}
    assert set(found) == {("overdue", "xihu"), ("link_failed", "up")}  # the latency window has passed
    # A query is no data delivered: the county never reported.
    assert (
        "xihu is overdue to report (last data never / 从未, due 2026-11-29T09:30:00+08:00)"
        in found[("overdue", "xihu")]
    )
    assert "sync link up failed, waiting until 2026-12-01T00:00:00+08:00: unreachable" in found[("link_failed", "up")]


def test_a_webhook_that_fails_does_not_stop_the_log(open_node: Callable[..., Node]) -> None:
    node = open_node(alert_p99_ms=0.000001, alert_webhook="http://127.0.0.1:9/nowhere")
    secret = grant(node, appid="xihu", region="330106")
    call(node, body("xihu", secret, "140101", "04", [{"_region": "330106"}]))
    [(state, alert)] = AlertWatcher(node).check()
    assert (state, alert.name) == ("firing", "p99_latency")
    assert [row["code"] for row in log_rows(node) if row["direction"] == "sys"] == ["p99_latency"]


def test_a_broken_chain_fires_and_resolves_once_the_log_is_restored(
    open_node: Callable[..., Node], webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook
    node = open_node(alert_webhook=url, alert_overdue_reporters=False)
    secret = grant(node, appid="hz", region="330100")
    watcher = AlertWatcher(node)
    for number in (1, 2, 3):
        assert call(node, body("hz", secret, "140101", "01", [device(number)]))["datalist"]["result"] == "0001"
    assert watcher.check() == []
    assert watcher.chain.check() is None  # verified up to the head: only new entries are read next time

    with node.store.write() as connection:
        original = connection.execute(sa.text("SELECT message FROM interaction_log WHERE chain_seq = 2")).scalar_one()
        connection.execute(sa.text("UPDATE interaction_log SET message = 'nothing to see' WHERE chain_seq = 2"))
    watcher.chain.full_every = 0  # an entry already verified was edited: found by the next full pass
    [(state, alert)] = watcher.check()
    assert (state, alert.name) == ("firing", "broken_chain")
    assert "entry 2 was edited" in alert.message and "run tzsb audit verify" in alert.message
    assert watcher.check() == []  # still broken: announced once

    with node.store.write() as connection:
        connection.execute(sa.text("UPDATE interaction_log SET message = :m WHERE chain_seq = 2"), {"m": original})
    [(state, _)] = watcher.check()
    assert state == "resolved"
    assert [(event["alert"], event["state"]) for event in received] == [
        ("broken_chain", "firing"),
        ("broken_chain", "resolved"),
    ]


def test_entries_added_after_a_check_that_break_the_chain_fire_at_the_next(open_node: Callable[..., Node]) -> None:
    node = open_node(alert_overdue_reporters=False)
    secret = grant(node, appid="hz", region="330100")
    watcher = AlertWatcher(node)
    assert call(node, body("hz", secret, "140101", "01", [device(1)]))["datalist"]["result"] == "0001"
    assert watcher.check() == []
    for number in (2, 3):
        assert call(node, body("hz", secret, "140101", "01", [device(number)]))["datalist"]["result"] == "0001"
    with node.store.write() as connection:
        connection.execute(sa.text("DELETE FROM interaction_log WHERE chain_seq = 2"))

    [(state, alert)] = watcher.check()  # an incremental pass: the entries after the last check
    assert (state, alert.name) == ("firing", "broken_chain")
    assert "entry 2 is missing (deleted)" in alert.message
