"""The interaction log (spec 6.1 e): one row per request, accepted or refused.

Owns the ``interaction_log`` table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tzsb.store.schema import interaction_log

#: Built once: SQLAlchemy then reuses its compiled form instead of building a statement per request.
_INSERT: Final = sa.insert(interaction_log)


def append(connection: Connection, row: Mapping[str, Any]) -> None:
    """Add a row (the table's columns but ``id``) in the caller's transaction."""
    connection.execute(_INSERT, row)


def recent(connection: Connection, limit: int = 50, appid: str | None = None) -> list[dict[str, Any]]:
    """The newest rows, newest first (of one app, if ``appid``), each with every column."""
    statement = sa.select(interaction_log).order_by(interaction_log.c.id.desc()).limit(limit)
    if appid is not None:
        statement = statement.where(interaction_log.c.appid == appid)
    # Column names come back as SQLAlchemy's quoted_name; plain str keeps them JSON-serialisable.
    return [{str(name): value for name, value in row._mapping.items()} for row in connection.execute(statement)]


def count(connection: Connection) -> int:
    """How many rows the log holds."""
    return int(connection.execute(sa.select(sa.func.count()).select_from(interaction_log)).scalar_one())
