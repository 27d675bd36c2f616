"""Adds that named a key held by a record the caller may not access. Owns ``key_collisions``.

Such an add is refused without saying which keys collided (that would tell a prober which ID
numbers exist elsewhere); the operator reads them here, and the count drives a lock-out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tzsb.store.schema import key_collisions


@dataclass(frozen=True, slots=True)
class Collision:
    """One key of one refused add: who sent it, and where the record that holds it lives."""

    at: str
    appid: str
    client_addr: str
    business: str
    record_key: str
    held_region: str
    held_source: str
    #: Counts toward the app's lock-out (the key is a sensitive value).
    counts: bool = True
    acknowledged: bool = False


def add(connection: Connection, collisions: Sequence[Collision]) -> None:
    if collisions:
        connection.execute(sa.insert(key_collisions), [asdict(collision) for collision in collisions])


def count_since(connection: Connection, appid: str, since: str) -> int:
    """How many counting, unacknowledged keys ``appid``'s adds collided on since ``since`` (ISO 8601)."""
    statement = (
        sa.select(sa.func.count())
        .select_from(key_collisions)
        .where(
            key_collisions.c.appid == appid,
            key_collisions.c.at >= since,
            key_collisions.c.counts.is_(True),
            key_collisions.c.acknowledged.is_(False),
        )
    )
    return int(connection.execute(statement).scalar_one())


def acknowledge(connection: Connection, appid: str) -> int:
    """Stop counting ``appid``'s collisions so far (the operator has seen them); returns how many."""
    statement = (
        sa.update(key_collisions)
        .where(key_collisions.c.appid == appid, key_collisions.c.acknowledged.is_(False))
        .values(acknowledged=True)
    )
    return int(connection.execute(statement).rowcount)


def listing(connection: Connection, appid: str | None = None, limit: int = 100) -> list[Collision]:
    """The newest collisions (of one app, or all)."""
    statement = sa.select(*(key_collisions.c[name] for name in Collision.__dataclass_fields__)).order_by(
        key_collisions.c.id.desc()
    )
    if appid is not None:
        statement = statement.where(key_collisions.c.appid == appid)
    rows: Any = connection.execute(statement.limit(limit))
    return [Collision(*row) for row in rows]
