"""Requests per minute per app, counted in fixed one-minute windows of the node clock.

One server process counts in memory. Several worker processes (``tzsb serve --workers N``) count
in the database, so that an app gets its limit once, not once per worker.
"""

from __future__ import annotations

import threading

from tzsb.clock import Clock
from tzsb.store import Store


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
            return self._count_shared(appid, minute) <= per_minute
        with self._lock:
            start, count = self._window.get(appid, (minute, 0))
            if start != minute:
                start, count = minute, 0
            if count >= per_minute:
                return False
            self._window[appid] = (start, count + 1)
            return True

    def _count_shared(self, appid: str, minute: int) -> int:
        """This request's number within the minute, counted atomically across processes."""
        assert self._shared is not None
        with self._shared.write() as connection:
            marker = "?" if connection.dialect.name == "sqlite" else "%s"
            connection.exec_driver_sql(
                f"INSERT INTO rate_windows (appid, minute, count) VALUES ({marker}, {marker}, 1) "  # noqa: S608 - markers only
                "ON CONFLICT (appid, minute) DO UPDATE SET count = rate_windows.count + 1",
                (appid, minute),
            )
            count = int(
                connection.exec_driver_sql(
                    f"SELECT count FROM rate_windows WHERE appid = {marker} AND minute = {marker}",  # noqa: S608
                    (appid, minute),
                ).scalar_one()
            )
            if count == 1:  # the app's first request of a new minute: its older windows are done
                connection.exec_driver_sql(
                    f"DELETE FROM rate_windows WHERE appid = {marker} AND minute < {marker}",  # noqa: S608
                    (appid, minute),
                )
        return count
