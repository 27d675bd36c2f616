"""Open a node's database: SQLite in WAL mode by default, PostgreSQL (psycopg 3) by URL.

Owns no table: the engine, the discipline of writers, and SQLite's WAL checkpoints and file lock.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from importlib import resources
from pathlib import Path
from typing import Any, Final, TypeVar

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine

from tzsb import inline
from tzsb.store import schema
from tzsb.store.dialects import (
    BUSY_TIMEOUT_SECONDS,
    POOL_OVERFLOW,
    POOL_SIZE,
    WAL_AUTOCHECKPOINT_PAGES,
    Dialect,
    DriverConnection,
    dialect_named,
    dialect_of,
    driver_sql,
)
from tzsb.store.group_commit import GroupCommit

try:
    import fcntl
except ImportError:  # Windows: writers of other processes fall back to SQLite's busy timeout
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)


def _json_serializer(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


def normalise_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here; other URLs pass unchanged."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


#: ``Connection.info`` keys: the write transaction runs work deferred to its end (``deferring``).
_DEFERRED: Final = "tzsb.deferred"


@contextmanager
def deferring(connection: Connection) -> Iterator[None]:
    """Within a write transaction: work handed to ``defer`` runs as the transaction's last step,
    before its commit; on an exception it is dropped with the rest of the transaction, and nothing
    of it outlives the transaction on the pooled connection."""
    connection.info[_DEFERRED] = {}
    try:
        yield
        while deferred := connection.info[_DEFERRED]:
            connection.info[_DEFERRED] = {}
            for work, items in deferred.values():
                work(connection, items)
    finally:
        connection.info.pop(_DEFERRED, None)


def defer(connection: Connection, key: str, work: Callable[[Connection, list[Any]], None]) -> list[Any] | None:
    """The list that ``work`` receives at the end of the write transaction ``connection`` is in (one
    per ``key``: add to it); None, with nothing deferred, when the connection is not in a write
    transaction opened by ``Store``."""
    deferred = connection.info.get(_DEFERRED)
    if deferred is None:
        return None
    if key not in deferred:
        deferred[key] = (work, [])
    items: list[Any] = deferred[key][1]
    return items


Result = TypeVar("Result")

#: SQLite connections kept for ``Store.read_statement``: as many as usually read at once, in the
#: request threads and on the event loop; readers past them use the pool.
SPARE_READERS: Final = 16


class Store:
    """The database of one node, and the discipline for writing to it.

    SQLite allows one writer at a time; writes from this process queue on a lock instead of
    failing with ``database is locked``. PostgreSQL writers serialise on the change-counter row.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: What differs between SQLite and PostgreSQL, chosen once for this engine.
        self.dialect: Dialect = dialect_of(engine)
        self._write_lock = threading.Lock() if self.dialect.single_writer else None
        file_database = self.dialect.is_file_database(engine.url)
        self._checkpointer = WalCheckpointer(engine) if file_database else None
        self._process_lock = _ProcessLock.for_database(engine.url) if file_database else None
        #: The connection a group commit's batch led on the event loop writes on (``write_at_once``),
        #: kept from the start: such a batch must never wait, not even for a pooled connection.
        #: ``open_store`` gave the pool one connection more for it.
        self._loop_writer: Connection | None = None
        if self._process_lock is not None:
            self._loop_writer = engine.connect().execution_options(**self.dialect.writer_options)
            driver: Any = self._loop_writer.connection.driver_connection
            # Never a wait on the loop: no busy handler (a lock held is a BEGIN refused, and the batch
            # goes to the committer), and no checkpoint inside its commits (the checkpointer's).
            driver.execute("PRAGMA busy_timeout=0")
            driver.execute("PRAGMA wal_autocheckpoint=0")
        self._grouped = GroupCommit(
            self.write, write_at_once=self.write_at_once if self._loop_writer is not None else None
        )
        # SQLite file connections lent for one read statement, outside the pool (``read_statement``):
        # a connection to a file in this process cannot go stale, and the pool's check-out and
        # check-in (its reset included) cost about 7 µs, twice in every key query.
        self._spare_readers: list[DriverConnection] | None = [] if file_database else None
        self._spares_lock = threading.Lock()
        self._spares_made = 0
        self._spares_closed = False

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is SQLite: for tests that expect per database; code asks ``dialect``."""
        return self.dialect.name == "sqlite"

    def ping(self) -> None:
        """The health probe: a trivial query on a pooled connection; raises when the database does not answer."""
        with self.read() as connection:
            connection.execute(sa.text("SELECT 1"))

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that commits on success and rolls back on any exception."""
        if self._write_lock is None:
            with self.engine.begin() as connection, deferring(connection):
                yield connection
            return
        with (
            self._writers_turn(),
            self.engine.connect().execution_options(**self.dialect.writer_options) as connection,
            connection.begin(),
            deferring(connection),
        ):
            yield connection
        if self._checkpointer is not None:
            self._checkpointer.wanted()

    @property
    def suits_loop_handlers(self) -> bool:
        """Whether request handlers may run on the event loop's thread (``tzsb.inline``): a SQLite file
        (the database runs in this process: no statement waits on a network) with its lock between
        processes, so that a statement waits only on the locks ``write`` takes (and takes through the
        loop). Without that lock (a ``file:`` URI name, Windows) a writer of another process would
        make a handler wait in SQLite's busy handler, on the loop; PostgreSQL has no such lock."""
        return self._process_lock is not None

    @contextmanager
    def _writers_turn(self) -> Iterator[None]:
        """Hold this process's writers' lock, then the lock between processes. A request handler on the
        event loop (``tzsb.inline``) takes both at once or waits for both in a worker thread: it never
        holds one while it waits, since the writers it would hold up may be the very threads its wait
        needs."""
        if inline.on_loop():
            if not self._writers_turn_at_once():
                inline.take(self._wait_for_writers_turn, self._end_writers_turn)
        else:
            self._wait_for_writers_turn()
        try:
            yield
        finally:
            self._end_writers_turn()

    def _writers_turn_at_once(self) -> bool:
        assert self._write_lock is not None
        if not self._write_lock.acquire(blocking=False):
            return False
        if self._process_lock is None or self._process_lock.try_acquire():
            return True
        self._write_lock.release()
        return False

    def _wait_for_writers_turn(self) -> None:
        assert self._write_lock is not None
        self._write_lock.acquire()
        try:
            if self._process_lock is not None:
                self._process_lock.__enter__()
        except BaseException:
            self._write_lock.release()
            raise

    def _end_writers_turn(self) -> None:
        assert self._write_lock is not None
        try:
            if self._process_lock is not None:
                self._process_lock.__exit__()
        finally:
            self._write_lock.release()

    def write_grouped(self, work: Callable[[Connection], Result]) -> Result:
        """Run ``work`` in a write transaction shared with the grouped work of concurrent callers, and
        return once it committed (``group_commit``): for the small writes every request ends with."""
        return self._grouped.run(work)

    @property
    def group_commit(self) -> GroupCommit:
        return self._grouped

    @contextmanager
    def write_if_free(self) -> Iterator[Connection | None]:
        """Like ``write``, when no writer of this process or another holds SQLite's writers' lock right
        now; else None, with nothing taken. (On PostgreSQL writers queue on the change-counter row:
        the caller tries that lock itself, ``records_written.try_lock_change_counter``.)"""
        if self._write_lock is None:
            with self.write() as connection:
                yield connection
            return
        with self._at_once(lambda: self.engine.connect().execution_options(**self.dialect.writer_options)) as free:
            yield free

    @contextmanager
    def write_at_once(self) -> Iterator[Connection | None]:
        """A write transaction on the connection kept for the event loop's group commits, when it can
        start right now; else None, with nothing taken. It never waits: not for the writers' lock,
        SQLite's lock or a pooled connection (``group_commit``: a batch led on the loop's thread)."""
        kept = self._loop_writer
        if kept is None:
            raise RuntimeError("write_at_once is for a SQLite file's store, which keeps a connection for it")
        with self._at_once(lambda: nullcontext(kept), busy_timeout_set=True) as free:
            yield free

    @contextmanager
    def _at_once(
        self, connect: Callable[[], AbstractContextManager[Connection]], *, busy_timeout_set: bool = False
    ) -> Iterator[Connection | None]:
        if not self._writers_turn_at_once():
            yield None
            return
        try:
            with connect() as connection:
                transaction = _begin_at_once(connection, busy_timeout_set=busy_timeout_set)
                if transaction is None:
                    yield None
                    return
                with transaction, deferring(connection):
                    yield connection
        finally:
            self._end_writers_turn()
        if self._checkpointer is not None:
            try:
                self._checkpointer.wanted()
            except Exception:  # committed all the same: the caller must not take it for a failure
                logger.exception("could not start the WAL checkpointer")

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as connection:
            yield connection

    @contextmanager
    def read_statement(self) -> Iterator[DriverConnection]:
        """A pooled connection for exactly one read statement, which is atomic on its own: run by the
        driver with no transaction around it (SQLite: no BEGIN and COMMIT, two calls that each
        released and retook the GIL) and no SQLAlchemy ``Connection`` built for it (its check-out,
        events and check-in cost ten times what the pool's own check-out does)."""
        spares = self._spare_readers
        lent: DriverConnection | None = None
        if spares is not None:
            try:
                lent = spares.pop()  # atomic: a list's pop needs no lock of its own
            except IndexError:
                with self._spares_lock:
                    more = not self._spares_closed and self._spares_made < SPARE_READERS
                    if more:
                        self._spares_made += 1
                if more:
                    try:
                        lent = self._new_spare_reader()
                    except BaseException:
                        with self._spares_lock:
                            self._spares_made -= 1
                        raise
        if lent is None:  # PostgreSQL, or every spare lent: the pool's
            pooled = self.engine.raw_connection()
            try:
                with self.dialect.single_statement(pooled.driver_connection):
                    yield DriverConnection(pooled.driver_connection, self.dialect, pooled.info)
            finally:
                pooled.close()
            return
        assert spares is not None
        try:
            yield lent
        except BaseException:
            # A statement stopped half-way may hold a cursor, and with it a read of the file: not lent again.
            self._drop_spare(lent)
            raise
        with self._spares_lock:
            if not self._spares_closed:
                spares.append(lent)
                return
        self._drop_spare(lent)

    def _drop_spare(self, lent: DriverConnection) -> None:
        with self._spares_lock:
            self._spares_made -= 1
        lent.driver.close()

    def _new_spare_reader(self) -> DriverConnection:
        """A connection made as the pool makes them (its connect events: WAL, busy timeout), then
        detached from the pool: ``read_statement`` lends it and closes it."""
        pooled = self.engine.raw_connection()
        driver = pooled.driver_connection
        pooled.detach()
        return DriverConnection(driver, self.dialect, {})

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A read transaction in which every statement sees the same committed state.

        SQLite gives that to any read transaction; PostgreSQL needs REPEATABLE READ (its default,
        READ COMMITTED, takes a new snapshot per statement).
        """
        with self.engine.connect() as connection:
            connection = self.dialect.snapshot(connection)
            with connection.begin():
                yield connection

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        config = Config()
        config.set_main_option("script_location", str(resources.files("tzsb.store").joinpath("migrations")))
        with self.write() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def size_bytes(self) -> int:
        """The database's size on disk (SQLite: the file and its write-ahead log; PostgreSQL: the database)."""
        with self.read() as connection:
            return self.dialect.size_bytes(connection, self.engine.url)

    def dispose(self) -> None:
        self._grouped.close()
        if self._spare_readers is not None:
            with self._spares_lock:
                self._spares_closed = True
                spares, self._spare_readers[:] = list(self._spare_readers), []
            for spare in spares:
                spare.driver.close()
        if self._checkpointer is not None:
            self._checkpointer.stop()
        if self._process_lock is not None and self._write_lock is not None:
            with self._write_lock:  # a write still running in another thread finishes first
                self._process_lock.close()
                if self._loop_writer is not None:
                    self._loop_writer.close()
        self.engine.dispose()


def _begin_at_once(connection: Connection, *, busy_timeout_set: bool = False) -> sa.RootTransaction | None:
    """BEGIN IMMEDIATE without waiting: None while another connection holds SQLite's write lock.
    ``busy_timeout_set``: the connection's busy timeout is 0 already, and stays so.

    The file lock only queues this node's own processes on one name of the file: a SQLite URI name
    (no file lock), Windows, another name of the same file or another program writes past it.
    """
    driver: Any = connection.connection.driver_connection
    if not busy_timeout_set:
        driver.execute("PRAGMA busy_timeout=0")
    try:
        return connection.begin()
    except sa.exc.OperationalError as error:
        if "locked" not in str(error.orig) and "busy" not in str(error.orig):
            raise
        return None
    finally:
        if not busy_timeout_set:
            driver.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")


class _ProcessLock:
    """An exclusive lock on a file, held by one process at a time (``flock``; POSIX only).

    SQLite lets writers of other processes (more server workers, a CLI command) wait for its lock
    only by sleeping and retrying, in steps of up to 100 ms; queueing on a file lock first hands
    the write lock over within a millisecond or two. Threads of one process queue on the Store's
    own lock before they get here. A writer that waits longer than ``timeout`` (SQLite's busy
    timeout) fails as SQLite would, with "database is locked".
    """

    def __init__(self, path: str, timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        self._path = path
        self._timeout = timeout
        self._fd: int | None = None

    @classmethod
    def for_database(cls, url: sa.URL) -> _ProcessLock | None:
        """The lock beside a plain database file; None for SQLite URI names (``file:…``)."""
        database = url.database or ""
        if fcntl is None or database.startswith("file:") or url.query.get("uri"):
            return None
        # Every name of the file (a symlink, a relative path) shares one lock.
        return cls(os.path.realpath(database) + "-writer.lock")

    def try_acquire(self) -> bool:
        """Take the lock if no other process holds it; never waits."""
        assert fcntl is not None
        if self._fd is None:
            # Read-only is enough for flock, so a lock file another user created still works.
            self._fd = os.open(self._path, os.O_RDONLY | os.O_CREAT, 0o666)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def __enter__(self) -> None:
        deadline = time.monotonic() + self._timeout
        pause = 0.0002
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                raise sa.exc.OperationalError("flock", None, sqlite3.OperationalError("database is locked")) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.002)

    def __exit__(self, *_exc: object) -> None:
        if self._fd is not None and fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class WalCheckpointer:
    """Copies committed pages from SQLite's write-ahead log into the database file, in a thread.

    Left to itself, SQLite checkpoints inside the commit that crosses the WAL size limit: that
    request then waits for thousands of pages to be copied and the file synced. Here writers only
    signal; this thread runs PASSIVE checkpoints (they never block readers or writers) at most
    every ``interval`` seconds, on the other core, since sqlite3 releases the GIL while it works.
    """

    def __init__(self, engine: Engine, interval: float = 0.25) -> None:
        self._engine = engine
        self._interval = interval
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self._starting = threading.Lock()
        self._thread: threading.Thread | None = None

    def wanted(self) -> None:
        if self._thread is None:
            # Started by the first commit, so that a store that never writes has no thread to leak.
            with self._starting:
                if self._thread is None and not self._stopping.is_set():
                    self._thread = threading.Thread(target=self._run, name="tzsb-wal-checkpoint", daemon=True)
                    self._thread.start()
        self._wanted.set()

    def stop(self) -> None:
        with self._starting:
            self._stopping.set()
        self._wanted.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        connection = None
        try:
            while True:
                self._wanted.wait()
                if self._stopping.is_set():
                    return
                self._wanted.clear()
                try:
                    if connection is None:
                        connection = self._engine.raw_connection()
                    # The driver connection is in autocommit mode (see dialects._configure_sqlite): a
                    # checkpoint cannot run inside a transaction.
                    connection.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()  # type: ignore[union-attr]
                except Exception:
                    logger.exception("WAL checkpoint failed; SQLite will checkpoint on commit instead")
                self._stopping.wait(self._interval)
        finally:
            if connection is not None:
                connection.close()


def _create_private(path: Path) -> None:
    """Create the SQLite file readable by its owner only (0600) before SQLite opens it: it holds names,
    ID numbers and phone numbers, and SQLite gives its -wal and -shm files the database file's mode.
    An existing file keeps the mode its operator chose."""
    if path.exists() or not path.parent.is_dir():
        return
    with suppress(FileExistsError):  # another process created it meanwhile
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def open_store(url: str, *, migrate: bool = True, **engine_options: Any) -> Store:
    """Connect to ``url`` and (by default) migrate it to the current schema."""
    url = normalise_url(url)
    parsed = sa.make_url(url)
    dialect = dialect_named(parsed.get_backend_name())
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        _create_private(Path(parsed.database))
    # A queue of connections for a file or a server (an in-memory SQLite database is one connection).
    pooled = parsed.get_backend_name() != "sqlite" or dialect.is_file_database(parsed)
    options: dict[str, Any] = {
        **({"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW} if pooled else {}),
        "json_serializer": _json_serializer,
        "json_deserializer": orjson.loads,
        # Records hold personal data: a database error must not put statement parameters in a log.
        "hide_parameters": True,
        **dialect.engine_defaults(),
        **engine_options,
    }
    overflow = int(options.get("max_overflow", 0))
    if pooled and overflow >= 0 and dialect.is_file_database(parsed) and _ProcessLock.for_database(parsed):
        # The one the store keeps for the event loop's group commits (``Store.write_at_once``), beside
        # the connections asked for (-1: no limit to raise).
        options["max_overflow"] = overflow + 1
    engine = sa.create_engine(url, **options)
    dialect.configure(engine)
    store = Store(engine)
    if migrate:
        try:
            store.migrate()
        except BaseException:
            store.dispose()
            raise
    return store


__all__ = [
    "BUSY_TIMEOUT_SECONDS",
    "WAL_AUTOCHECKPOINT_PAGES",
    "Store",
    "driver_sql",
    "normalise_url",
    "open_store",
    "schema",
]
