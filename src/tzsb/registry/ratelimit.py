"""Requests per minute per app, counted in fixed one-minute windows of the node clock."""

from __future__ import annotations

import threading

from tzsb.clock import Clock


class RateLimiter:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._window: dict[str, tuple[int, int]] = {}

    def allow(self, appid: str, per_minute: int) -> bool:
        """Count one request; False when the app is over its limit in the current minute."""
        if per_minute <= 0:
            return True
        minute = int(self.clock.now().timestamp() // 60)
        with self._lock:
            start, count = self._window.get(appid, (minute, 0))
            if start != minute:
                start, count = minute, 0
            if count >= per_minute:
                return False
            self._window[appid] = (start, count + 1)
            return True
