"""``random`` claims: each app's randoms, each claimed once, with the first answer kept for retries.

Owns the ``nonces`` table. A claim outlives its answer: answers expire after a while and are held
under a per-app quota (``expired_answers``, ``over_quota`` and ``drop_answers``), while the random
stays spent until an operator prunes old claims (``prune``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tzsb.errors import StoreConflict
from tzsb.store.dialects import DriverConnection, dialect_of, driver_cursor, driver_rows, driver_sql
from tzsb.store.engine import Store, defer
from tzsb.store.schema import nonces

#: Straight to the driver, like ``_FIND``: every answered request claims its random, and
#: SQLAlchemy's execution of even a compiled insert cost more than the insert (about 40 µs a claim).
_CLAIM_PREFIX: Final = "INSERT INTO nonces (appid, random, fingerprint, response, created_at, response_bytes) VALUES "
_CLAIM_ROW: Final = "(?, ?, ?, ?, ?, ?)"
_CLAIM: Final = _CLAIM_PREFIX + _CLAIM_ROW
#: The key of the claims made in a write transaction, inserted at its end (``defer``).
_PENDING: Final = "tzsb.nonces.pending"
#: Straight to the driver: SQLAlchemy's statement building and result processing cost more than the
#: look-up, once per write (0.14 → 0.05 ms).
_FIND: Final = "SELECT fingerprint, response FROM nonces WHERE appid = ? AND random = ?"
#: A claim that still keeps its answer: written as the kept answers' partial index is, so that SQLite
#: and PostgreSQL read them from the index alone (``response IS NOT NULL``, the same claims, names a
#: column outside it: SQLite 3.40 then visits every row). A literal, not a bound parameter, for the
#: planners to see that it implies the index's condition.
KEPT: Final = "response_bytes > 0"


@dataclass(frozen=True, slots=True)
class Claim:
    """A claimed random: the fingerprint of the request that claimed it, and its answer (None once
    the answer has expired or was dropped under the app's quota)."""

    fingerprint: str
    response: bytes | None


def find(connection: Connection | DriverConnection, appid: str, random: str) -> Claim | None:
    """The claim of ``random`` by ``appid``, if any (one statement: ``Store.read_statement`` will do)."""
    rows = driver_rows(connection, _FIND, (appid, random))
    if not rows:
        return None
    fingerprint, response = rows[0]
    return Claim(fingerprint, None if response is None else bytes(response))


def claim(connection: Connection, appid: str, random: str, fingerprint: str, response: bytes, at: datetime) -> None:
    """Claim ``random`` for ``appid`` with the answer to keep, in the caller's transaction.

    In a write transaction opened by ``Store`` the claim is inserted as one of the transaction's
    last steps, with every other claim made in it, in one statement: a group commit's batch
    (``group_commit``) then sends its claims in one round trip, not one each.

    Raises ``StoreConflict`` when the random is claimed already, here or when the transaction ends
    (the caller's transaction is then to be rolled back).
    """
    row = (appid, random, fingerprint, response, at.isoformat(), len(response))
    pending = defer(connection, _PENDING, _insert)
    if pending is None:
        _insert(connection, [row])
    else:
        pending.append(row)


def _insert(connection: Connection, rows: list[tuple[Any, ...]]) -> None:
    try:
        with driver_cursor(connection) as cursor:
            if dialect_of(connection).single_writer:
                # SQLite: no round trips to save; executemany steps the one prepared statement per row.
                cursor.executemany(driver_sql(connection, _CLAIM), rows)
            else:
                # One statement for them all (psycopg's executemany runs a pipeline even for one row).
                statement = _CLAIM_PREFIX + ", ".join([_CLAIM_ROW] * len(rows))
                cursor.execute(driver_sql(connection, statement), [value for row in rows for value in row])
    except connection.dialect.loaded_dbapi.IntegrityError as taken:
        randoms = ", ".join(f"{row[1]} of app {row[0]}" for row in rows)
        raise StoreConflict(
            f"random {randoms} is claimed already"
            if len(rows) == 1
            else f"one of the randoms {randoms} is claimed already"
        ) from taken


def prune(store: Store, before: datetime) -> int:
    """Forget ``random`` claims made before ``before``; returns how many were removed.

    A forgotten random could be replayed, so apps that must be safe from that beyond the pruning
    horizon should be required to send the signed ``timestamp`` (its window is minutes).
    """
    with store.write() as connection:
        result = connection.execute(sa.delete(nonces).where(nonces.c.created_at < before.isoformat()))
    return int(result.rowcount)


def expired_answers(connection: Connection, before: datetime, limit: int) -> list[tuple[str, str]]:
    """Up to ``limit`` claims, as (appid, random), that still keep an answer claimed before
    ``before``. Only reads (the whole index of kept answers, at worst): for a read transaction in a
    thread, the answers then dropped a few hundred at a time (``drop_answers``)."""
    statement = (
        sa.select(nonces.c.appid, nonces.c.random)
        .where(sa.text(KEPT), nonces.c.created_at < before.isoformat())
        .limit(limit)
    )
    return [(str(appid), str(random)) for appid, random in connection.execute(statement)]


def kept_bytes(connection: Connection, appid: str) -> int:
    """The size of the answers ``appid``'s claims still keep."""
    statement = sa.select(sa.func.coalesce(sa.func.sum(nonces.c.response_bytes), 0)).where(
        nonces.c.appid == appid, sa.text(KEPT)
    )
    return int(connection.execute(statement).scalar_one())


#: ``over_quota``'s walk from the oldest kept answer, read from the covering index
#: (``ix_nonces_kept_answer_sizes``) by the driver: thousands of rows, each a few µs through SQLAlchemy.
_OLDEST_KEPT: Final = (
    f"SELECT random, response_bytes FROM nonces WHERE appid = ? AND {KEPT} ORDER BY created_at, random"  # noqa: S608 - a constant
)


def over_quota(connection: Connection, appid: str, quota_bytes: int) -> list[str]:
    """The randoms of ``appid``'s oldest kept answers, as many as must go for the rest to fit in
    ``quota_bytes`` (none when they fit). Only reads: for a read transaction, so that working out
    what to drop holds no writer up (``drop_answers`` drops them). Both reads take the sizes from the
    index of kept answers, never the rows that hold the answers."""
    excess = kept_bytes(connection, appid) - quota_bytes
    if excess <= 0:
        return []
    dropped: list[str] = []
    with driver_cursor(connection) as cursor:
        cursor.execute(driver_sql(connection, _OLDEST_KEPT), (appid,))
        while excess > 0 and (rows := cursor.fetchmany(1000)):
            for random, size in rows:
                if excess <= 0:
                    break
                dropped.append(random)
                excess -= int(size)
    return dropped


def drop_answers(connection: Connection, appid: str, randoms: list[str]) -> int:
    """Drop the answers ``appid``'s claims of ``randoms`` keep (the claims stay); returns how many were
    still kept. ``randoms``: at most a few hundred (one statement)."""
    statement = (
        sa.update(nonces)
        # Not ``KEPT``: SQLite would read the app's kept answers through their index instead of
        # probing the primary key for these randoms (20 ms against 2 for 256 of 80,000).
        .where(nonces.c.appid == appid, nonces.c.random.in_(randoms), nonces.c.response.is_not(None))
        .values(response=None, response_bytes=0)
    )
    return int(connection.execute(statement).rowcount)
