"""Apps as stored: grants, and secrets sealed under the master key (the registry seals and opens them).

Owns the ``apps`` table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tzsb.store.schema import apps


@dataclass(frozen=True, slots=True)
class StoredApp:
    """One row of ``apps``, as stored (JSON lists for the grants, sealed secrets)."""

    appid: str
    name: str
    secret_enc: bytes
    previous_secret_enc: bytes | None
    #: When the previous secret stops verifying (ISO 8601), if a rotation's grace is running.
    previous_valid_until: str | None
    sign_algorithm: str
    busicodes: list[str]
    actions: list[str]
    overrides: list[str]
    region: str
    max_records: int
    enabled: bool
    created_at: str
    updated_at: str
    level: str
    max_bytes: int | None
    rate_per_minute: int
    ip_allow: list[str]
    unmasked: list[str]
    require_timestamp: bool
    cert_fingerprints: list[str]
    log_auditor: bool = False
    report_every_seconds: int | None = None


def _stored(row: sa.Row[Any]) -> StoredApp:
    values = dict(row._mapping)
    values["secret_enc"] = bytes(values["secret_enc"])
    if values["previous_secret_enc"] is not None:
        values["previous_secret_enc"] = bytes(values["previous_secret_enc"])
    return StoredApp(**{str(name): value for name, value in values.items()})


def exists(connection: Connection, appid: str) -> bool:
    """Whether an app of that id is registered."""
    return connection.execute(sa.select(apps.c.appid).where(apps.c.appid == appid)).first() is not None


def add(connection: Connection, app: StoredApp) -> None:
    """Register an app, in the caller's transaction."""
    connection.execute(sa.insert(apps).values(**asdict(app)))


def find(connection: Connection, appid: str) -> StoredApp | None:
    """The app of that id, if registered."""
    row = connection.execute(sa.select(apps).where(apps.c.appid == appid)).first()
    return None if row is None else _stored(row)


def listing(connection: Connection) -> list[StoredApp]:
    """Every app, by appid."""
    return [_stored(row) for row in connection.execute(sa.select(apps).order_by(apps.c.appid))]


def set_enabled(connection: Connection, appid: str, enabled: bool, at: str) -> bool:
    """Enable or disable an app; False when there is no such app."""
    return _update(connection, appid, at, enabled=enabled)


def set_secrets(
    connection: Connection,
    appid: str,
    secret_enc: bytes,
    previous_secret_enc: bytes | None,
    previous_valid_until: str | None,
    at: str,
) -> bool:
    """Store a new sealed secret and the previous one with the end of its grace (or none); False
    when there is no such app."""
    return _update(
        connection,
        appid,
        at,
        secret_enc=secret_enc,
        previous_secret_enc=previous_secret_enc,
        previous_valid_until=previous_valid_until,
    )


def set_scope(connection: Connection, appid: str, region: str, unmasked: list[str], at: str) -> bool:
    return _update(connection, appid, at, region=region, unmasked=unmasked)


def _update(connection: Connection, appid: str, at: str, **values: object) -> bool:
    result = connection.execute(sa.update(apps).where(apps.c.appid == appid).values(updated_at=at, **values))
    return bool(result.rowcount)
