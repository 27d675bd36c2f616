"""The interaction log (spec 6.1 e): one row per request, accepted or refused, each chained to
the one before by its digest (``log_chain``).

Owns the ``interaction_log`` table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tzsb.store import log_chain
from tzsb.store.dialects import driver_cursor, driver_sql
from tzsb.store.engine import defer
from tzsb.store.schema import interaction_log


def append(connection: Connection, row: Mapping[str, Any]) -> None:
    """Add a row (the table's columns but ``id`` and the chain's) in the caller's transaction,
    chained after the last entry; the chain's head stays locked until the transaction ends."""
    append_all(connection, [log_chain.entry_values(row)])


#: The key of the rows appended in a transaction, written at its end (``defer``).
_PENDING: Final = "tzsb.interaction_log.pending"


def append_all(connection: Connection, entries: Sequence[Sequence[Any]]) -> None:
    """``append`` for several entries, each its ``log_chain.ENTRY_COLUMNS`` values of the types its
    digest covers (``log_chain.entry_values``), chained in the order given.

    In a write transaction opened by ``Store`` the rows are written as its last step, with every
    other row appended in it, in one statement: a group commit's batch (``group_commit``) then takes
    the chain's lock once, and only for the end of the transaction.
    """
    if not entries:
        return
    pending = defer(connection, _PENDING, log_chain.append_chained)
    if pending is None:
        log_chain.append_chained(connection, entries)
    else:
        pending.extend(entries)


def recent(
    connection: Connection, limit: int = 50, appid: str | None = None, correlation: str | None = None
) -> list[dict[str, Any]]:
    """The newest rows, newest first (of one app, if ``appid``; the legs of one routed request, if
    ``correlation``), each with every column."""
    statement = sa.select(interaction_log).order_by(interaction_log.c.id.desc()).limit(limit)
    if appid is not None:
        statement = statement.where(interaction_log.c.appid == appid)
    if correlation is not None:
        statement = statement.where(interaction_log.c.correlation == correlation)
    # Column names come back as SQLAlchemy's quoted_name; plain str keeps them JSON-serialisable.
    return [{str(name): value for name, value in row._mapping.items()} for row in connection.execute(statement)]


#: ``chain_page``'s columns and statement, sent to the driver: a chain's walk reads every entry since
#: the last (the alert watcher's every minute: 300,000 on a node answering 5,000 requests a second),
#: and SQLAlchemy's rows, turned into dicts, cost more than the digest's check.
_COLUMNS: Final = tuple(str(column.name) for column in interaction_log.c)  # (plain str: orjson writes archives)
_CHAIN_PAGE: Final = (
    f"SELECT {', '.join(_COLUMNS)} FROM interaction_log "  # noqa: S608 - the table's own column names
    "WHERE chain_seq > ? AND chain_seq <= ? ORDER BY chain_seq LIMIT ?"
)


def chain_page(connection: Connection, after_seq: int, upto_seq: int, limit: int) -> list[dict[str, Any]]:
    """Entries after chain number ``after_seq`` and up to ``upto_seq``, in chain order."""
    with driver_cursor(connection) as cursor:
        cursor.execute(driver_sql(connection, _CHAIN_PAGE), (after_seq, upto_seq, limit))
        return [dict(zip(_COLUMNS, row, strict=True)) for row in cursor.fetchall()]


def remove_chained(connection: Connection, first_seq: int, last_seq: int) -> int:
    """Remove the entries numbered ``first_seq`` to ``last_seq`` (archived); returns how many."""
    result = connection.execute(
        sa.delete(interaction_log).where(
            interaction_log.c.chain_seq >= first_seq, interaction_log.c.chain_seq <= last_seq
        )
    )
    return int(result.rowcount)


def count(connection: Connection) -> int:
    """How many rows the log holds."""
    return int(connection.execute(sa.select(sa.func.count()).select_from(interaction_log)).scalar_one())


@dataclass(frozen=True, slots=True)
class EntryQuery:
    """Which entries a log query asks for; None leaves a column unconstrained."""

    appid: str | None = None
    #: Entries whose region starts with this (an auditor's scope; "" is every region).
    region_prefix: str | None = None
    random: str | None = None
    busicode: str | None = None
    action: str | None = None
    result: str | None = None
    code: str | None = None
    #: Bounds on ``at`` (ISO 8601 text with the node's offset), inclusive.
    at_from: str | None = None
    at_to: str | None = None
    #: Keyset position: entries with a smaller ``id`` (pages go newest first) ...
    before_id: int | None = None
    #: ... or, oldest first (exports), entries with a larger one.
    after_id: int | None = None
    oldest_first: bool = False
    limit: int = 100


def select_entries(connection: Connection, query: EntryQuery) -> list[dict[str, Any]]:
    """Entries matching ``query``, newest first (or oldest first), each with every column."""
    table = interaction_log
    order = table.c.id.asc() if query.oldest_first else table.c.id.desc()
    statement = sa.select(table).order_by(order).limit(query.limit)
    for column, value in (
        (table.c.appid, query.appid),
        (table.c.random, query.random),
        (table.c.busicode, query.busicode),
        (table.c.action, query.action),
        (table.c.result, query.result),
        (table.c.code, query.code),
    ):
        if value is not None:
            statement = statement.where(column == value)
    if query.region_prefix:
        upper = query.region_prefix[:-1] + chr(ord(query.region_prefix[-1]) + 1)
        statement = statement.where(table.c.region >= query.region_prefix, table.c.region < upper)
    if query.at_from is not None:
        statement = statement.where(table.c.at >= query.at_from)
    if query.at_to is not None:
        statement = statement.where(table.c.at <= query.at_to)
    if query.before_id is not None:
        statement = statement.where(table.c.id < query.before_id)
    if query.after_id is not None:
        statement = statement.where(table.c.id > query.after_id)
    return [{str(name): value for name, value in row._mapping.items()} for row in connection.execute(statement)]


def last_data(connection: Connection, appids: list[str]) -> dict[str, str]:
    """Per app, when it last delivered data: its newest accepted 01, 02 or 03 (``at``)."""
    if not appids:
        return {}
    table = interaction_log
    statement = (
        sa.select(table.c.appid, sa.func.max(table.c.at))
        .where(table.c.appid.in_(appids), table.c.result == "0001", table.c.action.in_(("01", "02", "03")))
        .group_by(table.c.appid)
    )
    return {appid: at for appid, at in connection.execute(statement) if at is not None}


def window_stats(connection: Connection, since_at: str) -> tuple[int, int, float | None]:
    """Requests answered since ``since_at`` (direction "in"): how many, how many refused, and the
    99th percentile of their durations (ms; None when there were none)."""
    table = interaction_log
    window = sa.and_(table.c.at >= since_at, table.c.direction == "in")
    total, refused = connection.execute(
        sa.select(
            sa.func.count(), sa.func.coalesce(sa.func.sum(sa.case((table.c.result != "0001", 1), else_=0)), 0)
        ).where(window)
    ).one()
    if not total:
        return 0, 0, None
    # The slowest 1 %: the duration at that rank, counted from the top.
    rank = int(total) // 100
    p99 = connection.execute(
        sa.select(table.c.duration_ms).where(window).order_by(table.c.duration_ms.desc()).limit(1).offset(rank)
    ).scalar_one()
    return int(total), int(refused), float(p99)


@dataclass(frozen=True, slots=True)
class TrafficBucket:
    """Requests answered (direction "in") for one business type in one period."""

    #: The period: the first ``width`` characters of ``at`` (13: an hour, 15: ten minutes, 16: a minute).
    period: str
    #: The business type (busicode's last four digits; "" when the request named none).
    business: str
    requests: int
    refused: int
    mean_ms: float
    max_ms: float


def traffic(connection: Connection, since_at: str, width: int, region_prefix: str = "") -> list[TrafficBucket]:
    """Requests since ``since_at`` per business type and period (``width`` characters of ``at``),
    oldest period first: what the console's dashboard draws. ``region_prefix``: only the entries of
    apps inside that region (an account of part of the node's area)."""
    table = interaction_log
    period = sa.func.substr(table.c.at, 1, width).label("period")
    business = sa.func.substr(table.c.busicode, 3, 4).label("business")
    statement = (
        sa.select(
            period,
            business,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(sa.case((table.c.result != "0001", 1), else_=0)), 0),
            sa.func.coalesce(sa.func.avg(table.c.duration_ms), 0.0),
            sa.func.coalesce(sa.func.max(table.c.duration_ms), 0.0),
        )
        .where(table.c.at >= since_at, table.c.direction == "in")
        .group_by(period, business)
        .order_by(period, business)
    )
    if region_prefix:
        statement = statement.where(table.c.region.startswith(region_prefix, autoescape=True))
    return [
        TrafficBucket(str(p), str(b or ""), int(n), int(r), float(mean), float(most))
        for p, b, n, r, mean, most in connection.execute(statement)
    ]
