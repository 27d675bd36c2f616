"""Leases: one process among several sharing the database holds each named lease at a time.

Owns the ``leases`` table. A lease is held until ``expires_at`` (Unix seconds); the holder renews
it while it works, and any process takes it once it has expired — so work a dead holder left is
taken over, and two live processes never hold the same lease.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tzsb.store.schema import leases


def take(connection: Connection, name: str, holder: str, now: float, seconds: float) -> bool:
    """Take or renew ``name`` for ``holder`` until ``now + seconds``; False while another holds it.

    One conditional UPDATE (or the INSERT of a lease never taken): the database's row lock decides
    between two processes asking at once.
    """
    taken = connection.execute(
        sa.update(leases)
        .where(leases.c.name == name, sa.or_(leases.c.holder == holder, leases.c.expires_at < now))
        .values(holder=holder, expires_at=now + seconds)
    ).rowcount
    if taken:
        return True
    if connection.execute(sa.select(leases.c.name).where(leases.c.name == name)).first() is not None:
        return False
    try:
        with connection.begin_nested():
            connection.execute(sa.insert(leases).values(name=name, holder=holder, expires_at=now + seconds))
    except sa.exc.IntegrityError:
        return False
    return True


def release(connection: Connection, name: str, holder: str) -> None:
    """Give up ``name`` if ``holder`` holds it."""
    connection.execute(sa.delete(leases).where(leases.c.name == name, leases.c.holder == holder))


def holder_of(connection: Connection, name: str, now: float) -> str | None:
    """Who holds ``name`` now (None: nobody, or the lease expired)."""
    row = connection.execute(sa.select(leases.c.holder, leases.c.expires_at).where(leases.c.name == name)).first()
    return None if row is None or row.expires_at < now else str(row.holder)


def take_over(connection: Connection, name: str, dead_holder: str, holder: str, now: float, seconds: float) -> bool:
    """Take ``name`` from ``dead_holder`` (known to be gone) before its lease runs out; False if it
    changed hands meanwhile."""
    return bool(
        connection.execute(
            sa.update(leases)
            .where(leases.c.name == name, leases.c.holder == dead_holder)
            .values(holder=holder, expires_at=now + seconds)
        ).rowcount
    )
