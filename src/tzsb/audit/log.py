"""Interaction log rows: written with the request's own transaction, or alone for a refusal."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tzsb.store import Store
from tzsb.store.schema import interaction_log

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


#: Built once: SQLAlchemy then reuses its compiled form instead of building a statement per request.
_INSERT: Final = sa.insert(interaction_log)


class InteractionLog:
    def __init__(self, store: Store) -> None:
        self.store = store

    @staticmethod
    def append(connection: Connection, entry: LogEntry) -> None:
        """Add the row inside a caller's transaction (it commits or rolls back with the request)."""
        connection.execute(_INSERT, entry.row())

    def record(self, entry: LogEntry) -> None:
        """Add the row in a transaction of its own (for refused requests)."""
        with self.store.write() as connection:
            self.append(connection, entry)

    def recent(self, limit: int = 50, appid: str | None = None) -> list[dict[str, Any]]:
        statement = sa.select(interaction_log).order_by(interaction_log.c.id.desc()).limit(limit)
        if appid is not None:
            statement = statement.where(interaction_log.c.appid == appid)
        with self.store.read() as connection:
            # Column names come back as SQLAlchemy's quoted_name; plain str keeps them JSON-serialisable.
            return [{str(name): value for name, value in row._mapping.items()} for row in connection.execute(statement)]

    def count(self) -> int:
        with self.store.read() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(interaction_log)).scalar_one())
