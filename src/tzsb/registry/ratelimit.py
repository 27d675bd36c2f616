"""Requests per minute per app, counted in fixed one-minute windows of the node clock.

One server process counts in memory. Several worker processes (``tzsb serve --workers N``) count
in the database, so that an app gets its limit once, not once per worker.
"""

from __future__ import annotations

import threading

from tzsb.clock import Clock
from tzsb.store import Store, rate_windows


class RateLimiter:
    def __init__(self, clock: Clock, shared: Store | None = None) -> None:
        self.clock = clock
        self._shared = shared
        self._lock = threading.Lock()
        self._window: dict[str, tuple[int, int]] = {}

    def allow(self, appid: str, per_minute: int) -> bool:
        """Count one request; False when the app is over its limit in the current minute."""
        if per_minute <= 0:
            return True
        minute = int(self.clock.now().timestamp() // 60)
        if self._shared is not None:
            return self._allow_shared(appid, minute, per_minute)
        with self._lock:
            start, count = self._window.get(appid, (minute, 0))
            if start != minute:
                start, count = minute, 0
            if count >= per_minute:
                return False
            self._window[appid] = (start, count + 1)
            return True

    def _allow_shared(self, appid: str, minute: int, per_minute: int) -> bool:
        """Count this request across processes, atomically; a refused request changes nothing."""
        assert self._shared is not None
        with self._shared.write() as connection:
            return rate_windows.count_request(connection, appid, minute, per_minute)
