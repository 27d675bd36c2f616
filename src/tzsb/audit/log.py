"""Interaction log rows: written with the request's own transaction, or alone for a refusal."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Final

from tzsb.store import Connection, EntryQuery, Store, interaction_log, log_chain

_MAX_MESSAGE = 2000
_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


def at_bound(value: object, end: bool) -> str | None:
    """A time given as ``YYYY-MM-DD`` or ``YYYY-MM-DD HH:MM:SS`` (Beijing time, as the log's ``at``)
    as an inclusive bound on ``at``: the start of it, or with ``end`` its last instant. None when
    ``value`` is neither."""
    if isinstance(value, str):
        if _DATETIME.fullmatch(value):
            return value.replace(" ", "T") + (".999999" if end else "")
        if _DATE.fullmatch(value):
            return value + ("T23:59:59.999999" if end else "T00:00:00")
    return None


def _clean(value: str, limit: int) -> str:
    """Text as a log column can hold it: NUL bytes dropped (PostgreSQL refuses them), length capped."""
    return value.replace("\x00", "")[:limit]


@dataclass(frozen=True, slots=True)
class LogEntry:
    at: str
    appid: str
    busicode: str
    action: str
    random: str
    client_addr: str
    record_count: int
    result: str
    code: str
    message: str
    duration_ms: float
    #: "in": a request this node answered; "out": a batch this node sent over a sync link.
    direction: str = "in"
    #: The region of the app the entry is about ("" for a caller never identified).
    region: str = ""
    #: Shared by the legs of one routed request (the requester's and the provider's); "" otherwise.
    correlation: str = ""

    def row(self) -> dict[str, Any]:
        """The entry as a row of the log: every column but ``id`` and the chain's."""
        return dict(zip(log_chain.ENTRY_COLUMNS, self.values(), strict=True))

    def values(self) -> tuple[Any, ...]:
        """The entry's ``ENTRY_COLUMNS``, as ``interaction_log.append_all`` takes them: text as a log
        column can hold it, the count an integer, the duration a float (what the digest covers).
        Field by field: every request builds one (``dataclasses.asdict`` cost a tenth of a query)."""
        return (
            self.at,
            _clean(self.appid, 64),
            _clean(self.busicode, 6),
            _clean(self.action, 2),
            _clean(self.random, 64),
            _clean(self.client_addr, 64),
            int(self.record_count),
            self.result,
            _clean(self.code, 16),
            _clean(self.message, _MAX_MESSAGE),
            float(self.duration_ms),
            self.direction,
            _clean(self.region, 6),
            _clean(self.correlation, 64),
        )


#: Set to 1 in the environment of ``tzsb serve``: requests are answered without writing their log
#: entries. Only for ``bench/audit_cost.py``, which measures what the log costs; the spec (6.1 e)
#: requires every interaction to be logged, and the server warns loudly when it is set.
WITHOUT_LOG_VARIABLE: Final = "TZSB_BENCH_WITHOUT_LOG"


class InteractionLog:
    def __init__(self, store: Store, *, writes: bool = True) -> None:
        self.store = store
        #: False only for measuring the log's cost (``WITHOUT_LOG_VARIABLE``).
        self.writes = writes

    def append(self, connection: Connection, entry: LogEntry) -> None:
        """Add the row inside a caller's transaction (it commits or rolls back with the request)."""
        if self.writes:
            interaction_log.append_all(connection, [entry.values()])

    def record(self, entry: LogEntry) -> None:
        """Add the row outside any caller's transaction (for refused requests): committed with the
        entries of concurrent requests (group commit) before this returns."""
        self.store.write_grouped(lambda connection: self.append(connection, entry))

    def recent(self, limit: int = 50, appid: str | None = None, correlation: str | None = None) -> list[dict[str, Any]]:
        with self.store.read() as connection:
            return interaction_log.recent(connection, limit, appid, correlation)

    def entries(self, query: EntryQuery) -> list[dict[str, Any]]:
        with self.store.read() as connection:
            return interaction_log.select_entries(connection, query)

    def walk(self, query: EntryQuery, page: int = 1000) -> Iterator[dict[str, Any]]:
        """Every entry ``query`` matches, oldest first, a page at a time (never the whole log at once)."""
        after = query.after_id
        while True:
            rows = self.entries(replace(query, oldest_first=True, after_id=after, before_id=None, limit=page))
            yield from rows
            if len(rows) < page:
                return
            after = int(rows[-1]["id"])

    def count(self) -> int:
        with self.store.read() as connection:
            return interaction_log.count(connection)
