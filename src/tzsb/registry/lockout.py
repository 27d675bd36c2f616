"""Failed authentication (spec 7.4): after three failed signature checks for one app from one
address within a window, that pair is refused for a cool-down (24 h by default, as the spec asks
for re-verification after 24 h). Other addresses of the same app are not affected.

An app can also be locked as a whole, from every address (``lock_app``): its row's address is
``*``. Adds that keep naming keys held by records the app may not access lead there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from tzsb.clock import Clock
from tzsb.errors import StoreConflict
from tzsb.store import Store, lockouts

#: The address of an app-wide lock's row.
EVERY_ADDRESS: Final = "*"


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    attempts: int = 3
    window: timedelta = timedelta(hours=1)
    cooldown: timedelta = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class PairLocks:
    """What admission asks of a caller: the end of its app's app-wide lock, whether its (app, address)
    pair has failures recorded, and the end of that pair's lock (ends only while locked)."""

    app_locked_until: datetime | None
    has_failures: bool
    locked_until: datetime | None


class Lockouts:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        policy: LockoutPolicy | None = None,
        refresh_seconds: float = 5.0,
        *,
        shared: bool = False,
    ) -> None:
        self.store = store
        self.clock = clock
        self.policy = policy or LockoutPolicy()
        # Pairs with recorded failures, re-read every refresh_seconds: a request from any other pair
        # (nearly all of them) needs no database read to know it is not locked.
        self.refresh_seconds = refresh_seconds
        # Several server processes record failures: a lock another process set must hold at once,
        # so every request reads its pair's row instead of trusting this process's list.
        self.shared = shared
        self._suspects: set[tuple[str, str]] = set()
        self._suspects_read = -float("inf")

    def _refresh_if_due(self) -> None:
        """Every ``refresh_seconds``: drop pairs whose failures and lock are over, and re-read the rest."""
        if time.monotonic() - self._suspects_read >= self.refresh_seconds:
            self._prune()
            with self.store.read() as connection:
                self._suspects = lockouts.pairs(connection)
            self._suspects_read = time.monotonic()

    def _is_suspect(self, appid: str, client_addr: str) -> bool:
        self._refresh_if_due()
        return self.shared or (appid, client_addr) in self._suspects

    def app_locked_until(self, appid: str) -> datetime | None:
        """The end of an app-wide lock (``lock_app``) if the app is locked now."""
        if not self._is_suspect(appid, EVERY_ADDRESS):
            return None
        with self.store.read() as connection:
            row = lockouts.find(connection, appid, EVERY_ADDRESS)
        return self._until(row)

    def lock_app(self, appid: str, reason_count: int) -> datetime:
        """Lock the app from every address for the cool-down; returns the lock's end.
        ``reason_count``: how many offences led to it (shown to the operator as its failures)."""
        now = self.clock.now()
        until = now + self.policy.cooldown
        counted = lockouts.Failures(
            appid=appid,
            client_addr=EVERY_ADDRESS,
            failures=reason_count,
            first_failed_at=now.isoformat(),
            last_failed_at=now.isoformat(),
            locked_until=until.isoformat(),
        )
        with self.store.write() as connection:
            row = lockouts.lock_pair(connection, appid, EVERY_ADDRESS)
            lockouts.save(connection, counted, new=row is None)
        self._suspects.add((appid, EVERY_ADDRESS))
        return until

    def locks(self, appid: str, client_addr: str) -> PairLocks:
        """Whether ``appid`` is locked as a whole, and the pair's ``status``, as every request asks.
        With several server processes both rows are read in one statement (a read each, in a
        transaction each, cost a PostgreSQL node about eight round trips per request)."""
        if not self.shared:
            return PairLocks(self.app_locked_until(appid), *self.status(appid, client_addr))
        self._refresh_if_due()  # (pruning: the rows of pairs whose failures are over go)
        with self.store.read_statement() as connection:
            found = lockouts.find_both(connection, appid, EVERY_ADDRESS, client_addr)
        pair = found.get(client_addr) if client_addr != EVERY_ADDRESS else None
        return PairLocks(self._until(found.get(EVERY_ADDRESS)), pair is not None, self._until(pair))

    def _until(self, row: lockouts.Failures | None) -> datetime | None:
        """The end of ``row``'s lock, if there is a row and it is locked now."""
        if row is None or row.locked_until is None:
            return None
        moment = datetime.fromisoformat(row.locked_until)
        return moment if moment > self.clock.now() else None

    def status(self, appid: str, client_addr: str) -> tuple[bool, datetime | None]:
        """Whether the pair has recorded failures, and when its lock ends if it is locked now."""
        if not self._is_suspect(appid, client_addr):
            return False, None
        with self.store.read() as connection:
            row = lockouts.find(connection, appid, client_addr)
        return row is not None, self._until(row)

    def record_failure(self, appid: str, client_addr: str) -> datetime | None:
        """Count a failed check; returns the lock's end when this failure locks the pair."""
        try:
            return self._record_failure(appid, client_addr)
        except StoreConflict:
            # Two first failures of a pair raced to insert its row; the row exists now, count again.
            return self._record_failure(appid, client_addr)

    def _record_failure(self, appid: str, client_addr: str) -> datetime | None:
        now = self.clock.now()
        with self.store.write() as connection:
            row = lockouts.lock_pair(connection, appid, client_addr)
            if row is None or datetime.fromisoformat(row.first_failed_at) < now - self.policy.window:
                failures, first = 1, now
            else:
                failures, first = row.failures + 1, datetime.fromisoformat(row.first_failed_at)
            locked = now + self.policy.cooldown if failures >= self.policy.attempts else None
            counted = lockouts.Failures(
                appid=appid,
                client_addr=client_addr,
                failures=failures,
                first_failed_at=first.isoformat(),
                last_failed_at=now.isoformat(),
                locked_until=locked.isoformat() if locked else None,
            )
            self._suspects.add((appid, client_addr))
            lockouts.save(connection, counted, new=row is None)
        return locked

    def _prune(self) -> None:
        """Drop pairs whose failures are older than the window and whose lock (if any) has ended."""
        now = self.clock.now()
        stale = (now - self.policy.window).isoformat()
        with self.store.write() as connection:
            lockouts.prune(connection, stale, now.isoformat())

    def clear(self, appid: str, client_addr: str | None = None) -> int:
        """Forget failures (after a success, or an operator's unlock); returns rows removed."""
        self._suspects = {pair for pair in self._suspects if pair[0] != appid or client_addr not in (None, pair[1])}
        with self.store.write() as connection:
            return lockouts.clear(connection, appid, client_addr)

    def has_failures(self, appid: str, client_addr: str) -> bool:
        with self.store.read() as connection:
            return lockouts.has_failures(connection, appid, client_addr)

    def listing(self) -> list[dict[str, Any]]:
        """Every pair with failures, locked ones first: what the operator sees."""
        with self.store.read() as connection:
            rows = lockouts.listing(connection)
        now = self.clock.now()
        return [
            {
                "appid": row.appid,
                "client_addr": row.client_addr,
                "failures": row.failures,
                "last_failed_at": row.last_failed_at,
                "locked_until": row.locked_until,
                "locked": row.locked_until is not None and datetime.fromisoformat(row.locked_until) > now,
            }
            for row in rows
        ]
