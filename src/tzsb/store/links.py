"""Sync links as stored: where and as whom a node exchanges with its parent, how far each business
type has gone, and the records the other side refused (the ``sync`` package seals and opens the
secrets, and decides what to send).

Owns the ``links``, ``link_positions`` and ``parked_records`` tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tzsb.store.schema import link_positions, links, parked_records


@dataclass(frozen=True, slots=True)
class StoredLink:
    """One row of ``links``."""

    name: str
    url: str
    appid: str
    secret_enc: bytes
    sign_algorithm: str
    direction: str
    businesses: list[str]
    purpose: str
    every_seconds: int
    max_records: int
    max_bytes: int | None
    timeout_seconds: float
    ca_file: str | None
    client_cert: str | None
    client_key: str | None
    send_timestamp: bool
    enabled: bool
    uid: str
    generation: int
    state: str
    failures: int
    wait_until: str | None
    last_attempt_at: str | None
    last_success_at: str | None
    last_error: str | None
    created_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class Parked:
    """A record the other side refused on a link, with its reason."""

    business: str
    key: str
    seq: int
    code: str
    message: str
    parked_at: str


def _stored(row: sa.Row[Any]) -> StoredLink:
    values = {str(name): value for name, value in row._mapping.items()}
    values["secret_enc"] = bytes(values["secret_enc"])
    return StoredLink(**values)


def add(connection: Connection, link: StoredLink) -> None:
    connection.execute(sa.insert(links).values(**asdict(link)))


def exists(connection: Connection, name: str) -> bool:
    return connection.execute(sa.select(links.c.name).where(links.c.name == name)).first() is not None


def find(connection: Connection, name: str) -> StoredLink | None:
    row = connection.execute(sa.select(links).where(links.c.name == name)).first()
    return None if row is None else _stored(row)


def listing(connection: Connection) -> list[StoredLink]:
    return [_stored(row) for row in connection.execute(sa.select(links).order_by(links.c.name))]


def update(connection: Connection, name: str, **values: Any) -> bool:
    """Set columns of one link; False if there is no such link."""
    return connection.execute(sa.update(links).where(links.c.name == name).values(**values)).rowcount == 1


def remove(connection: Connection, name: str) -> bool:
    """Delete a link with its positions and parked records; False if there was none."""
    connection.execute(sa.delete(link_positions).where(link_positions.c.link == name))
    connection.execute(sa.delete(parked_records).where(parked_records.c.link == name))
    return connection.execute(sa.delete(links).where(links.c.name == name)).rowcount == 1


# -- positions -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Position:
    #: Up: the last change sequence the parent acknowledged. Down: unused (0).
    seq: int
    #: Down: the parent's ``next_since`` token for the next pull. Up: None.
    since_token: str | None


def positions(connection: Connection, name: str) -> dict[str, Position]:
    """Per business type, how far the link has gone (types never synced are absent)."""
    statement = sa.select(link_positions.c.business, link_positions.c.position, link_positions.c.since_token).where(
        link_positions.c.link == name
    )
    return {business: Position(int(seq), token) for business, seq, token in connection.execute(statement)}


def set_position(
    connection: Connection, name: str, business: str, at: str, *, seq: int = 0, since_token: str | None = None
) -> None:
    """Store how far ``business`` has gone on the link, in the caller's transaction."""
    values = {"position": seq, "since_token": since_token, "updated_at": at}
    changed = connection.execute(
        sa.update(link_positions)
        .where(link_positions.c.link == name, link_positions.c.business == business)
        .values(**values)
    ).rowcount
    if not changed:
        connection.execute(sa.insert(link_positions).values(link=name, business=business, **values))


def reset_positions(connection: Connection, name: str) -> None:
    """Forget how far the link has gone (a full upload or pull starts from the beginning)."""
    connection.execute(sa.delete(link_positions).where(link_positions.c.link == name))


# -- parked records ------------------------------------------------------------------------------


def park(connection: Connection, name: str, parked: Iterable[Parked]) -> None:
    """Keep refused records with their reasons (replacing an earlier reason for the same record)."""
    rows = [asdict(item) | {"link": name} for item in parked]
    for row in rows:
        row["record_key"] = row.pop("key")
        connection.execute(
            sa.delete(parked_records).where(
                parked_records.c.link == name,
                parked_records.c.business == row["business"],
                parked_records.c.record_key == row["record_key"],
            )
        )
    if rows:
        connection.execute(sa.insert(parked_records), rows)


def unpark(connection: Connection, name: str, business: str, keys: Iterable[str]) -> None:
    """Forget refusals of records that have since gone through."""
    wanted = list(keys)
    for start in range(0, len(wanted), 500):
        connection.execute(
            sa.delete(parked_records).where(
                parked_records.c.link == name,
                parked_records.c.business == business,
                parked_records.c.record_key.in_(wanted[start : start + 500]),
            )
        )


def clear_parked(connection: Connection, name: str) -> None:
    connection.execute(sa.delete(parked_records).where(parked_records.c.link == name))


def parked(connection: Connection, name: str, limit: int = 1000) -> list[Parked]:
    statement = (
        sa.select(parked_records)
        .where(parked_records.c.link == name)
        .order_by(parked_records.c.business, parked_records.c.seq)
        .limit(limit)
    )
    return [
        Parked(row.business, row.record_key, int(row.seq), row.code, row.message, row.parked_at)
        for row in connection.execute(statement)
    ]


def parked_counts(connection: Connection) -> Mapping[str, int]:
    """How many records each link has parked."""
    statement = sa.select(parked_records.c.link, sa.func.count()).group_by(parked_records.c.link)
    return {name: int(count) for name, count in connection.execute(statement)}
