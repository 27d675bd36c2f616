"""Alerts (6.3.3): thresholds from ``tzsb.toml`` turned into events in the log and, when a webhook is
configured, JSON POSTs to it.

Judged each ``alert_check_seconds``: the share of refused requests and the 99th percentile of
request durations over the last ``alert_window_seconds``, each app overdue to report (5.4), each
sync link marked failed (7.4), the interaction log's hash chain broken. An alert is announced
when it starts (``firing``) and when it ends (``resolved``), not on every check. With
several processes a lease lets one of them judge.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

import httpx
import orjson

from tzsb.app import Node
from tzsb.audit import ChainWatch, InteractionLog, LogEntry
from tzsb.monitor.reporting import reporters
from tzsb.store import interaction_log, leases

logger = logging.getLogger(__name__)
LEASE: Final = "monitor/alerts"


@dataclass(frozen=True, slots=True)
class Alert:
    #: ``error_rate``, ``p99_latency``, ``overdue``, ``link_failed``, ``broken_chain``.
    name: str
    #: What it is about: an app, a link, or "" for the node.
    subject: str
    message: str


def evaluate(node: Node, chain: ChainWatch | None = None) -> list[Alert]:
    """The alerts that hold now (the chain's with ``chain``, which remembers how far it verified)."""
    settings = node.settings
    found: list[Alert] = []
    now = node.clock.now()
    if settings.alert_error_rate > 0 or settings.alert_p99_ms > 0:
        since = (now - timedelta(seconds=settings.alert_window_seconds)).isoformat(timespec="milliseconds")
        with node.store.read() as connection:
            total, refused, p99 = interaction_log.window_stats(connection, since)
        window = f"{settings.alert_window_seconds} s"
        if settings.alert_error_rate > 0 and total and refused / total >= settings.alert_error_rate:
            found.append(Alert(
                "error_rate", "",
                f"最近 {window} 内 {refused}/{total} 个请求被拒绝（{refused / total:.0%}，"
                f"阈值 {settings.alert_error_rate:.0%}） / {refused} of {total} requests refused in the last "
                f"{window} ({refused / total:.0%}; threshold {settings.alert_error_rate:.0%})",
            ))  # fmt: skip
        if settings.alert_p99_ms > 0 and p99 is not None and p99 > settings.alert_p99_ms:
            found.append(Alert(
                "p99_latency", "",
                f"最近 {window} 请求耗时的 99 分位为 {p99:.0f} ms（阈值 {settings.alert_p99_ms:.0f} ms） / the 99th "
                f"percentile of request durations in the last {window} is {p99:.0f} ms (threshold "
                f"{settings.alert_p99_ms:.0f} ms)",
            ))  # fmt: skip
    if settings.alert_overdue_reporters:
        for item in reporters(node):
            if item.overdue:
                last = item.last_data or "never / 从未"
                found.append(Alert(
                    "overdue", item.appid,
                    f"{item.appid} 逾期未报送数据（最近 {last}，应于 {item.due_at} 前） / {item.appid} is overdue to "
                    f"report (last data {last}, due {item.due_at})",
                ))  # fmt: skip
    if settings.alert_failed_links:
        for status in node.sync.status():
            if status.link.state == "failed":
                found.append(Alert(
                    "link_failed", status.link.name,
                    f"同步链路 {status.link.name} 失败，等待至 {status.link.wait_until}："
                    f"{status.link.last_error}"
                    f" / sync link {status.link.name} failed, waiting until {status.link.wait_until}: "
                    f"{status.link.last_error}",
                ))  # fmt: skip
    if settings.alert_broken_chain and chain is not None:
        problem = chain.check()
        if problem is not None:
            found.append(Alert(
                "broken_chain", "",
                f"交互日志哈希链不成立 / the interaction log's hash chain is broken ({problem.kind}, entry "
                f"{problem.seq}): {problem.message}; 请运行 / run tzsb audit verify",
            ))  # fmt: skip
    return found


Post = Callable[[str, bytes], None]


def _post(url: str, payload: bytes) -> None:
    httpx.post(url, content=payload, headers={"content-type": "application/json"}, timeout=10).raise_for_status()


class AlertWatcher:
    """Announces alerts as they start and end: a log row each, and the webhook when configured."""

    def __init__(self, node: Node, post: Post = _post) -> None:
        self.node = node
        self.post = post
        self.firing: dict[tuple[str, str], Alert] = {}
        self.chain = ChainWatch(node.store)

    def check(self) -> list[tuple[str, Alert]]:
        """Evaluate now; returns the events announced (``firing`` or ``resolved``)."""
        holding = {(alert.name, alert.subject): alert for alert in evaluate(self.node, self.chain)}
        events = [("firing", alert) for key, alert in holding.items() if key not in self.firing]
        events += [("resolved", alert) for key, alert in self.firing.items() if key not in holding]
        self.firing = holding
        for state, alert in events:
            self._announce(state, alert)
        return events

    def _announce(self, state: str, alert: Alert) -> None:
        node = self.node
        at = node.clock.now().isoformat(timespec="milliseconds")
        InteractionLog(node.store).record(
            LogEntry(
                at=at, appid="(alert)", busicode="", action="", random="", client_addr="(node)", record_count=0,
                result="0000" if state == "firing" else "0001", code=alert.name,
                message=f"{state}: {alert.message}", duration_ms=0.0, direction="sys", region=node.settings.region,
            )
        )  # fmt: skip
        if not node.settings.alert_webhook:
            return
        payload = orjson.dumps({
            "alert": alert.name, "subject": alert.subject, "state": state, "message": alert.message, "at": at,
            "node": {"level": node.settings.level, "region": node.settings.region},
        })  # fmt: skip
        try:
            self.post(node.settings.alert_webhook, payload)
        except Exception as exc:
            logger.warning("the alert webhook refused %s %s: %s", state, alert.name, exc)


class AlertLoop:
    """``AlertWatcher.check`` every ``alert_check_seconds`` in a thread of ``tzsb serve``; a lease
    lets one process of several judge."""

    def __init__(self, watcher: AlertWatcher, every: float) -> None:
        self.watcher = watcher
        self.every = every
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tzsb-alerts", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        store = self.watcher.node.store
        while not self._stop.wait(self.every):
            try:
                with store.write() as connection:
                    mine = leases.take(connection, LEASE, self.holder, time.time(), self.every * 3)
                if mine:
                    self.watcher.check()
            except Exception:
                logger.exception("evaluating the alerts failed; trying again in %.0f s", self.every)
