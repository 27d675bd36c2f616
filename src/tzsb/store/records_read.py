"""Reading business records: by key, by query page, by change feed; and which keys a type holds.

Owns reads of the ``records`` table, and of ``change_counter`` (``last_change``, without a lock).

Reads go to the driver as plain SQL: a page or a key look-up is one or two index probes, and
SQLAlchemy's statement building and row processing cost more than the probes themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tzsb.store import masked_copies

# FETCH_ON_…: the statements ``fetch`` runs, kept in ``dialects`` with the measurements behind them.
from tzsb.store.dialects import FETCH_ON_POSTGRESQL as FETCH_ON_POSTGRESQL
from tzsb.store.dialects import FETCH_ON_SQLITE as FETCH_ON_SQLITE
from tzsb.store.dialects import RECORD_COLUMNS, DriverConnection, dialect_named, dialect_of, driver_rows
from tzsb.store.schema import record_changes, record_versions, records


class StoredRecord(NamedTuple):
    """One stored row (a named tuple: a page builds a hundred, and a frozen dataclass is slow to build)."""

    key: str
    region: str
    updated_at: str
    data: dict[str, Any]
    deleted: bool
    deleted_at: str | None
    source_appid: str
    seq: int
    #: The stored JSON text, when selected raw (``data`` is then empty): answers splice it in unparsed.
    text: str | None = None
    #: The record's masked copy (``masked_copies``), when selected with a masking plan and one was made
    #: from this version under that plan (``data`` is then empty): masked answers splice it in as is.
    masked_text: str | None = None
    #: A change feed's record of a move out of the feed's region (``region`` is the region left,
    #: ``data`` empty): the record is gone from the region, as if deleted there.
    departed: bool = False


@dataclass(frozen=True, slots=True)
class RecordQuery:
    """What a 04 query asks for, already checked against the catalog and the caller's scope."""

    business: str
    #: Region prefixes that must all hold (the caller's scope, the ``_region`` condition).
    region_prefixes: tuple[str, ...] = ()
    key: str | None = None
    region: str | None = None
    #: Equality on other catalog fields (JSON document values).
    equals: Mapping[str, str] | None = None
    updated_from: str | None = None
    updated_to: str | None = None
    include_deleted: bool = False
    #: Change-feed mode: rows with ``seq`` above this, in ``seq`` order (tombstones included).
    since: int | None = None
    #: Keyset position: ``(region, key)`` normally, ``(seq,)`` in change-feed mode and with ``by_seq``.
    after: tuple[str, str] | tuple[int] | None = None
    #: Page in ``seq`` order instead of ``(region, key)``: for answers that mask the key (or what
    #: it may echo), whose place among the keys would tell a prober the hidden digits.
    by_seq: bool = False
    limit: int = 100


def last_change(connection: Connection) -> int:
    """The last change sequence handed out, as the connection's transaction sees it (no lock)."""
    ((seq,),) = driver_rows(connection, "SELECT last_seq FROM change_counter WHERE id = 1")
    return int(seq)


#: The columns every read of records selects, in the order ``_stored`` unpacks them.
_SELECTED = RECORD_COLUMNS
#: A page selected with its masked copies (``copy_doc``) as ``_stored_or_copy`` unpacks it, its document
#: left out where the copy stands in for it.
_DATA_UNLESS_COPIED = (
    "record_key, region, updated_at, CASE WHEN copy_doc IS NULL THEN data END, deleted, deleted_at, source_appid, "
    "seq, copy_doc"
)


def _stored(row: Any, raw: bool = False) -> StoredRecord:
    key, region, updated_at, data, deleted, deleted_at, source_appid, seq = row
    deleted = bool(deleted)
    keep_text = raw and not deleted
    return StoredRecord(
        key=key,
        region=region,
        updated_at=updated_at,
        # SQLite hands back the JSON text; psycopg decodes jsonb itself.
        data={} if keep_text else orjson.loads(data) if isinstance(data, str | bytes) else data,
        deleted=deleted,
        deleted_at=deleted_at,
        source_appid=source_appid,
        seq=int(seq),
        text=data if keep_text else None,
    )


def _stored_or_copy(row: Any) -> StoredRecord:
    """A row selected with its masked copy's column last (``masked_copies.COPY_COLUMN``): the copy's
    text in place of the decoded record when there is one."""
    *stored, copy = row
    if copy is None or stored[4]:  # no copy, or a deleted row (whose copies never match: its seq is new)
        return _stored(stored)
    key, region, updated_at, _data, _deleted, deleted_at, source_appid, seq = stored
    return StoredRecord(key, region, updated_at, {}, False, deleted_at, source_appid, int(seq), masked_text=copy)


def fetch(connection: Connection, business: str, keys: Iterable[str]) -> dict[str, StoredRecord]:
    """The stored rows (deleted ones included) for ``keys``, by key (plain SQL to the driver): one
    array parameter and one primary-key probe per key (``FETCH_ON_SQLITE``, ``FETCH_ON_POSTGRESQL``)."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    dialect = dialect_of(connection)
    rows = connection.exec_driver_sql(dialect.fetch_records, (dialect.text_array(wanted), business))
    return {row[0]: _stored(row) for row in rows}


def live_keys_statement(dialect: str, region_prefix: str = "") -> str:
    """``live_keys``'s SQL on the dialect named ``dialect``: one primary-key probe per wanted key (as
    ``FETCH_ON_POSTGRESQL``), the region range applied to what the probes find. Markers: the keys (one
    JSON array on SQLite, one array on PostgreSQL), the business type, then the region range's bounds
    if there is a prefix."""
    return dialect_named(dialect).live_keys_statement(region_prefix)


def live_keys(connection: Connection, business: str, keys: Iterable[str], region_prefix: str = "") -> set[str]:
    """Which of ``keys`` the business type holds as live (not deleted) records inside a region.

    SQLAlchemy's expansion of a 1,000-key ``IN`` list cost more than the look-up, and on PostgreSQL
    the planner answered it by reading the region's whole range (13 ms for 1,000 keys among 25,000
    rows, growing with the table).
    """
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return set()
    dialect = dialect_of(connection)
    parameters: tuple[Any, ...] = (dialect.text_array(wanted), business)
    if region_prefix:
        parameters += _prefix_bounds(region_prefix)
    statement = dialect.live_keys_statement(region_prefix)
    return {key for (key,) in connection.exec_driver_sql(statement, parameters)}


def _prefix_bounds(prefix: str) -> tuple[str, str]:
    """The range of the texts that start with ``prefix``: at least it, below the next prefix (codes are digits)."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _prefix_range(column: sa.ColumnElement[str], prefix: str) -> sa.ColumnElement[bool]:
    """``column`` starts with ``prefix`` as a range the index can serve."""
    lower, upper = _prefix_bounds(prefix)
    return sa.and_(column >= lower, column < upper)


def _narrowest(prefixes: Iterable[str]) -> str | None:
    """The one region prefix that implies all of ``prefixes``, or None when no region can satisfy them all."""
    narrowest = max(prefixes, key=len, default="")
    return narrowest if all(narrowest.startswith(prefix) for prefix in prefixes) else None


def one_statement(query: RecordQuery) -> bool:
    """Whether ``select_records`` answers ``query`` with a single statement (a key look-up, or a first
    page that is not a region's change feed): it then needs no transaction around it."""
    return query.key is not None or (query.since is None and query.after is None)


def reads_few_rows(query: RecordQuery) -> bool:
    """Whether ``select_records`` walks about as many index entries as it returns: a key look-up, or a
    page in (region, key) order with no condition on other fields. Any other query (field
    equalities, an update-time range, sequence order, the change feed) filters the rows an index
    walk meets, and may walk far more than a page of them."""
    if query.key is not None:
        return True
    return not (query.equals or query.updated_from or query.updated_to or query.by_seq or query.since is not None)


def select_records(
    connection: Connection | DriverConnection, query: RecordQuery, *, raw: bool = False, masked_plan: str | None = None
) -> list[StoredRecord]:
    """Run a query; returns at most ``query.limit`` rows after the keyset position.

    ``raw`` (only where the dialect keeps the document as the compact text the node wrote: SQLite)
    returns each live record's JSON text instead of parsing it; tombstones are parsed as usual.
    ``masked_plan`` (not with ``raw``) returns, for each live record with a masked copy made from
    its version under that plan, the copy's text (``masked_text``) instead of the parsed record.

    Plain SQL to the driver: a page is one or two index range scans, and building, caching and
    processing SQLAlchemy statements and rows cost more than the scans themselves.

    Region conditions are reduced before they reach SQL: nested prefixes (the caller's scope and
    ``_region``) to the narrowest one, and a prefix to nothing where the region is pinned by an
    equality. SQLite, without statistics, took a region range beside ``region = ? AND record_key > ?``
    as reason to walk the primary-key index from that key on: a scan of every later key, which
    turned each keyset page into a scan of the whole table.
    """
    dialect = dialect_of(connection)
    raw = raw and dialect.keeps_document_text
    if raw and masked_plan is not None:
        raise ValueError("a raw read returns the records unmasked: it selects no masked copies")
    prefix = _narrowest(query.region_prefixes)
    if prefix is None or (query.region is not None and not query.region.startswith(prefix)):
        return []
    conditions = ["business = ?"]
    params: list[Any] = [query.business]

    def add(condition: str, *values: Any) -> None:
        conditions.append(condition)
        params.extend(values)

    if query.key is not None:
        add("record_key = ?", query.key)
    if query.region is not None:
        add("region = ?", query.region)
    for field, value in (query.equals or {}).items():
        # Compared as text, so that a number stored as 15 matches the condition "15".
        condition, values = dialect.document_text_equals(field, value)
        add(condition, *values)
    if query.updated_from is not None:
        add("updated_at >= ?", query.updated_from)
    if query.updated_to is not None:
        add("updated_at <= ?", query.updated_to)
    # A region equality makes a prefix range redundant (checked above) and only misleads the planner.
    ranged: list[str] = []
    range_params: list[Any] = []
    if prefix and query.region is None:
        ranged, range_params = ["region >= ? AND region < ?"], [prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)]
    if query.since is not None:
        conditions += ranged
        params += range_params
        start = max(query.since, int(query.after[0]) if query.after is not None else 0)
        add("seq > ?", start)
        changed = _run(connection, conditions, params, "seq", query.limit, raw, masked_plan)
        if not prefix or query.key is not None or query.region is not None or query.equals:
            return changed
        # A feed scoped to a region also tells of the records that left it (their rows are elsewhere now).
        departed = departures(connection, query.business, prefix, start, query.limit)
        if not departed:
            return changed
        return sorted([*changed, *departed], key=lambda row: row.seq)[: query.limit]
    if not query.include_deleted:
        add("deleted = ?", False)
    if query.key is not None:
        return _keyed(connection, query, conditions, params, prefix, raw, masked_plan)
    if query.by_seq:
        # The order of writes, which says nothing about the keys: a walk of ``ix_records_seq``
        # from the position on, filtered (regions, deleted rows), with no sort and no rescan.
        # A first page too starts from a position (0: sequences start at 1), or SQLite sorts the
        # whole region range on each first page instead of walking the sequence index.
        by_seq_start = query.after[0] if query.after is not None else 0
        seq_conditions, seq_params = [*conditions, *ranged, "seq > ?"], [*params, *range_params, by_seq_start]
        return _run(connection, seq_conditions, seq_params, "seq", query.limit, raw, masked_plan)
    order = "region, record_key"
    if query.after is None:
        return _run(connection, [*conditions, *ranged], [*params, *range_params], order, query.limit, raw, masked_plan)
    # Keyset page after (region, key), in two index range scans: the rest of that region, then
    # the regions after it. SQLite does not seek an index on a row-value comparison, so a single
    # "(region, key) > (?, ?)" would rescan every earlier row of the range on each page.
    region, key = cast(tuple[str, str], query.after)
    if query.region is not None:
        # One region: the keys after ``key`` in it, all of it, or nothing.
        if region > query.region:
            return []
        rest = [*conditions, "record_key > ?"] if region == query.region else conditions
        rest_params = [*params, key] if region == query.region else params
        return _run(connection, rest, rest_params, order, query.limit, raw, masked_plan)
    found: list[StoredRecord] = []
    if region.startswith(prefix):
        same_region = [*conditions, "region = ? AND record_key > ?"]
        found = _run(connection, same_region, [*params, region, key], order, query.limit, raw, masked_plan)
    if len(found) < query.limit:
        later = [*conditions, "region > ?", *ranged]
        later_params = [*params, region, *range_params]
        found += _run(connection, later, later_params, order, query.limit - len(found), raw, masked_plan)
    return found


def _keyed(
    connection: Connection | DriverConnection,
    query: RecordQuery,
    conditions: list[str],
    params: list[Any],
    prefix: str,
    raw: bool,
    masked_plan: str | None,
) -> list[StoredRecord]:
    """A page of a query that names its key: the one row the primary key holds, if it is in scope
    and after the keyset position.

    Region scope and position are checked on that row here, not in SQL: PostgreSQL, without
    statistics on a freshly loaded table, took ``region >= ? AND region < ?`` beside the key as a
    reason to walk the region index through the whole scope (2.9 ms a look-up over 20,000 records,
    against 0.02 ms by the primary key)."""
    rows = _run(connection, conditions, params, "record_key", query.limit, raw, masked_plan)
    kept = [row for row in rows if row.region.startswith(prefix)]
    if query.after is None:
        return kept
    if query.by_seq:
        start = int(query.after[0])
        return [row for row in kept if row.seq > start]
    position = cast(tuple[str, str], query.after)
    return [row for row in kept if (row.region, row.key) > position]


def _run(
    connection: Connection | DriverConnection,
    conditions: list[str],
    params: list[Any],
    order: str,
    limit: int,
    raw: bool,
    masked_plan: str | None,
) -> list[StoredRecord]:
    where = f"FROM records WHERE {' AND '.join(conditions)} ORDER BY {order} LIMIT ?"
    if masked_plan is not None:
        # The copy's marker comes first: its column precedes the conditions.
        statement = f"SELECT {_SELECTED}, {masked_copies.COPY_COLUMN} AS copy_doc {where}"
        if not dialect_of(connection).keeps_document_text:
            # PostgreSQL's driver decodes every jsonb document it is sent: not those a copy stands in for.
            statement = f"SELECT {_DATA_UNLESS_COPIED} FROM ({statement}) AS page ORDER BY {order}"  # noqa: S608 - fixed names
        return [_stored_or_copy(row) for row in driver_rows(connection, statement, (masked_plan, *params, limit))]
    return [_stored(row, raw) for row in driver_rows(connection, f"SELECT {_SELECTED} {where}", (*params, limit))]


def departures(
    connection: Connection | DriverConnection, business: str, prefix: str, after_seq: int, limit: int
) -> list[StoredRecord]:
    """Records of ``business`` that moved out of the region range ``prefix`` (to a region outside
    it) with a change sequence above ``after_seq``, as ``departed`` rows in sequence order."""
    lower, upper = _prefix_bounds(prefix)
    statement = (
        "SELECT record_key, old_region, seq, at FROM region_departures WHERE business = ? AND seq > ? "
        "AND old_region >= ? AND old_region < ? AND NOT (new_region >= ? AND new_region < ?) ORDER BY seq LIMIT ?"
    )
    rows = driver_rows(connection, statement, (business, after_seq, lower, upper, lower, upper, limit))
    return [StoredRecord(key, region, "", {}, True, at, "", int(seq), departed=True) for key, region, seq, at in rows]


def changes_to_send(
    connection: Connection, business: str, after_seq: int, limit: int, *, not_changed_by: str, raw: bool = False
) -> list[StoredRecord]:
    """The changes of ``business`` after ``after_seq`` in sequence order (tombstones included), but
    those last written by an identity starting with ``not_changed_by`` (records pulled from the
    parent go no further up): what an upward sync link sends next. ``raw`` as for ``select_records``
    (live records' JSON text, where the dialect keeps it)."""
    statement = (
        f"SELECT {_SELECTED} FROM records WHERE business = ? AND seq > ? "  # noqa: S608 - fixed names, bound values
        "AND changed_by NOT LIKE ? ORDER BY seq LIMIT ?"
    )
    rows = connection.exec_driver_sql(
        dialect_of(connection).driver_sql(statement), (business, after_seq, _like_prefix(not_changed_by), limit)
    )
    keep_text = raw and dialect_of(connection).keeps_document_text
    return [_stored(row, keep_text) for row in rows]


def count_changes_to_send(connection: Connection, business: str, after_seq: int, *, not_changed_by: str) -> int:
    """How many changes ``changes_to_send`` would still deliver (its lag in changes)."""
    statement = "SELECT count(*) FROM records WHERE business = ? AND seq > ? AND changed_by NOT LIKE ?"
    return int(
        connection.exec_driver_sql(
            dialect_of(connection).driver_sql(statement), (business, after_seq, _like_prefix(not_changed_by))
        ).scalar_one()
    )


def oldest_change_to_send(connection: Connection, business: str, after_seq: int, *, not_changed_by: str) -> str | None:
    """When the oldest change still to send was made (``changed_at``), or None if none is waiting."""
    statement = (
        "SELECT changed_at FROM records WHERE business = ? AND seq > ? AND changed_by NOT LIKE ? ORDER BY seq LIMIT 1"
    )
    return connection.exec_driver_sql(
        dialect_of(connection).driver_sql(statement), (business, after_seq, _like_prefix(not_changed_by))
    ).scalar_one_or_none()


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern for texts starting with ``prefix`` (which holds no wildcard)."""
    if any(character in prefix for character in "%_\\"):
        raise ValueError(f"{prefix!r} holds a LIKE wildcard")
    return prefix + "%"


@dataclass(frozen=True, slots=True)
class RecordVersion:
    """One version of a record: as stored, with who made it, when, how and through which request."""

    key: str
    region: str
    data: dict[str, Any]
    deleted: bool
    deleted_at: str | None
    source_appid: str
    changed_by: str
    changed_at: str
    seq: int
    #: The write's action ("01", "02", "03", "reassign") and ``random``; None for a version written
    #: before history was kept.
    action: str | None
    random: str | None


def versions(
    connection: Connection, business: str, key: str, region_prefix: str = "", limit: int = 1000
) -> list[RecordVersion]:
    """The record's versions, newest first: the current one and those later changes replaced, the
    ones whose region lies inside ``region_prefix`` only; at most ``limit``."""
    columns = (
        "record_key",
        "region",
        "data",
        "deleted",
        "deleted_at",
        "source_appid",
        "changed_by",
        "changed_at",
        "seq",
    )
    found: list[Any] = []
    for table in (records, record_versions):
        statement = (
            sa.select(*(table.c[name] for name in columns))
            .where(table.c.business == business, table.c.record_key == key)
            .order_by(table.c.seq.desc())
            .limit(limit)
        )
        if region_prefix:
            upper = region_prefix[:-1] + chr(ord(region_prefix[-1]) + 1)
            statement = statement.where(table.c.region >= region_prefix, table.c.region < upper)
        found.extend(connection.execute(statement))
    found.sort(key=lambda row: int(row.seq), reverse=True)
    found = found[:limit]
    result = []
    for row in found:
        change = connection.execute(
            sa.select(record_changes.c.action, record_changes.c.random, record_changes.c.last_seq)
            .where(record_changes.c.first_seq <= row.seq)
            .order_by(record_changes.c.first_seq.desc())
            .limit(1)
        ).first()
        covered = change is not None and int(change.last_seq) >= int(row.seq)
        data = row.data
        result.append(
            RecordVersion(
                key=row.record_key,
                region=row.region,
                data=orjson.loads(data) if isinstance(data, str | bytes) else dict(data),
                deleted=bool(row.deleted),
                deleted_at=row.deleted_at,
                source_appid=row.source_appid,
                changed_by=row.changed_by,
                changed_at=row.changed_at,
                seq=int(row.seq),
                action=change.action if covered and change is not None else None,
                random=change.random if covered and change is not None else None,
            )
        )
    return result
