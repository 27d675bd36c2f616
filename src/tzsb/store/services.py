"""Providers as stored: which business types and actions another node serves, where, and as whom
this node asks it (the ``registry`` seals and opens the secrets); the circuit breaker's last state.

Owns the ``services`` table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tzsb.store.schema import services


@dataclass(frozen=True, slots=True)
class StoredService:
    """One row of ``services``."""

    name: str
    businesses: list[str]
    actions: list[str]
    url: str
    appid: str
    secret_enc: bytes
    sign_algorithm: str
    upstream_purpose: str | None
    timeout_seconds: float
    enabled: bool
    breaker_state: str
    breaker_changed_at: str | None
    last_error: str | None
    created_at: str
    updated_at: str


def _stored(row: Any) -> StoredService:
    values = dict(row._mapping)
    values["businesses"] = list(values["businesses"])
    values["actions"] = list(values["actions"])
    return StoredService(**values)


def exists(connection: Connection, name: str) -> bool:
    return connection.execute(sa.select(services.c.name).where(services.c.name == name)).first() is not None


def add(connection: Connection, service: StoredService) -> None:
    connection.execute(sa.insert(services).values(**asdict(service)))


def find(connection: Connection, name: str) -> StoredService | None:
    row = connection.execute(sa.select(services).where(services.c.name == name)).first()
    return None if row is None else _stored(row)


def listing(connection: Connection) -> list[StoredService]:
    return [_stored(row) for row in connection.execute(sa.select(services).order_by(services.c.name))]


def update(connection: Connection, name: str, **values: Any) -> bool:
    """Change columns of one service; False when there is none of that name."""
    result = connection.execute(sa.update(services).where(services.c.name == name).values(**values))
    return bool(result.rowcount)


def remove(connection: Connection, name: str) -> bool:
    return bool(connection.execute(sa.delete(services).where(services.c.name == name)).rowcount)
