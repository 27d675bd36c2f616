"""The answers kept for retries, held within bounds.

Every claimed ``random`` keeps its first answer, so that a retry of the same request gets it back.
Kept for ever, those answers were unbounded: twenty 1,000-record query pages kept 26 MB. Now an
answer expires after ``answer_ttl`` (the claim stays: the random remains spent, and a replay gets
``E_REPLAY``), and each app's kept answers are held under ``quota_bytes`` (its oldest dropped).
Checked after requests, at most every ``every_seconds``; an app that claims a tenth of its quota
in between is held to it at once.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import defaultdict
from datetime import timedelta
from typing import Final

from tzsb import inline
from tzsb.clock import Clock
from tzsb.store import Store, nonces

#: Answers dropped a unit of the group commit: about 2 ms of a batch's transaction, so that the
#: answered queries queued behind it wait no longer than that.
DROP_CHUNK: Final = 256
#: Expired answers read at a time (after a node was down for a day, there may be hundreds of thousands).
EXPIRED_READ: Final = 40 * DROP_CHUNK


class ReplayBounds:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        answer_ttl: timedelta = timedelta(hours=24),
        quota_bytes: int = 64 * 1024 * 1024,
        every_seconds: float = 60.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.answer_ttl = answer_ttl
        self.quota_bytes = quota_bytes
        self.every_seconds = every_seconds
        self._lock = threading.Lock()
        #: Bytes of answers each app claimed since its quota was last checked.
        self._claimed: defaultdict[str, int] = defaultdict(int)
        self._last_run = time.monotonic()

    def claimed(self, appid: str, size: int) -> None:
        """Note an answer kept for ``appid``; holds the app to its quota at once past a tenth of it."""
        with self._lock:
            self._claimed[appid] += size
            due = self._claimed[appid] >= self.quota_bytes // 10
            if due:
                del self._claimed[appid]
        if due:
            # It reads and rewrites the app's kept answers: a handler on the loop has it done in a thread.
            inline.in_thread(self.hold_quota, appid)

    def hold_quota(self, appid: str) -> int:
        """Drop ``appid``'s oldest kept answers until the rest fit in its quota; returns how many.

        What to drop is worked out in a read transaction, and dropped ``DROP_CHUNK`` answers at a
        time, each chunk a unit of the group commit like a request's claim. Done in one write
        transaction, it held every other writer up, the group commit of answered queries included:
        under wrk a key query's p99 rose from 6 ms to 100 ms as the kept answers grew (checked every
        6.4 MB of answers); with the chunks, led on the loop that serves requests, it stays near 10 ms."""
        with self.store.snapshot() as connection:
            randoms = nonces.over_quota(connection, appid, self.quota_bytes)
        return self._drop(appid, randoms)

    def _drop(self, appid: str, randoms: list[str]) -> int:
        """Drop the answers of ``appid``'s claims of ``randoms``, ``DROP_CHUNK`` a group-commit unit."""
        dropped = 0
        for start in range(0, len(randoms), DROP_CHUNK):
            dropped += self.store.write_grouped(
                functools.partial(nonces.drop_answers, appid=appid, randoms=randoms[start : start + DROP_CHUNK])
            )
        return dropped

    def tick(self) -> None:
        """Expire old answers and hold the apps that claimed since the last run to their quota,
        when ``every_seconds`` have passed."""
        with self._lock:
            if time.monotonic() - self._last_run < self.every_seconds:
                return
            self._last_run = time.monotonic()
            apps = list(self._claimed)
            self._claimed.clear()
        inline.in_thread(self.run, apps)

    def run(self, apps: list[str] | None = None) -> int:
        """Expire answers older than the TTL, then hold ``apps`` to the quota; returns answers dropped.
        Both are worked out in read transactions and dropped ``DROP_CHUNK`` a unit of the group
        commit, so that no writer waits long for its turn."""
        before = self.clock.now() - self.answer_ttl
        dropped = 0
        while True:
            with self.store.snapshot() as connection:
                expired = nonces.expired_answers(connection, before, EXPIRED_READ)
            by_app: defaultdict[str, list[str]] = defaultdict(list)
            for appid, random in expired:
                by_app[appid].append(random)
            dropped_now = sum(self._drop(appid, randoms) for appid, randoms in by_app.items())
            dropped += dropped_now
            # (None dropped of a full read: another process drops them meanwhile; it finishes.)
            if len(expired) < EXPIRED_READ or not dropped_now:
                break
        for appid in apps or ():
            dropped += self.hold_quota(appid)
        return dropped
