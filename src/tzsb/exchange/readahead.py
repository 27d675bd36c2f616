"""Read-ahead for paged queries: the next page is read while the caller handles this one.

A caller paging through a region or a change feed asks for page n + 1 as soon as page n arrives.
While the node masks, signs, logs and sends page n, and while the caller parses it, a background
thread already reads page n + 1 (SQLite and PostgreSQL do that work without holding the GIL).

A page read ahead is served only if no record changed since it was read: every change to
``records`` moves the change counter in the same transaction, so the read-ahead notes the counter
in the snapshot it reads from, and the request compares it with the counter now. Equal means the
page is exactly what reading it now would give; otherwise the page is read again. Pages are kept
per app and per exact query (the app's scope is part of the query), at most ``capacity`` of them.

A page is read ahead only while the node has a core to spare: while fewer requests are being
answered (``answering``) than it has cores (at least two: on one core the reading still fills the
time the caller spends on its page). Under more load the reading would only take a core from
requests, and the rows it reads hand the GIL back and forth with the requests' thread (the driver
releases it for each row): on two cores and four callers paging side by side, 20–23 context
switches a page of 100 in the read-ahead thread, 1.4–1.7 ms of kernel time a page against 0.7–0.8
without read-ahead, and 3.9–5.2 ms of CPU a page against 2.9–3.2.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import fields

from tzsb import inline
from tzsb.store import RecordQuery, Store, StoredRecord, records_read

logger = logging.getLogger(__name__)

_Page = tuple[int, list[StoredRecord]]


def _key(owner: str, query: RecordQuery, raw: bool, masked_plan: str | None) -> tuple[Hashable, ...]:
    values = (getattr(query, item.name) for item in fields(query))
    # The field conditions are a mapping; everything else in a query is hashable as it is.
    return (
        owner,
        raw,
        masked_plan,
        *(tuple(sorted(value.items())) if isinstance(value, Mapping) else value for value in values),
    )


def _cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class ReadAhead:
    def __init__(self, store: Store, capacity: int = 16, wait_seconds: float = 30.0, cores: int | None = None) -> None:
        self._store = store
        self._capacity = capacity
        #: Requests being answered from which on no page is read ahead (see the module's text).
        self._busy_from = max(2, _cores() if cores is None else cores)
        self._answering = 0
        self._answering_lock = threading.Lock()
        self._wait_seconds = wait_seconds
        self._pages: OrderedDict[tuple[Hashable, ...], Future[_Page]] = OrderedDict()
        self._lock = threading.Lock()
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tzsb-read-ahead")

    def page(self, owner: str, query: RecordQuery, *, raw: bool, masked_plan: str | None = None) -> list[StoredRecord]:
        """The rows of ``query`` (read as ``records_read.select_records`` reads them with ``raw`` and
        ``masked_plan``): the page read ahead for ``owner`` if nothing changed since, else read now."""
        ahead = None
        if self._pages:  # (read unlocked: a page being added now is not this request's to take)
            with self._lock:
                ahead = self._pages.pop(_key(owner, query, raw, masked_plan), None)
        read_ahead: _Page | None = None
        # A page still queued behind other apps' read-aheads is read here and now instead: waiting
        # for it would make this caller's request depend on other callers' queries.
        if ahead is not None and ahead.cancel():
            ahead = None
        if ahead is not None:
            try:
                read_ahead = inline.future_result(ahead, self._wait_seconds)
            except FutureTimeout:
                ahead.cancel()
            except Exception:
                logger.warning("a read-ahead page failed; reading it again", exc_info=True)
        if read_ahead is None and records_read.one_statement(query):
            with self._store.read_statement() as connection:
                return records_read.select_records(connection, query, raw=raw, masked_plan=masked_plan)
        with self._store.snapshot() as connection:
            if read_ahead is not None and read_ahead[0] == records_read.last_change(connection):
                return read_ahead[1]
            return records_read.select_records(connection, query, raw=raw, masked_plan=masked_plan)

    def answering(self) -> AbstractContextManager[None]:
        """Count a request as being answered while in the block (``prepare`` reads ahead only while
        fewer are than the node has cores); nothing to count with read-ahead off."""
        return self._counted() if self._capacity > 0 else nullcontext()

    @contextmanager
    def _counted(self) -> Iterator[None]:
        with self._answering_lock:
            self._answering += 1
        try:
            yield
        finally:
            with self._answering_lock:
                self._answering -= 1

    def prepare(self, owner: str, query: RecordQuery, *, raw: bool, masked_plan: str | None = None) -> None:
        """Start reading ``query`` for ``owner`` in the background (the page it will likely ask for
        next), unless the node is busy: as many requests being answered as it has cores."""
        if self._capacity <= 0 or self._answering >= self._busy_from:
            return
        key = _key(owner, query, raw, masked_plan)
        with self._lock:
            if self._closed or key in self._pages:
                return
            self._pages[key] = self._executor.submit(self._read, query, raw, masked_plan)
            while len(self._pages) > self._capacity:
                _, oldest = self._pages.popitem(last=False)
                oldest.cancel()

    def pending(self) -> int:
        """Pages read ahead (or being read) and not yet asked for."""
        with self._lock:
            return len(self._pages)

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until every page being read ahead has been read."""
        with self._lock:
            running = list(self._pages.values())
        wait(running, timeout=timeout)

    def _read(self, query: RecordQuery, raw: bool, masked_plan: str | None) -> _Page:
        with self._store.snapshot() as connection:
            seq = records_read.last_change(connection)
            return seq, records_read.select_records(connection, query, raw=raw, masked_plan=masked_plan)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for pending in self._pages.values():
                pending.cancel()
            self._pages.clear()
        self._executor.shutdown(wait=True)
