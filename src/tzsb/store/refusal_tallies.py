"""Refusals of unidentified callers, counted per client address and minute. Owns ``refusal_tallies``.

A caller that never proved who it is (no known app, no valid signature) gets no log row of its
own: its refusals are added up here, one row per address and minute, so that a stranger cannot
grow the database by sending junk.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tzsb.store.dialects import dialect_of
from tzsb.store.schema import refusal_tallies

#: The same text on both databases (SQLite 3.24+ and PostgreSQL 9.5+ share the upsert syntax).
_ADD = (
    "INSERT INTO refusal_tallies (client_addr, minute, count, last_code) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (client_addr, minute) DO UPDATE SET count = refusal_tallies.count + excluded.count, "
    "last_code = excluded.last_code"
)


@dataclass(frozen=True, slots=True)
class Tally:
    client_addr: str
    #: Minutes since the epoch.
    minute: int
    count: int
    last_code: str


def add(connection: Connection, tallies: Iterable[Tally]) -> None:
    """Add counts to the rows of their address and minute (several server processes add to one row)."""
    rows = [(t.client_addr, t.minute, t.count, t.last_code) for t in tallies]
    if rows:
        connection.exec_driver_sql(dialect_of(connection).driver_sql(_ADD), rows)


def listing(connection: Connection, since_minute: int = 0, limit: int = 100) -> list[Tally]:
    """The newest tallies, from ``since_minute`` on."""
    columns = refusal_tallies.c
    statement = (
        sa.select(columns.client_addr, columns.minute, columns.count, columns.last_code)
        .where(refusal_tallies.c.minute >= since_minute)
        .order_by(refusal_tallies.c.minute.desc(), refusal_tallies.c.count.desc())
        .limit(limit)
    )
    return [
        Tally(str(address), int(minute), int(count), str(code))
        for address, minute, count, code in connection.execute(statement)
    ]
