"""Business records, one row per (business type, primary key), and the change feed over them.

Every write assigns each changed row the next change sequence (``seq``) in the same transaction.
Writers lock the single ``change_counter`` row before anything else, so sequences are handed out
in commit order: a reader that has seen ``seq = n`` never later finds a new row below ``n``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tzsb.store.engine import driver_sql
from tzsb.store.schema import change_counter, records


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
    #: Keyset position: ``(region, key)`` normally, ``(seq,)`` in change-feed mode.
    after: tuple[str, str] | tuple[int] | None = None
    limit: int = 100


def lock_change_counter(connection: Connection) -> int:
    """Take the writers' lock (row lock on PostgreSQL) and return the last sequence handed out."""
    statement = sa.select(change_counter.c.last_seq).where(change_counter.c.id == 1).with_for_update()
    return int(connection.execute(statement).scalar_one())


def try_lock_change_counter(connection: Connection) -> int | None:
    """``lock_change_counter`` if no other writer holds the lock now (PostgreSQL: SKIP LOCKED), else None."""
    statement = sa.select(change_counter.c.last_seq).where(change_counter.c.id == 1).with_for_update(skip_locked=True)
    last_seq = connection.execute(statement).scalar_one_or_none()
    return None if last_seq is None else int(last_seq)


def last_change(connection: Connection) -> int:
    """The last change sequence handed out, as the connection's transaction sees it (no lock)."""
    return int(connection.exec_driver_sql("SELECT last_seq FROM change_counter WHERE id = 1").scalar_one())


def store_change_counter(connection: Connection, last_seq: int) -> None:
    connection.execute(sa.update(change_counter).where(change_counter.c.id == 1).values(last_seq=last_seq))


#: The columns every read of records selects, in the order ``_stored`` unpacks them.
_SELECTED = "record_key, region, updated_at, data, deleted, deleted_at, source_appid, seq"


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


#: The stored rows for a list of keys: one array parameter and one primary-key probe per key.
#: PostgreSQL: psycopg scans a statement's text for markers in Python (1 ms for 1,000), and LIMIT 1
#: keeps the planner from turning the lateral join into a scan: for ``record_key = ANY(%s)`` it chose
#: to read every row of the business type, a cost that grows with the table (11 ms for 1,000 keys
#: among 25,000 rows, against 3.6 ms probing). SQLite: binding an ``IN`` list of 1,000 markers cost
#: more than the look-up (0.67 against 0.37 ms), and CROSS JOIN keeps the keys outside.
FETCH_ON_POSTGRESQL = (
    f"SELECT {_SELECTED} FROM unnest(CAST(%s AS text[])) AS wanted(key) CROSS JOIN LATERAL "  # noqa: S608
    "(SELECT * FROM records WHERE business = %s AND record_key = wanted.key LIMIT 1) AS records"
)
FETCH_ON_SQLITE = (
    f"SELECT {_SELECTED} FROM json_each(CAST(? AS TEXT)) AS wanted CROSS JOIN records "  # noqa: S608
    "ON records.business = ? AND records.record_key = wanted.value"
)


def fetch(connection: Connection, business: str, keys: Iterable[str]) -> dict[str, StoredRecord]:
    """The stored rows (deleted ones included) for ``keys``, by key (plain SQL to the driver)."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    if connection.dialect.name == "sqlite":
        rows = connection.exec_driver_sql(FETCH_ON_SQLITE, (orjson.dumps(wanted), business))
    else:
        rows = connection.exec_driver_sql(FETCH_ON_POSTGRESQL, (wanted, business))
    return {row[0]: _stored(row) for row in rows}


def live_keys_statement(dialect: str, region_prefix: str = "") -> str:
    """``live_keys``'s SQL: one primary-key probe per wanted key (as ``FETCH_ON_POSTGRESQL``), the
    region range applied to what the probes find. Markers: the keys (one JSON array on SQLite, one
    array on PostgreSQL), the business type, then the region range's bounds if there is a prefix."""
    if dialect == "sqlite":
        # CROSS JOIN keeps the keys outside: SQLite would otherwise weigh a scan of the region's
        # range against the probes, without statistics to weigh them by.
        statement = (
            "SELECT found.record_key FROM json_each(CAST(? AS TEXT)) AS wanted CROSS JOIN records AS found "
            "ON found.business = ? AND found.record_key = wanted.value WHERE found.deleted = 0"
        )
        return statement + (" AND found.region >= ? AND found.region < ?" if region_prefix else "")
    statement = (
        "SELECT found.record_key FROM unnest(CAST(%s AS text[])) AS wanted(key) CROSS JOIN LATERAL "
        "(SELECT record_key, region, deleted FROM records WHERE business = %s AND record_key = wanted.key LIMIT 1) "
        "AS found WHERE NOT found.deleted"
    )
    return statement + (" AND found.region >= %s AND found.region < %s" if region_prefix else "")


def live_keys(connection: Connection, business: str, keys: Iterable[str], region_prefix: str = "") -> set[str]:
    """Which of ``keys`` the business type holds as live (not deleted) records inside a region.

    SQLAlchemy's expansion of a 1,000-key ``IN`` list cost more than the look-up, and on PostgreSQL
    the planner answered it by reading the region's whole range (13 ms for 1,000 keys among 25,000
    rows, growing with the table).
    """
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return set()
    dialect = connection.dialect.name
    parameters: tuple[Any, ...] = (orjson.dumps(wanted) if dialect == "sqlite" else wanted, business)
    if region_prefix:
        parameters += _prefix_bounds(region_prefix)
    statement = live_keys_statement(dialect, region_prefix)
    return {key for (key,) in connection.exec_driver_sql(statement, parameters)}


#: Column order of the rows ``insert`` takes.
INSERT_COLUMNS = (
    "business",
    "record_key",
    "region",
    "updated_at",
    "data",
    "deleted",
    "deleted_at",
    "deleted_by",
    "source_appid",
    "changed_by",
    "changed_at",
    "seq",
)
#: A new row in ``INSERT_COLUMNS`` order; ``data`` is the document as compact JSON text (``document``).
NewRow = tuple[str, str, str, str, str, bool, str | None, str | None, str, str, str, int]


def document(data: Mapping[str, Any]) -> str:
    """A record as the JSON text the store keeps (and raw reads splice into answers unparsed)."""
    return orjson.dumps(data).decode("utf-8")


def insert(connection: Connection, rows: Sequence[NewRow]) -> None:
    """Insert new rows, straight to the driver, inside the caller's transaction.

    SQLite: one executemany. PostgreSQL: COPY (psycopg's executemany costs ~50 µs a row in Python).
    SQLAlchemy's per-row parameter processing was most of the cost of a 1,000-record add.
    """
    if not rows:
        return
    columns = ", ".join(INSERT_COLUMNS)
    if connection.dialect.name == "sqlite":
        markers = ", ".join("?" for _ in INSERT_COLUMNS)
        connection.exec_driver_sql(f"INSERT INTO records ({columns}) VALUES ({markers})", list(rows))  # noqa: S608 - fixed names
        return
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(f"COPY records ({columns}) FROM STDIN") as copy:  # type: ignore[union-attr]
        for row in rows:
            copy.write_row(row)


@dataclass(frozen=True, slots=True)
class NewRecords:
    """Records new to the store, added by one app in one write, with their change sequences."""

    business: str
    key_field: str
    region_field: str
    timestamp_field: str
    records: Sequence[Mapping[str, Any]]
    seqs: Sequence[int]
    appid: str
    now: str

    def rows(self) -> list[NewRow]:
        return [
            (self.business, str(record[self.key_field]), record[self.region_field], record[self.timestamp_field],
             document(record), False, None, None, self.appid, self.appid, self.now, seq)
            for seq, record in zip(self.seqs, self.records, strict=True)
        ]  # fmt: skip


#: SQLite: the new rows of a batch in one statement over one JSON array of the documents. The
#: sqlite3 module binds 12 parameters per row of an executemany in Python and takes the GIL back
#: for every row; this binds 7 in all and leaves the GIL while SQLite parses and inserts.
#: json_each gives each element's text exactly as orjson wrote it (compact, strings verbatim). The
#: arrays go in as orjson's bytes, cast to text: SQLite 3.45 and later read a BLOB as binary JSONB.
#: Key, region and timestamp come from a second, small array of [key, region, timestamp] joined by
#: position: json_extract on each document parsed all of it again (a third of the statement's time).
#: MATERIALIZED and CROSS JOIN fix the plan: the documents scanned once, the fields found through
#: an automatic index (the other way round, json_each would be scanned once per document).
_INSERT_FROM_ARRAYS = (
    "WITH fields(position, record_key, region, updated_at) AS MATERIALIZED ("  # noqa: S608 - fixed names
    "SELECT key, json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]') "
    "FROM json_each(CAST(? AS TEXT))) "
    f"INSERT INTO records ({', '.join(INSERT_COLUMNS)}) "
    "SELECT ?, fields.record_key, fields.region, fields.updated_at, documents.value, 0, NULL, NULL, ?, ?, ?, "
    "? + documents.key FROM json_each(CAST(? AS TEXT)) AS documents "
    "CROSS JOIN fields ON fields.position = documents.key"
)
#: The same for SQLite before 3.35 (no MATERIALIZED): the fields read out of each document.
_INSERT_FROM_ARRAY = (
    f"INSERT INTO records ({', '.join(INSERT_COLUMNS)}) "  # noqa: S608 - fixed names
    "SELECT ?, json_extract(value, ?), json_extract(value, ?), json_extract(value, ?), value, 0, NULL, NULL, "
    "?, ?, ?, ? + key FROM json_each(CAST(? AS TEXT))"
)
_MATERIALIZED_SINCE = (3, 35, 0)


def _plain_texts(values: list[Any]) -> bool:
    """All strings, none holding NUL (checked per column in C: a per-value test cost 1 ms a batch)."""
    return set(map(type, values)) == {str} and "\x00" not in "".join(values)


def _one_statement(connection: Connection, new: NewRecords) -> tuple[str, tuple[Any, ...]] | None:
    """The statement inserting ``new`` at once and its parameters, or None when it must go row by row."""
    if connection.dialect.name != "sqlite":
        return None
    first = new.seqs[0]
    # The statement numbers the rows first, first + 1, …: only for one run of sequences (a batch
    # that also changes stored records may interleave them). json_extract hands back exactly what
    # the record holds only for strings without NUL (a number comes back as SQLite formats it, and
    # a string ends at its first NUL).
    fields = (new.key_field, new.region_field, new.timestamp_field)
    columns = [[record.get(field) for record in new.records] for field in fields]
    if new.seqs[-1] - first != len(new.seqs) - 1 or not all(map(_plain_texts, columns)):
        return None
    try:
        documents = orjson.dumps(new.records)
    except orjson.JSONEncodeError:
        return None  # a record at orjson's depth limit, one level deeper inside the array: row by row
    constants = (new.appid, new.appid, new.now, first, documents)
    if _joins_fields(connection):
        return _INSERT_FROM_ARRAYS, (orjson.dumps(list(zip(*columns, strict=True))), new.business, *constants)
    paths = [f'$."{field}"' for field in fields]
    return _INSERT_FROM_ARRAY, (new.business, *paths, *constants)


def _joins_fields(connection: Connection) -> bool:
    version = connection.dialect.server_version_info
    return version is not None and tuple(version) >= _MATERIALIZED_SINCE


def insert_new(connection: Connection, new: NewRecords) -> None:
    """Insert records new to the store, inside the caller's transaction (no block to overlap: the
    statement runs in the caller's thread)."""
    if not new.records:
        return
    statement = _one_statement(connection, new)
    if statement is None:
        insert(connection, new.rows())
    else:
        connection.exec_driver_sql(*statement)


@contextmanager
def inserting(connection: Connection, new: NewRecords) -> Iterator[None]:
    """Insert records new to the store, inside the caller's transaction, while the caller's block runs.

    SQLite: the one statement runs in a thread of its own, without the GIL, so the block's Python
    work (validating the same batch) overlaps it. PostgreSQL: the rows are streamed by COPY before
    the block runs and the server works through them meanwhile. When the block ends the insert has
    finished; an error of the block wins over one of the insert (the transaction rolls back either
    way), and the connection is never left with a statement still running.
    """
    if not new.records:
        yield
        return
    failures: list[BaseException] = []
    try:
        statement = _one_statement(connection, new)
        rows = new.rows() if statement is None else []
    except Exception as exc:  # a record that cannot be stored (the caller's validation usually says why)
        failures.append(exc)
        statement, rows = None, []
    driver: Any = connection.connection.driver_connection
    if failures:
        pass
    elif connection.dialect.name != "sqlite":
        with driver.cursor() as cursor, cursor.copy(f"COPY records ({', '.join(INSERT_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
            yield
        return
    elif statement is None:
        try:
            insert(connection, rows)
        except Exception as exc:  # raised after the caller's block, whose own refusal comes first
            failures.append(exc)
    else:
        sql, parameters = statement
        started = threading.Event()

        def run() -> None:
            started.set()
            try:
                driver.execute(sql, parameters)
            except BaseException as exc:  # raised in the caller's thread below
                failures.append(exc)

        worker = threading.Thread(target=run, name="tzsb-insert", daemon=True)
        worker.start()
        # Waiting here hands the GIL to the new thread, which keeps it only until SQLite starts.
        started.wait()
        try:
            yield
        finally:
            worker.join()
        if failures:
            raise failures[0]
        return
    yield
    if failures:
        raise failures[0]


def update(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Replace existing rows; each dict has ``business`` and ``record_key`` plus the new values."""
    if not rows:
        return
    statement = (
        sa.update(records)
        .where(
            records.c.business == sa.bindparam("b_business"),
            records.c.record_key == sa.bindparam("b_record_key"),
        )
        .values(
            region=sa.bindparam("region"),
            updated_at=sa.bindparam("updated_at"),
            data=sa.bindparam("data"),
            deleted=sa.bindparam("deleted"),
            deleted_at=sa.bindparam("deleted_at"),
            deleted_by=sa.bindparam("deleted_by"),
            changed_by=sa.bindparam("changed_by"),
            changed_at=sa.bindparam("changed_at"),
            seq=sa.bindparam("seq"),
        )
    )
    connection.execute(
        statement,
        [{"b_business": row["business"], "b_record_key": row["record_key"], **row} for row in rows],
    )


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


def select_records(connection: Connection, query: RecordQuery, *, raw: bool = False) -> list[StoredRecord]:
    """Run a query; returns at most ``query.limit`` rows after the keyset position.

    ``raw`` (SQLite only, where the document is stored as the compact text the node wrote) returns
    each live record's JSON text instead of parsing it; tombstones are parsed as usual.

    Plain SQL to the driver: a page is one or two index range scans, and building, caching and
    processing SQLAlchemy statements and rows cost more than the scans themselves.

    Region conditions are reduced before they reach SQL: nested prefixes (the caller's scope and
    ``_region``) to the narrowest one, and a prefix to nothing where the region is pinned by an
    equality. SQLite, without statistics, took a region range beside ``region = ? AND record_key > ?``
    as reason to walk the primary-key index from that key on: a scan of every later key, which
    turned each keyset page into a scan of the whole table.
    """
    sqlite = connection.dialect.name == "sqlite"
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
        if sqlite:
            add("CAST(json_extract(data, ?) AS TEXT) = ?", f'$."{field}"', value)
        else:
            add("(data ->> ?) = ?", field, value)
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
        add("seq > ?", query.since)
        if query.after is not None:
            add("seq > ?", query.after[0])
        return _run(connection, conditions, params, "seq", query.limit, raw and sqlite)
    if not query.include_deleted:
        add("deleted = ?", False)
    order = "region, record_key"
    if query.after is None:
        return _run(connection, [*conditions, *ranged], [*params, *range_params], order, query.limit, raw and sqlite)
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
        return _run(connection, rest, rest_params, order, query.limit, raw and sqlite)
    found: list[StoredRecord] = []
    if region.startswith(prefix):
        same_region = [*conditions, "region = ? AND record_key > ?"]
        found = _run(connection, same_region, [*params, region, key], order, query.limit, raw and sqlite)
    if len(found) < query.limit:
        later = [*conditions, "region > ?", *ranged]
        later_params = [*params, region, *range_params]
        found += _run(connection, later, later_params, order, query.limit - len(found), raw and sqlite)
    return found


def _run(
    connection: Connection, conditions: list[str], params: list[Any], order: str, limit: int, raw: bool
) -> list[StoredRecord]:
    statement = f"SELECT {_SELECTED} FROM records WHERE {' AND '.join(conditions)} ORDER BY {order} LIMIT ?"  # noqa: S608 - fixed names, bound values
    return [
        _stored(row, raw) for row in connection.exec_driver_sql(driver_sql(connection, statement), (*params, limit))
    ]
