"""Interaction log rows: written with the request's own transaction, or alone for a refusal."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tzsb.store import Connection, Store, interaction_log

_MAX_MESSAGE = 2000


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

    def row(self) -> dict[str, Any]:
        row = asdict(self)
        for name, limit in (
            ("appid", 64),
            ("busicode", 6),
            ("action", 2),
            ("random", 64),
            ("client_addr", 64),
            ("code", 16),
            ("message", _MAX_MESSAGE),
        ):
            row[name] = _clean(row[name], limit)
        return row


class InteractionLog:
    def __init__(self, store: Store) -> None:
        self.store = store

    @staticmethod
    def append(connection: Connection, entry: LogEntry) -> None:
        """Add the row inside a caller's transaction (it commits or rolls back with the request)."""
        interaction_log.append(connection, entry.row())

    def record(self, entry: LogEntry) -> None:
        """Add the row in a transaction of its own (for refused requests)."""
        with self.store.write() as connection:
            self.append(connection, entry)

    def recent(self, limit: int = 50, appid: str | None = None) -> list[dict[str, Any]]:
        with self.store.read() as connection:
            return interaction_log.recent(connection, limit, appid)

    def count(self) -> int:
        with self.store.read() as connection:
            return interaction_log.count(connection)
