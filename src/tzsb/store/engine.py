"""Open a node's database: SQLite in WAL mode by default, PostgreSQL (psycopg 3) by URL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine

from tzsb.store import schema


def _json_serializer(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


def normalise_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here; other URLs pass unchanged."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class Store:
    """The database of one node, and the discipline for writing to it.

    SQLite allows one writer at a time; writes from this process queue on a lock instead of
    failing with ``database is locked``. PostgreSQL writers serialise on the change-counter row.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._write_lock = threading.Lock() if self.is_sqlite else None

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that commits on success and rolls back on any exception."""
        if self._write_lock is None:
            with self.engine.begin() as connection:
                yield connection
            return
        with (
            self._write_lock,
            self.engine.connect().execution_options(sqlite_begin="BEGIN IMMEDIATE") as connection,
            connection.begin(),
        ):
            yield connection

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as connection:
            yield connection

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        config = Config()
        config.set_main_option("script_location", str(resources.files("tzsb.store").joinpath("migrations")))
        with self.write() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def dispose(self) -> None:
        self.engine.dispose()


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling would BEGIN lazily (DEFERRED); we issue BEGIN in
    # _begin_sqlite instead, so a writer takes the write lock up front and never meets
    # SQLITE_BUSY half-way through a transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a power cut may lose the last commits but never corrupts the file.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _begin_sqlite(connection: Connection) -> None:
    connection.exec_driver_sql(connection.get_execution_options().get("sqlite_begin", "BEGIN"))


def open_store(url: str, *, migrate: bool = True, **engine_options: Any) -> Store:
    """Connect to ``url`` and (by default) migrate it to the current schema."""
    url = normalise_url(url)
    options: dict[str, Any] = {
        "json_serializer": _json_serializer,
        "json_deserializer": orjson.loads,
        # Records hold personal data: a database error must not put statement parameters in a log.
        "hide_parameters": True,
        **engine_options,
    }
    if url.startswith("sqlite"):
        options.setdefault("connect_args", {"check_same_thread": False})
    else:
        options.setdefault("pool_pre_ping", True)
    engine = sa.create_engine(url, **options)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _configure_sqlite)
        sa.event.listen(engine, "begin", _begin_sqlite)
    store = Store(engine)
    if migrate:
        store.migrate()
    return store


__all__ = ["Store", "normalise_url", "open_store", "schema"]
