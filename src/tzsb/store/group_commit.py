"""Group commit: small writes of concurrent requests committed together in one transaction.

Every answered request writes a little — its claim and its interaction-log entry — and a query
writes nothing else. Each in a transaction of its own, they queue on the writers' lock (SQLite) or
on the log's chain head (PostgreSQL, where the lock is held through the commit's flush), one commit
at a time. Here the first request to arrive leads: it takes every unit of work queued so far, runs
them all in one transaction and commits once; the requests that queued meanwhile wait for that
commit, and the first of those still queued leads the next batch (while an event loop serves
requests, that loop leads it: below). No request returns before the transaction holding its work
has committed.

A request handler on the event loop's thread (``tzsb.inline``) never leads itself and never makes
the loop wait for the database. The first of them to queue a unit has the batch led at the loop's
next turn, so that the units of every handler that runs in this turn join it: committed right there
on the loop's thread when it can start at once (``Store.write_at_once``: the writers' lock free),
else by the committer thread, while the loop serves other requests. Led by the committer, the
batches of loop handlers cost three times the CPU (the committer and the loop handing the GIL to
each other at every call into SQLite: about 200 µs a query, against 60 for a batch of 8 alone);
on the loop a batch's commit holds up the loop's other requests for about as long as the committer
held the GIL for it anyway.

While a loop serves requests, the batches of other threads' units (a refusal's log row, the kept
answers dropped under an app's quota) are led on that loop too, and a batch led elsewhere hands the
next one back to it. Led in a thread, such a batch held the loop's units up for its GIL hand-offs
(and under steady load the lead then stayed off the loop: the queue never empties), which put a key
query's p99 under wrk at 30-45 ms while an app's oldest answers were dropped, against 6 ms.

A batch that fails (one request's random was claimed meanwhile, say) is rolled back and each of
its units run again in a transaction of its own, so that each request meets only its own failure.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import Connection

from tzsb import inline

Result = TypeVar("Result")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


#: Seconds a thread's unit waits for the loop to lead its batch before the committer takes the lead
#: over (a loop that stopped turning never runs it).
_LOOP_LEAD_PATIENCE = 1.0


@dataclass(slots=True)
class _Unit(Generic[Result]):
    work: Callable[[Connection], Result]
    #: Set when its batch is done, or when it is to lead: a thread's event, or the wake of a request
    #: handler on the event loop (``tzsb.inline``), which never leads (its thread must not block).
    done: threading.Event | inline.Wake
    #: Set when this unit is to lead the next batch instead of waiting for one.
    lead: bool = False
    result: Any = None
    error: BaseException | None = None
    #: Its transaction committed (``result`` is set) or it failed (``error`` is).
    finished: bool = False


class GroupCommit:
    """Runs units of work of concurrent callers in shared transactions (``write`` opens one)."""

    def __init__(
        self,
        write: Callable[[], AbstractContextManager[Connection]],
        max_batch: int = 64,
        write_at_once: Callable[[], AbstractContextManager[Connection | None]] | None = None,
    ) -> None:
        #: A context manager factory: one write transaction (``Store.write``).
        self._write = write
        #: One that never waits and gives None instead (``Store.write_at_once``): batches led on the loop.
        self._write_at_once = write_at_once
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Unit[Any]] = []
        self._leading = False
        #: The lead of the batch pending on a loop's next turn (``_lead_on_loop``), until it runs.
        self._loop_lead: object | None = None
        #: When ``_loop_lead`` was handed to its loop (``time.monotonic``).
        self._loop_lead_since = 0.0
        #: The event loop whose handlers queued units last: other threads' batches are led there.
        self._serving: asyncio.AbstractEventLoop | None = None
        #: Leads the batches of handlers on the event loop: they must not block its thread.
        self._committer = ThreadPoolExecutor(1, thread_name_prefix="tzsb-group-commit")
        #: Batches committed and units in them, since start (the bench and tests read them).
        self.batches = 0
        self.units = 0

    def run(self, work: Callable[[Connection], Result]) -> Result:
        """Run ``work`` on a write transaction's connection, with other callers' work, and return its
        result once that transaction committed (or raise what ``work`` raised on its own). On an
        event loop's thread only from a handler (``tzsb.inline.run_on_loop``): a plain call there
        would block the very loop that may be about to lead its batch."""
        on_loop = inline.on_loop()
        unit: _Unit[Result] = _Unit(work, inline.Wake() if on_loop else threading.Event())
        with self._lock:
            self._queue.append(unit)
            lead_now = not self._leading
            if lead_now:
                self._leading = True
        if isinstance(unit.done, threading.Event):
            if lead_now:
                serving = self._serving_loop()
                # Not on that loop's own thread (a plain call there, not a handler's): the loop cannot
                # turn before this returns.
                if serving is None or _running_loop() is serving:
                    unit.lead = True
                else:
                    self._lead_at_next_turn(serving)
            # A loop that stops turning (shut down, or between runs in a test) leaves its pending lead
            # unrun: the committer takes it over then.
            while not unit.lead and not unit.done.wait(_LOOP_LEAD_PATIENCE):
                self._take_over_stalled_loop_lead()
        else:
            if lead_now:
                self._lead_at_the_loops_next_turn()
            try:
                unit.done.wait()
            except BaseException:
                # The handler stopped waiting (cancelled; its loop may be stopping): a lead still
                # pending on that loop's next turn goes to the committer, or nobody would lead.
                self._take_over_loop_lead()
                raise
        if unit.lead:
            self._lead()
        if unit.error is not None:
            raise unit.error
        result: Result = unit.result
        return result

    def close(self) -> None:
        """Stop the committer thread once the batches handed to it are committed."""
        self._committer.shutdown(wait=True)

    def _lead(self) -> None:
        """Commit one batch (this caller's unit among it), then hand the lead to a unit still queued."""
        with self._lock:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
        try:
            self._commit(batch)
        finally:
            for unit in batch:
                if not unit.finished:  # the batch was interrupted before reaching it
                    unit.error = RuntimeError("the group commit holding this request's writes was interrupted")
            self._done(batch)

    def _done(self, batch: list[_Unit[Any]]) -> None:
        """Wake the batch's callers, and hand the lead to a unit still queued (or give it up)."""
        with self._lock:
            # Only a leader takes from the queue: the successor stays first in it until it leads.
            successor = self._queue[0] if self._queue else None
            if successor is None:
                self._leading = False
        wakes = []
        for unit in batch:
            if isinstance(unit.done, inline.Wake):
                wakes.append(unit.done)
            else:
                unit.done.set()
        inline.Wake.set_all(wakes)
        if successor is not None:
            self._hand_lead(successor)

    def _hand_lead(self, unit: _Unit[Any]) -> None:
        """Have the next batch (``unit`` first in it) led at the next turn of a running loop: the
        loop of ``unit``'s handler, or for another thread's unit the loop serving requests. With no
        such loop, a thread's unit leads it, and a handler's goes to the committer thread (the
        handler's thread must not block on the database)."""
        if isinstance(unit.done, inline.Wake):
            if self._can_lead_on(unit.done.loop):
                self._lead_at_next_turn(unit.done.loop)
            else:
                self._lead_in_committer()
            return
        serving = self._serving_loop()
        if serving is None:
            unit.lead = True
            unit.done.set()
        else:
            self._lead_at_next_turn(serving)

    def _can_lead_on(self, loop: asyncio.AbstractEventLoop) -> bool:
        return self._write_at_once is not None and loop.is_running()

    def _serving_loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop whose handlers queued units last, while it runs and batches can be led on it."""
        loop = self._serving
        if loop is None or not self._can_lead_on(loop):
            return None
        return loop

    def _lead_at_the_loops_next_turn(self) -> None:
        """On the loop (its handler queued the first unit): the batch is led once the handlers that
        are ready in this turn have run, and have queued their units too."""
        loop = asyncio.get_running_loop()
        self._serving = loop
        self._lead_at_next_turn(loop)

    def _lead_at_next_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        """Have the queued batch led at ``loop``'s next turn (from any thread), or by the committer
        when batches cannot be committed on a loop or ``loop`` turns no more."""
        if self._write_at_once is None:
            self._lead_in_committer()
            return
        token = object()
        with self._lock:
            self._loop_lead = token
            self._loop_lead_since = time.monotonic()
        # In a context of its own: the batch is every handler's, not the first one's.
        context = contextvars.Context()
        try:
            if _running_loop() is loop:
                loop.call_soon(self._lead_on_loop, token, context=context)
            else:
                loop.call_soon_threadsafe(self._lead_on_loop, token, context=context)
        except RuntimeError:  # (no loop turns any more)
            self._take_over_loop_lead()

    def _take_over_stalled_loop_lead(self) -> None:
        """Hand to the committer a lead pending on a loop's next turn for ``_LOOP_LEAD_PATIENCE`` (a
        loop that turns runs it within milliseconds); a thread waiting behind long batches leaves a
        fresh one alone."""
        with self._lock:
            if self._loop_lead is None or time.monotonic() - self._loop_lead_since < _LOOP_LEAD_PATIENCE:
                return
            self._loop_lead = None
        self._lead_in_committer()

    def _take_over_loop_lead(self) -> None:
        """Hand a lead still pending on the loop's next turn to the committer."""
        with self._lock:
            pending, self._loop_lead = self._loop_lead, None
        if pending is not None:
            self._lead_in_committer()

    def _lead_on_loop(self, token: object) -> None:
        """Commit the queued batch on the loop's thread if it can start at once; else hand it to the
        committer thread. A batch that fails goes to the committer too, where each of its units runs
        again alone (``_commit``) and meets only its own failure."""
        assert self._write_at_once is not None
        with self._lock:
            if self._loop_lead is not token:  # taken over meanwhile
                return
            self._loop_lead = None
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
        results: list[Any] | None = None
        try:
            with self._write_at_once() as connection:
                if connection is not None:
                    results = [unit.work(connection) for unit in batch]
        except Exception:
            results = None
        except BaseException:  # (interrupted: the batch is not lost for it)
            self._requeue_for_committer(batch)
            raise
        if results is None:
            self._requeue_for_committer(batch)
            return
        for unit, result in zip(batch, results, strict=True):
            unit.result, unit.finished = result, True
        self.batches += 1
        self.units += len(batch)
        self._done(batch)

    def _requeue_for_committer(self, batch: list[_Unit[Any]]) -> None:
        """Put a batch the loop did not commit back at the head of the queue, for the committer; once
        the committer is closed, its first handler leads it, in its own greenlet (never the loop's
        callback: there a lock would be waited for on the loop)."""
        with self._lock:
            self._queue[:0] = batch
        try:
            self._committer.submit(self._lead)
        except RuntimeError:
            first = batch[0]
            first.lead = True
            first.done.set()

    def _lead_in_committer(self) -> None:
        try:
            self._committer.submit(self._lead)
        except RuntimeError:  # closed: the store is being disposed of, and this thread leads, whichever it is
            self._lead()

    def _commit(self, batch: list[_Unit[Any]]) -> None:
        if len(batch) > 1:
            try:
                results = []
                with self._write() as connection:
                    for unit in batch:
                        results.append(unit.work(connection))
            except Exception:  # noqa: S110 - each unit runs again alone below and meets its own failure
                pass
            else:
                for unit, result in zip(batch, results, strict=True):
                    unit.result, unit.finished = result, True
                self.batches += 1
                self.units += len(batch)
                return
        for unit in batch:
            try:
                with self._write() as connection:
                    unit.result = unit.work(connection)
                self.batches += 1
                self.units += 1
            except BaseException as exc:  # handed to the unit's caller
                unit.error = exc
            unit.finished = True
