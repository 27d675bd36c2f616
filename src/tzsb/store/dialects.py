"""What differs between SQLite and PostgreSQL, held by one object per dialect.

Owns no table. The table modules never ask which database they run on: they ask the connection's
``Dialect`` (``dialect_of``) for the statement, parameter shape or mechanism that differs, and
every such difference is an attribute or method here. The dialect is chosen once per engine (by
``open_store``, from the URL; by ``Store`` and ``dialect_of``, from the engine's own dialect).
"""

from __future__ import annotations

import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

#: How long a SQLite writer waits for another process's write transaction before giving up.
BUSY_TIMEOUT_SECONDS = 10.0
#: Pages (4 KiB) the write-ahead log may reach before a writer checkpoints it itself: only when the
#: background checkpointer falls behind or is stopped.
WAL_AUTOCHECKPOINT_PAGES = 16384

#: The columns every read of records selects, in the order ``records_read`` unpacks them.
RECORD_COLUMNS: Final = "record_key, region, updated_at, data, deleted, deleted_at, source_appid, seq"

#: The stored rows for a list of keys: one array parameter and one primary-key probe per key.
#: PostgreSQL: psycopg scans a statement's text for markers in Python (1 ms for 1,000), and LIMIT 1
#: keeps the planner from turning the lateral join into a scan: for ``record_key = ANY(%s)`` it chose
#: to read every row of the business type, a cost that grows with the table (11 ms for 1,000 keys
#: among 25,000 rows, against 3.6 ms probing). SQLite: binding an ``IN`` list of 1,000 markers cost
#: more than the look-up (0.67 against 0.37 ms), and CROSS JOIN keeps the keys outside.
FETCH_ON_POSTGRESQL: Final = (
    f"SELECT {RECORD_COLUMNS} FROM unnest(CAST(%s AS text[])) AS wanted(key) CROSS JOIN LATERAL "  # noqa: S608
    "(SELECT * FROM records WHERE business = %s AND record_key = wanted.key LIMIT 1) AS records"
)
FETCH_ON_SQLITE: Final = (
    f"SELECT {RECORD_COLUMNS} FROM json_each(CAST(? AS TEXT)) AS wanted CROSS JOIN records "  # noqa: S608
    "ON records.business = ? AND records.record_key = wanted.value"
)


#: Connections a store keeps open, and how many more it opens for a burst (closed again after it).
#: uvicorn's worker threads answer up to 40 requests at once; 24 kept covers the usual load. With
#: SQLAlchemy's default (5) each connection past it was opened (PRAGMAs and all) and closed again
#: per request: 16 % of a 04-by-key server's time under 16 connections (py-spy).
POOL_SIZE: Final = 24
POOL_OVERFLOW: Final = 24


class Dialect(ABC):
    """One database's way of doing what the store needs; the store holds one per engine."""

    #: SQLAlchemy's name of the dialect.
    name: ClassVar[str]
    #: A cursor is kept per connection and reused (``driver_cursor``): building one costs the driver.
    keeps_cursors: ClassVar[bool]
    #: One writer at a time (SQLite): writers of a process queue on the Store's lock instead of
    #: failing with ``database is locked``. Else writers serialise on the change-counter row.
    single_writer: ClassVar[bool]
    #: Each document is kept as the compact JSON text the node wrote, so a read may hand it back
    #: unparsed (``select_records(raw=True)``); PostgreSQL's jsonb keeps a form of its own.
    keeps_document_text: ClassVar[bool]
    #: New records may go in by one statement over a JSON array (``records_written._one_statement``).
    inserts_from_json_array: ClassVar[bool]
    #: Execution options of a writer's connection.
    writer_options: ClassVar[Mapping[str, Any]]
    #: ``FETCH_ON_…``: the stored rows for one array of keys (``text_array``) and a business type.
    fetch_records: ClassVar[str]
    #: A statement run before ``natural_key_holders`` in the same transaction, if any.
    natural_key_setup: ClassVar[str | None] = None

    @abstractmethod
    def engine_defaults(self) -> dict[str, Any]:
        """Engine options this dialect wants unless the caller gives its own."""

    def configure(self, engine: Engine) -> None:  # noqa: B027 - a hook most dialects leave alone
        """Prepare a new engine's connections (nothing to do unless a dialect says otherwise)."""

    def is_file_database(self, url: sa.URL) -> bool:
        """Whether ``url`` names a database file this process writes itself (WAL checkpoints, file lock)."""
        return False

    @abstractmethod
    def size_bytes(self, connection: Connection, url: sa.URL) -> int:
        """The database's size on disk."""

    def snapshot(self, connection: Connection) -> Connection:
        """``connection`` set up so that a transaction on it sees one committed state throughout."""
        return connection

    @contextmanager
    def single_statement(self, driver: Any) -> Iterator[None]:
        """The DB-API connection ``driver`` set to run one statement with no transaction around it
        (``Store.read_statement``), and set back afterwards. SQLite's connections already are:
        the node issues BEGIN itself (``_configure_sqlite``)."""
        yield

    @abstractmethod
    def driver_sql(self, statement: str) -> str:
        """``statement``, written with ``?`` markers, in the driver's own marker style."""

    @abstractmethod
    def text_array(self, values: Sequence[str]) -> Any:
        """The one parameter that binds a list of texts (``wanted`` in the key-probing statements)."""

    @abstractmethod
    def live_keys_statement(self, region_prefix: str = "") -> str:
        """``records_read.live_keys``'s SQL. Markers: the keys (``text_array``), the business type,
        then the region range's bounds if there is a prefix."""

    @abstractmethod
    def document_text_equals(self, field: str, value: str) -> tuple[str, tuple[Any, ...]]:
        """A condition (``?`` markers) and its parameters: the record's ``field``, as text, is ``value``."""

    @abstractmethod
    def natural_key_index(self, name: str, business: str, fields: Sequence[str]) -> str:
        """``CREATE INDEX IF NOT EXISTS name`` on the live records of ``business`` by their value of the
        natural key ``fields`` (the texts joined by U+001F), for ``natural_key_holders``. ``business``
        and ``fields`` are written into the statement: the caller checks they are plain codes."""

    @abstractmethod
    def natural_key_holders(self, position: int, business: str, fields: Sequence[str], limit: int) -> str:
        """A SELECT of ``(position, value, record_key, region, source_appid)``: for each wanted value,
        up to ``limit`` live records of ``business`` holding it as their natural key ``fields``, found
        through ``natural_key_index``. Marker: the values (``text_array``)."""

    @abstractmethod
    def newest_holders(self, business: str, field: str, newest_by: Sequence[str]) -> str:
        """A SELECT of ``(value, record_key, region, source_appid, data)``: for each wanted value, the
        live record of ``business`` whose ``field`` holds it with the greatest ``newest_by`` values (then
        the latest stored), found through ``natural_key_index`` of ``[field]``. Marker: the values."""

    @abstractmethod
    def record_index_names(self) -> str:
        """A SELECT of the names of the indexes of ``records``."""

    @abstractmethod
    def insert_ignoring_conflict(self, into: str, values: str) -> str:
        """``INSERT INTO {into} VALUES {values}`` that does nothing when the row's key is taken (``?`` markers)."""

    @abstractmethod
    def insert_rows(self, connection: Connection, table: str, columns: Sequence[str], rows: Sequence[Any]) -> None:
        """Insert ``rows`` (tuples in ``columns`` order) straight to the driver, in the caller's transaction."""

    @abstractmethod
    @contextmanager
    def inserting_rows(
        self, connection: Connection, table: str, columns: Sequence[str], rows: Sequence[Any]
    ) -> Iterator[None]:
        """Insert ``rows`` while the caller's block runs; finished when the block ends. An error of the
        block wins over one of the insert (the transaction rolls back either way)."""


class SQLiteDialect(Dialect):
    name = "sqlite"
    keeps_cursors = False
    single_writer = True
    keeps_document_text = True
    inserts_from_json_array = True
    writer_options: ClassVar[Mapping[str, Any]] = {"sqlite_begin": "BEGIN IMMEDIATE"}
    fetch_records = FETCH_ON_SQLITE

    def engine_defaults(self) -> dict[str, Any]:
        return {"connect_args": {"check_same_thread": False}}

    def configure(self, engine: Engine) -> None:
        sa.event.listen(engine, "connect", _configure_sqlite)
        sa.event.listen(engine, "begin", _begin_sqlite)

    def is_file_database(self, url: sa.URL) -> bool:
        return (url.database or ":memory:") != ":memory:"

    def size_bytes(self, connection: Connection, url: sa.URL) -> int:
        # The file and its write-ahead log (the pages not yet checkpointed into it).
        if not self.is_file_database(url):
            return 0
        files = [Path(str(url.database)), Path(f"{url.database}-wal")]
        return sum(path.stat().st_size for path in files if path.exists())

    def driver_sql(self, statement: str) -> str:
        return statement

    def text_array(self, values: Sequence[str]) -> Any:
        # One JSON array, read by json_each: orjson's bytes, cast to text in the statement.
        return orjson.dumps(values)

    def live_keys_statement(self, region_prefix: str = "") -> str:
        # CROSS JOIN keeps the keys outside: SQLite would otherwise weigh a scan of the region's
        # range against the probes, without statistics to weigh them by.
        statement = (
            "SELECT found.record_key FROM json_each(CAST(? AS TEXT)) AS wanted CROSS JOIN records AS found "
            "ON found.business = ? AND found.record_key = wanted.value WHERE found.deleted = 0"
        )
        return statement + (" AND found.region >= ? AND found.region < ?" if region_prefix else "")

    def document_text_equals(self, field: str, value: str) -> tuple[str, tuple[Any, ...]]:
        return "CAST(json_extract(data, ?) AS TEXT) = ?", (f'$."{field}"', value)

    def natural_key_index(self, name: str, business: str, fields: Sequence[str]) -> str:
        # Partial (one business type, live records only): other types' records cost nothing, and a
        # delete takes the record out of the index.
        return (
            f"CREATE INDEX IF NOT EXISTS {name} ON records ({_sqlite_natural_key(fields)}) "
            f"WHERE business = '{business}' AND deleted = 0"
        )

    def natural_key_holders(self, position: int, business: str, fields: Sequence[str], limit: int) -> str:
        # The index is used only when the statement repeats its expression and its WHERE terms
        # literally (SQLite proves a partial index usable from literals, not from bound values). The
        # correlated subquery bounds the records per value: a value thousands of records share (junk,
        # or one 使用登记证 for a unit's cylinders) must not multiply into a huge answer.
        return (
            f"SELECT {position}, wanted.value, found.record_key, found.region, found.source_appid "  # noqa: S608
            "FROM json_each(CAST(? AS TEXT)) AS wanted CROSS JOIN records AS found "
            f"WHERE found.rowid IN (SELECT rowid FROM records WHERE business = '{business}' AND deleted = 0 "
            f"AND {_sqlite_natural_key(fields)} = wanted.value LIMIT {int(limit)})"
        )

    def newest_holders(self, business: str, field: str, newest_by: Sequence[str]) -> str:
        # As natural_key_holders: the index is used when its expression and WHERE terms appear literally.
        order = "".join(f"json_extract(data, '$.\"{code}\"') DESC, " for code in newest_by)
        return (
            "SELECT wanted.value, found.record_key, found.region, found.source_appid, found.data "  # noqa: S608
            "FROM json_each(CAST(? AS TEXT)) AS wanted CROSS JOIN records AS found "
            f"WHERE found.rowid = (SELECT rowid FROM records WHERE business = '{business}' AND deleted = 0 "
            f"AND {_sqlite_natural_key([field])} = wanted.value ORDER BY {order}updated_at DESC, seq DESC LIMIT 1)"
        )

    def record_index_names(self) -> str:
        return "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records'"

    def insert_ignoring_conflict(self, into: str, values: str) -> str:
        return f"INSERT OR IGNORE INTO {into} VALUES {values}"  # noqa: S608 - fixed names, bound values

    def insert_rows(self, connection: Connection, table: str, columns: Sequence[str], rows: Sequence[Any]) -> None:
        # One executemany of plain SQL: SQLAlchemy's per-row parameter processing was most of the
        # cost of a 1,000-record add.
        markers = ", ".join("?" for _ in columns)
        connection.exec_driver_sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({markers})", list(rows))  # noqa: S608 - fixed names

    @contextmanager
    def inserting_rows(
        self, connection: Connection, table: str, columns: Sequence[str], rows: Sequence[Any]
    ) -> Iterator[None]:
        # Nothing to overlap: the rows go in before the block, and a failure is raised after it,
        # so that the block's own refusal comes first.
        failure: Exception | None = None
        try:
            self.insert_rows(connection, table, columns, rows)
        except Exception as exc:
            failure = exc
        yield
        if failure is not None:
            raise failure


class PostgreSQLDialect(Dialect):
    name = "postgresql"
    keeps_cursors = True
    single_writer = False
    keeps_document_text = False
    inserts_from_json_array = False
    writer_options: ClassVar[Mapping[str, Any]] = {}
    fetch_records = FETCH_ON_POSTGRESQL
    #: The planner has no statistics for a partial index's expression: it guesses 100 records per
    #: probe, and a 1,000-record batch's three keys then cost enough to be compiled by JIT (0.17 s
    #: against 12 ms for 1,000 values of each of three keys among 20,000 analysed records). The plan
    #: itself stays one index probe per value (LATERAL … LIMIT).
    natural_key_setup = "SET LOCAL jit = off"

    def size_bytes(self, connection: Connection, url: sa.URL) -> int:
        return int(connection.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one())

    def engine_defaults(self) -> dict[str, Any]:
        # No ping at every check-out (a round trip before each of a request's transactions): see
        # ``configure``.
        return {"pool_pre_ping": False}

    def configure(self, engine: Engine) -> None:
        sa.event.listen(engine, "checkout", _ping_if_idle)
        sa.event.listen(engine, "checkin", _note_returned)

    @contextmanager
    def single_statement(self, driver: Any) -> Iterator[None]:
        # Autocommit for the one statement: no BEGIN before it and no ROLLBACK when the connection
        # goes back to the pool (psycopg sends each as a round trip of its own). Set on the client
        # only: no round trip.
        driver.autocommit = True
        try:
            yield
        finally:
            try:
                driver.autocommit = False
            except Exception:
                # Never back to the pool in autocommit (later transactions on it would not be atomic):
                # closed, the pool discards it at check-in.
                driver.close()

    def snapshot(self, connection: Connection) -> Connection:
        # Its default, READ COMMITTED, takes a new snapshot per statement.
        return connection.execution_options(isolation_level="REPEATABLE READ")

    def driver_sql(self, statement: str) -> str:
        return statement.replace("?", "%s")

    def text_array(self, values: Sequence[str]) -> Any:
        return list(values)

    def live_keys_statement(self, region_prefix: str = "") -> str:
        statement = (
            "SELECT found.record_key FROM unnest(CAST(%s AS text[])) AS wanted(key) CROSS JOIN LATERAL "
            "(SELECT record_key, region, deleted FROM records WHERE business = %s AND record_key = wanted.key LIMIT 1) "
            "AS found WHERE NOT found.deleted"
        )
        return statement + (" AND found.region >= %s AND found.region < %s" if region_prefix else "")

    def document_text_equals(self, field: str, value: str) -> tuple[str, tuple[Any, ...]]:
        return "(data ->> ?) = ?", (field, value)

    def natural_key_index(self, name: str, business: str, fields: Sequence[str]) -> str:
        # The first 200 characters only: a B-tree entry may not exceed about 2,700 bytes, and a value
        # longer than its catalog length (a length rule made a warning) must not fail the insert.
        return (
            f"CREATE INDEX IF NOT EXISTS {name} ON records "
            f"((left({_postgresql_natural_key(fields)}, {_INDEXED_CHARACTERS}))) "
            f"WHERE business = '{business}' AND NOT deleted"
        )

    def natural_key_holders(self, position: int, business: str, fields: Sequence[str], limit: int) -> str:
        # LIMIT keeps the planner on one index probe per value (as in FETCH_ON_POSTGRESQL) and bounds
        # the records per value; the full value is compared after the indexed prefix.
        value = _postgresql_natural_key(fields)
        return (
            f"SELECT {position}, wanted.value, found.record_key, found.region, found.source_appid "  # noqa: S608
            "FROM unnest(CAST(%s AS text[])) AS wanted(value) CROSS JOIN LATERAL "
            f"(SELECT record_key, region, source_appid FROM records WHERE business = '{business}' AND NOT deleted "
            f"AND left({value}, {_INDEXED_CHARACTERS}) = left(wanted.value, {_INDEXED_CHARACTERS}) "
            f"AND {value} = wanted.value LIMIT {int(limit)}) AS found"
        )

    def newest_holders(self, business: str, field: str, newest_by: Sequence[str]) -> str:
        value = _postgresql_natural_key([field])
        order = "".join(f"(data ->> '{code}') DESC NULLS LAST, " for code in newest_by)
        return (
            "SELECT wanted.value, found.record_key, found.region, found.source_appid, found.data "  # noqa: S608
            "FROM unnest(CAST(%s AS text[])) AS wanted(value) CROSS JOIN LATERAL "
            f"(SELECT record_key, region, source_appid, data FROM records WHERE business = '{business}' "
            f"AND NOT deleted AND left({value}, {_INDEXED_CHARACTERS}) = left(wanted.value, {_INDEXED_CHARACTERS}) "
            f"AND {value} = wanted.value ORDER BY {order}updated_at DESC, seq DESC LIMIT 1) AS found"
        )

    def record_index_names(self) -> str:
        return "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'records'"

    def insert_ignoring_conflict(self, into: str, values: str) -> str:
        return f"INSERT INTO {into} VALUES {values} ON CONFLICT DO NOTHING"  # noqa: S608 - fixed names, bound values

    def insert_rows(self, connection: Connection, table: str, columns: Sequence[str], rows: Sequence[Any]) -> None:
        # COPY: psycopg's executemany costs ~50 µs a row in Python.
        with self.inserting_rows(connection, table, columns, rows):
            pass

    @contextmanager
    def inserting_rows(
        self, connection: Connection, table: str, columns: Sequence[str], rows: Sequence[Any]
    ) -> Iterator[None]:
        # The rows are streamed by COPY before the block runs and the server works through them
        # meanwhile; the COPY ends (and its errors surface) when the block ends.
        driver: Any = connection.connection.driver_connection
        with driver.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
            yield


#: How much of a natural key's value PostgreSQL's index holds (characters).
_INDEXED_CHARACTERS: Final = 200


def _sqlite_natural_key(fields: Sequence[str]) -> str:
    """A record's natural-key value on SQLite: the fields' texts joined by U+001F (NULL when one is missing)."""
    return "(" + " || char(31) || ".join(f"json_extract(data, '$.\"{field}\"')" for field in fields) + ")"


def _postgresql_natural_key(fields: Sequence[str]) -> str:
    """A record's natural-key value on PostgreSQL: as ``_sqlite_natural_key``."""
    return "(" + " || chr(31) || ".join(f"(data ->> '{field}')" for field in fields) + ")"


SQLITE: Final = SQLiteDialect()
POSTGRESQL: Final = PostgreSQLDialect()
_BY_NAME: Final[dict[str, Dialect]] = {dialect.name: dialect for dialect in (SQLITE, POSTGRESQL)}


def dialect_named(name: str) -> Dialect:
    """The dialect of SQLAlchemy's dialect ``name`` (any database but SQLite is treated as PostgreSQL)."""
    return _BY_NAME.get(name, POSTGRESQL)


@dataclass(frozen=True, slots=True)
class DriverConnection:
    """A pooled connection lent to the driver alone, for exactly one read statement
    (``Store.read_statement``): no SQLAlchemy ``Connection`` is built around it."""

    driver: Any
    dialect: Dialect
    #: The pool's ``info`` of this connection (it lasts as long as the connection).
    info: dict[str, Any]


def dialect_of(bind: Connection | Engine | DriverConnection) -> Dialect:
    """The dialect of a connection or engine."""
    if isinstance(bind, DriverConnection):
        return bind.dialect
    return _BY_NAME.get(bind.dialect.name, POSTGRESQL)


def driver_sql(connection: Connection, statement: str) -> str:
    """``statement``, written with ``?`` markers, in the driver's own style (psycopg wants ``%s``)."""
    return dialect_of(connection).driver_sql(statement)


#: The pool's ``info`` key of the cursor kept for a connection (``driver_cursor``).
_KEPT_CURSOR: Final = "tzsb.cursor"
#: The most rows a kept cursor may go on holding after its block (key look-ups, claims, lock-outs).
_KEPT_RESULT_ROWS: Final = 64


@contextmanager
def driver_cursor(connection: Connection | DriverConnection) -> Iterator[Any]:
    """A cursor of the driver's own connection under ``connection``, valid inside the block.

    psycopg builds a cursor in Python: a new one per statement, with its close, cost about 18 µs,
    four or five times in a key query. One is kept per connection (in the pool's ``info`` of it) and
    reused: a connection serves one thread at a time, and each execute starts the cursor afresh.
    sqlite3's cursors cost a fraction of a microsecond: a new one each time, closed after the block.
    """
    if isinstance(connection, DriverConnection):
        driver, info = connection.driver, connection.info
    else:
        driver, info = connection.connection.driver_connection, connection.connection.info
    if not dialect_of(connection).keeps_cursors:
        cursor = driver.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
        return
    kept = info.get(_KEPT_CURSOR)
    # Checked against the driver: a connection the pool replaced must not be reached through an old cursor.
    if kept is None or kept[0] is not driver or kept[1].closed:
        kept = info[_KEPT_CURSOR] = (driver, driver.cursor())
    cursor = kept[1]
    yield cursor
    # A cursor holds its last result until its next statement: one that held a page is closed, so that
    # pooled connections do not keep pages of up to 1,000 records each between requests.
    if cursor.rowcount > _KEPT_RESULT_ROWS:
        cursor.close()
        info.pop(_KEPT_CURSOR, None)


def driver_rows(connection: Connection | DriverConnection, statement: str, parameters: Sequence[Any] = ()) -> list[Any]:
    """The rows of ``statement`` (written with ``?`` markers) run by the driver itself on
    ``connection``, in its transaction if it is in one. For the statements every request runs:
    SQLAlchemy's execution context and result set-up around even ``exec_driver_sql`` cost several
    times what SQLite takes to answer a key look-up (about 25 µs a statement against 2–3)."""
    with driver_cursor(connection) as cursor:
        cursor.execute(dialect_of(connection).driver_sql(statement), parameters)
        return cursor.fetchall()  # type: ignore[no-any-return]


#: A pooled PostgreSQL connection back in the pool for less than this is handed out unchecked;
#: one idle longer is pinged first (as HikariCP's ``aliveBypassWindowMs``). Under load every
#: connection comes back within milliseconds, and a ping per check-out was a round trip before
#: each of a request's transactions. The price: a connection whose backend died less than this
#: after the connection was last used (a server restarted faster than that, or an operator
#: terminating idle backends) fails the one statement that meets it, and the pool replaces it on
#: its return; each such connection fails once. A restart that takes longer leaves every pooled
#: connection idle past the window, so each is pinged and replaced before use.
PING_AFTER_IDLE_SECONDS: Final = 1.0
_RETURNED_AT: Final = "tzsb.returned_at"


def _note_returned(_dbapi_connection: Any, record: Any) -> None:
    if record is not None:
        record.info[_RETURNED_AT] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    returned_at = record.info.get(_RETURNED_AT)
    if returned_at is not None and time.monotonic() - returned_at < PING_AFTER_IDLE_SECONDS:
        return
    try:
        dbapi_connection.execute("SELECT 1")
        if not dbapi_connection.autocommit:
            dbapi_connection.rollback()
    except Exception as error:
        # SQLAlchemy's pessimistic disconnect handling: the pool drops this connection and checks
        # out another (a new one, once every pooled one has failed its ping).
        raise sa.exc.DisconnectionError(f"a pooled connection failed its ping: {error}") from error


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling would BEGIN lazily (DEFERRED); we issue BEGIN in
    # _begin_sqlite instead, so a writer takes the write lock up front and never meets
    # SQLITE_BUSY half-way through a transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a power cut may lose the last commits but never corrupts the file.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Deleted content is overwritten with zeros, freed pages included, whatever the SQLite build's
    # default (Debian's is ON, SQLite's own OFF): a reader of the file finds only what the tables hold.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _begin_sqlite(connection: Connection) -> None:
    statement = connection.get_execution_options().get("sqlite_begin", "BEGIN")
    # Straight to the driver: through ``exec_driver_sql`` the BEGIN cost every write transaction
    # about 20 µs of SQLAlchemy's statement handling.
    try:
        connection.connection.driver_connection.execute(statement)  # type: ignore[union-attr]
    except sqlite3.Error as error:
        # Raised as SQLAlchemy raises a driver's error ("database is locked": ``_begin_at_once``).
        raise sa.exc.OperationalError(statement, None, error) from error


__all__ = [
    "BUSY_TIMEOUT_SECONDS",
    "FETCH_ON_POSTGRESQL",
    "FETCH_ON_SQLITE",
    "POSTGRESQL",
    "RECORD_COLUMNS",
    "SQLITE",
    "WAL_AUTOCHECKPOINT_PAGES",
    "Dialect",
    "DriverConnection",
    "PostgreSQLDialect",
    "SQLiteDialect",
    "dialect_named",
    "dialect_of",
    "driver_rows",
    "driver_sql",
]
