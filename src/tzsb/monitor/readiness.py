"""``/readyz`` (6.3.3): whether this node should be sent requests now.

``/healthz`` says the process answers (liveness); readiness checks what serving correctly needs:
the database answers, the master key is present, the rules are loaded and their test cases pass,
and the sync schedule runs when it should. The answer is computed at most once a second per
process: a load balancer probing often must not become load itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from tzsb.app import Node
from tzsb.sync import Link

#: How long a due link may wait for the schedule before readiness says the schedule is not running.
SCHEDULE_GRACE: Final = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    #: Why it failed (for listed networks only: it may name files and errors).
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Readiness:
    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failing(self) -> list[str]:
        return [check.name for check in self.checks if not check.ok]


class ReadinessProbe:
    """Runs the checks for one node; ``schedule_alive`` tells whether its schedule's thread runs
    (None: this process runs no schedule)."""

    def __init__(
        self,
        node: Node,
        schedule_alive: Callable[[], bool] | None,
        *,
        cache_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node = node
        self.schedule_alive = schedule_alive
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, Readiness] | None = None

    def readiness(self) -> Readiness:
        with self._lock:
            now = self.clock()
            if self._cached is not None and now - self._cached[0] < self.cache_seconds:
                return self._cached[1]
            database = self._database()
            # The schedule's state is in the database: without it there is nothing to judge.
            schedule = self._schedule() if database.ok else Check("schedule", True, "not checked: no database")
            found = Readiness((database, self._master_key(), self._rules(), schedule))
            self._cached = (now, found)
            return found

    def _database(self) -> Check:
        try:
            self.node.store.ping()
        except Exception as exc:
            return Check("database", False, type(exc).__name__)
        return Check("database", True)

    def _master_key(self) -> Check:
        settings = self.node.settings
        if settings.master_key or settings.master_key_path.is_file():
            return Check("master_key", True)
        return Check("master_key", False, f"{settings.master_key_path} is missing and TZSB_MASTER_KEY is not set")

    def _rules(self) -> Check:
        rules = self.node.rules
        current = rules.current()
        if rules.last_error:
            return Check("rules", False, f"rules.json rejected: {rules.last_error}")
        disabled = current.disabled
        if disabled:
            return Check("rules", False, "rule test cases fail for " + ", ".join(sorted(disabled)))
        return Check("rules", True)

    def _schedule(self) -> Check:
        links = [link for link in self.node.links.list() if link.enabled]
        if not links:
            return Check("schedule", True)
        if self.schedule_alive is None:
            return Check("schedule", True, "this process runs no schedule (sync_schedule = false)")
        if not self.schedule_alive():
            return Check("schedule", False, "the sync schedule's thread has stopped")
        now = self.node.clock.now()
        late = [link.name for link in links if now - _due_since(link) > SCHEDULE_GRACE]
        if late:
            return Check("schedule", False, "links due but not run for over a minute: " + ", ".join(late))
        return Check("schedule", True)


def _due_since(link: Link) -> datetime:
    """When ``link`` became due: the end of its wait after failures, its interval after its last
    attempt, or its creation if never attempted."""
    if link.wait_until is not None:
        return datetime.fromisoformat(link.wait_until)
    if link.last_attempt_at is None:
        return datetime.fromisoformat(link.created_at)
    return datetime.fromisoformat(link.last_attempt_at) + timedelta(seconds=link.every_seconds)
