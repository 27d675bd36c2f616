"""Console accounts as stored: password hashes, roles, region scope and failed-login counts.

Owns the ``accounts`` table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tzsb.store.schema import accounts


@dataclass(frozen=True, slots=True)
class StoredAccount:
    """One row of ``accounts``."""

    username: str
    password_hash: str
    role: str
    region: str
    enabled: bool
    failed_logins: int
    #: The end of a lock after too many failed logins (ISO 8601), if one was set and not cleared.
    locked_until: str | None
    created_at: str
    password_changed_at: str
    #: Raised at each sign-out; session tokens carry a stamp of the one they were issued in.
    session_generation: int = 0


def _stored(row: sa.Row[Any]) -> StoredAccount:
    return StoredAccount(**{str(name): value for name, value in row._mapping.items()})


def exists(connection: Connection, username: str) -> bool:
    """Whether an account of that name exists."""
    statement = sa.select(accounts.c.username).where(accounts.c.username == username)
    return connection.execute(statement).first() is not None


def add(connection: Connection, account: StoredAccount) -> None:
    """Create an account, in the caller's transaction."""
    connection.execute(sa.insert(accounts).values(**asdict(account)))


def find(connection: Connection, username: str) -> StoredAccount | None:
    """The account of that name, if any."""
    row = connection.execute(sa.select(accounts).where(accounts.c.username == username)).first()
    return None if row is None else _stored(row)


def listing(connection: Connection) -> list[StoredAccount]:
    """Every account, by name."""
    return [_stored(row) for row in connection.execute(sa.select(accounts).order_by(accounts.c.username))]


def count_failed_login(connection: Connection, username: str, max_failures: int, lock_until: str) -> None:
    """Count a failed login; at ``max_failures`` the count restarts and the account is locked until
    ``lock_until``. Counted in the database, so parallel guesses cannot slip past the limit."""
    connection.execute(
        sa.update(accounts).where(accounts.c.username == username).values(failed_logins=accounts.c.failed_logins + 1)
    )
    connection.execute(
        sa.update(accounts)
        .where(accounts.c.username == username, accounts.c.failed_logins >= max_failures)
        .values(failed_logins=0, locked_until=lock_until)
    )


def clear_failed_logins(connection: Connection, username: str) -> None:
    """Forget failed logins and any lock (after a successful login)."""
    connection.execute(
        sa.update(accounts).where(accounts.c.username == username).values(failed_logins=0, locked_until=None)
    )


def set_password(connection: Connection, username: str, password_hash: str, changed_at: str) -> bool:
    """Store a new password hash; False when there is no such account."""
    return _update(connection, username, password_hash=password_hash, password_changed_at=changed_at)


def replace_password_hash(connection: Connection, username: str, old_hash: str, new_hash: str) -> bool:
    """Store ``new_hash`` (the same password, hashed again) if the stored hash is still ``old_hash``;
    False when it changed meanwhile. ``password_changed_at`` stays: the password did not change."""
    statement = (
        sa.update(accounts)
        .where(accounts.c.username == username, accounts.c.password_hash == old_hash)
        .values(password_hash=new_hash)
    )
    return bool(connection.execute(statement).rowcount)


def set_enabled(connection: Connection, username: str, enabled: bool) -> bool:
    """Enable or disable an account; False when there is no such account."""
    return _update(connection, username, enabled=enabled)


def end_sessions(connection: Connection, username: str) -> bool:
    """Raise the account's session generation (its earlier session tokens stop validating)."""
    return _update(connection, username, session_generation=accounts.c.session_generation + 1)


def _update(connection: Connection, username: str, **values: object) -> bool:
    result = connection.execute(sa.update(accounts).where(accounts.c.username == username).values(**values))
    return bool(result.rowcount)
