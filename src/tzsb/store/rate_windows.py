"""Requests per app and minute, counted in the database when several server workers share a limit.

Owns the ``rate_windows`` table.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from tzsb.store.dialects import dialect_of

_COUNT_ONE = "UPDATE rate_windows SET count = count + 1 WHERE appid = ? AND minute = ? AND count < ?"
_DROP_OLDER = "DELETE FROM rate_windows WHERE appid = ? AND minute < ?"


def count_request(connection: Connection, appid: str, minute: int, per_minute: int) -> bool:
    """Count one request of ``appid`` in ``minute``, atomically, in the caller's transaction; False
    (and nothing changed) when the app has had ``per_minute`` requests in that minute already."""
    dialect = dialect_of(connection)
    open_window = dialect.insert_ignoring_conflict("rate_windows (appid, minute, count)", "(?, ?, 0)")
    opened = connection.exec_driver_sql(dialect.driver_sql(open_window), (appid, minute)).rowcount
    counted = connection.exec_driver_sql(dialect.driver_sql(_COUNT_ONE), (appid, minute, per_minute)).rowcount
    if opened:  # the app's first request of a new minute: its older windows are done
        connection.exec_driver_sql(dialect.driver_sql(_DROP_OLDER), (appid, minute))
    return counted == 1
