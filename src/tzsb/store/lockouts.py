"""Failed signature checks per (app, client address), and the locks they lead to (spec 7.4).

Owns the ``auth_failures`` table. The policy (how many failures, in what window, locked for how
long) is the registry's: this module reads and writes the counts it decides.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from tzsb.errors import StoreConflict
from tzsb.store.dialects import DriverConnection, driver_rows
from tzsb.store.schema import auth_failures


@dataclass(frozen=True, slots=True)
class Failures:
    """The failed checks of one (app, client address) pair; times as ISO 8601 text."""

    appid: str
    client_addr: str
    failures: int
    first_failed_at: str
    last_failed_at: str
    #: The end of the pair's lock, if its failures locked it.
    locked_until: str | None


def _stored(row: sa.Row[Any]) -> Failures:
    return Failures(**{str(name): value for name, value in row._mapping.items()})


def _pair(appid: str, client_addr: str) -> tuple[sa.ColumnElement[bool], sa.ColumnElement[bool]]:
    return auth_failures.c.appid == appid, auth_failures.c.client_addr == client_addr


def pairs(connection: Connection) -> set[tuple[str, str]]:
    """Every (appid, client address) with recorded failures."""
    rows = connection.execute(sa.select(auth_failures.c.appid, auth_failures.c.client_addr))
    return {(row.appid, row.client_addr) for row in rows}


def find(connection: Connection, appid: str, client_addr: str) -> Failures | None:
    """The pair's failures, if any are recorded."""
    row = connection.execute(sa.select(auth_failures).where(*_pair(appid, client_addr))).first()
    return None if row is None else _stored(row)


#: Straight to the driver: with several server processes every request reads its app's and its
#: pair's rows (``Lockouts.locks``).
_FIND_BOTH = (
    "SELECT appid, client_addr, failures, first_failed_at, last_failed_at, locked_until "
    "FROM auth_failures WHERE appid = ? AND client_addr IN (?, ?)"
)


def find_both(connection: Connection | DriverConnection, appid: str, first: str, second: str) -> dict[str, Failures]:
    """The failures recorded for ``appid`` from the addresses ``first`` and ``second``, by address
    (one statement: an app-wide lock's row and a pair's row together)."""
    return {row[1]: Failures(*row) for row in driver_rows(connection, _FIND_BOTH, (appid, first, second))}


def lock_pair(connection: Connection, appid: str, client_addr: str) -> Failures | None:
    """``find``, with the pair's row locked until the caller's transaction ends (PostgreSQL; SQLite's
    writers hold the whole database), so that counting a failure reads and writes in one step."""
    row = connection.execute(sa.select(auth_failures).where(*_pair(appid, client_addr)).with_for_update()).first()
    return None if row is None else _stored(row)


def save(connection: Connection, failures: Failures, *, new: bool) -> None:
    """Store the pair's count: a ``new`` row, or the one ``lock_pair`` found.

    Raises ``StoreConflict`` when a new row's pair was inserted meanwhile by another writer (the
    caller's transaction is then to be rolled back).
    """
    values = asdict(failures)
    if not new:
        del values["appid"], values["client_addr"]
        connection.execute(
            sa.update(auth_failures).where(*_pair(failures.appid, failures.client_addr)).values(**values)
        )
        return
    try:
        connection.execute(sa.insert(auth_failures).values(**values))
    except IntegrityError as taken:
        raise StoreConflict(
            f"failures of {failures.appid} from {failures.client_addr} were recorded meanwhile"
        ) from taken


def prune(connection: Connection, stale_before: str, now: str) -> int:
    """Drop pairs whose last failure is before ``stale_before`` and whose lock (if any) ended before
    ``now``; returns how many."""
    statement = sa.delete(auth_failures).where(
        auth_failures.c.last_failed_at < stale_before,
        sa.or_(auth_failures.c.locked_until.is_(None), auth_failures.c.locked_until < now),
    )
    return int(connection.execute(statement).rowcount)


def clear(connection: Connection, appid: str, client_addr: str | None = None) -> int:
    """Forget the failures of an app (from one address, or all); returns rows removed."""
    statement = sa.delete(auth_failures).where(auth_failures.c.appid == appid)
    if client_addr is not None:
        statement = statement.where(auth_failures.c.client_addr == client_addr)
    return int(connection.execute(statement).rowcount)


def has_failures(connection: Connection, appid: str, client_addr: str) -> bool:
    """Whether the pair has recorded failures."""
    statement = sa.select(sa.func.count()).select_from(auth_failures).where(*_pair(appid, client_addr))
    return bool(connection.execute(statement).scalar_one())


def listing(connection: Connection) -> list[Failures]:
    """Every pair with failures, by lock end (descending: NULLs sort last on SQLite, first on
    PostgreSQL), then by appid."""
    statement = sa.select(auth_failures).order_by(auth_failures.c.locked_until.desc(), auth_failures.c.appid)
    return [_stored(row) for row in connection.execute(statement)]
