"""Requests per minute per app, counted in fixed one-minute windows of the node clock.

One server process counts in memory. Several worker processes (``tzsb serve --workers N``) count
in the database, so that an app gets its limit once, not once per worker.
"""

from __future__ import annotations

import threading

from tzsb.clock import Clock
from tzsb.store import Store, driver_sql


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
            open_window = (
                "INSERT OR IGNORE INTO rate_windows (appid, minute, count) VALUES (?, ?, 0)"
                if connection.dialect.name == "sqlite"
                else "INSERT INTO rate_windows (appid, minute, count) VALUES (?, ?, 0) ON CONFLICT DO NOTHING"
            )
            opened = connection.exec_driver_sql(driver_sql(connection, open_window), (appid, minute)).rowcount
            count_one = "UPDATE rate_windows SET count = count + 1 WHERE appid = ? AND minute = ? AND count < ?"
            counted = connection.exec_driver_sql(
                driver_sql(connection, count_one), (appid, minute, per_minute)
            ).rowcount
            if opened:  # the app's first request of a new minute: its older windows are done
                drop_older = "DELETE FROM rate_windows WHERE appid = ? AND minute < ?"
                connection.exec_driver_sql(driver_sql(connection, drop_older), (appid, minute))
        return counted == 1
