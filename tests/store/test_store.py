"""The store on SQLite and PostgreSQL: migrations, keyset queries, region ranges, the change counter."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tzsb.store import RecordQuery, Store, dialects, open_store, records_read, records_written
from tzsb.store.dialects import driver_rows


@pytest.fixture
def store(database_url: str) -> Any:
    opened = open_store(database_url)
    yield opened
    opened.dispose()


def row(
    key: str, region: str, seq: int, *, deleted: bool = False, updated_at: str = "2026-01-01 00:00:00"
) -> records_written.NewRow:
    data = {"EQP_CODE": key, "AREA_CODE": region, "UPDATE_TIME": updated_at, "USE_STATUS": "2"}
    deleted_at, deleted_by = ("2026-02-01 00:00:00", "x") if deleted else (None, None)
    return ("0101", key, region, updated_at, records_written.document(data), deleted, deleted_at, deleted_by,
            "x", "x", "2026-01-01 00:00:00", seq)  # fmt: skip


def test_migrating_twice_changes_nothing(database_url: str) -> None:
    first = open_store(database_url)
    first.dispose()
    second = open_store(database_url)
    with second.read() as connection:
        assert connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == "0013"
        assert connection.execute(sa.text("SELECT last_seq FROM change_counter")).scalar_one() == 0
    second.dispose()


def test_fetch_reads_large_key_sets(store: Store) -> None:
    keys = [f"K{number:07d}" for number in range(12_000)]
    with store.write() as connection:
        records_written.insert(connection, [row(key, "330106", seq) for seq, key in enumerate(keys, 1)])
    with store.read() as connection:
        found = records_read.fetch(connection, "0101", [*keys, "missing"])
    assert len(found) == len(keys)
    assert found["K0000042"].seq == 43


def test_region_prefixes_order_and_keyset(store: Store) -> None:
    layout = [("A", "330106"), ("B", "330106"), ("C", "330102"), ("D", "330201"), ("E", "110101"), ("F", "339900")]
    with store.write() as connection:
        records_written.insert(connection, [row(key, region, seq) for seq, (key, region) in enumerate(layout, 1)])
        records_written.insert(connection, [row("G", "330106", 7, deleted=True)])

    def keys(**options: Any) -> list[str]:
        with store.read() as connection:
            return [found.key for found in records_read.select_records(connection, RecordQuery("0101", **options))]

    assert keys(region_prefixes=("33",)) == ["C", "A", "B", "D", "F"]
    assert keys(region_prefixes=("3301",)) == ["C", "A", "B"]
    assert keys(region_prefixes=("330106",)) == ["A", "B"]
    assert keys(region_prefixes=("",)) == ["E", "C", "A", "B", "D", "F"]
    assert keys(region_prefixes=("33",), include_deleted=True) == ["C", "A", "B", "G", "D", "F"]
    assert keys(region_prefixes=("33",), after=("330106", "A"), limit=2) == ["B", "D"]
    assert keys(since=3) == ["D", "E", "F", "G"]
    assert keys(since=0, after=(5,)) == ["F", "G"]


def test_change_counter_is_read_locked_and_stored(store: Store) -> None:
    with store.write() as connection:
        assert records_written.lock_change_counter(connection) == 0
        records_written.store_change_counter(connection, 41)
    with store.write() as connection:
        assert records_written.lock_change_counter(connection) == 41


def test_a_failed_transaction_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.write() as connection:
        records_written.insert(connection, [row("A", "330106", 1)])
        records_written.store_change_counter(connection, 1)
        raise RuntimeError("boom")
    with store.read() as connection:
        assert records_read.fetch(connection, "0101", ["A"]) == {}
        assert connection.execute(sa.text("SELECT last_seq FROM change_counter")).scalar_one() == 0


def test_write_if_free_and_try_lock_take_nothing_from_a_busy_writer(store: Store, database_url: str) -> None:
    other = open_store(database_url, migrate=False)  # another process's store: its own file lock
    try:
        for holder in (store, other):
            with holder.write() as held:
                records_written.lock_change_counter(held)
                with store.write_if_free() as connection:
                    if store.is_sqlite:
                        assert connection is None
                    else:  # PostgreSQL writers queue on the change-counter row
                        assert connection is not None
                        assert records_written.try_lock_change_counter(connection) is None
        with store.write_if_free() as connection:
            assert connection is not None
            assert records_written.try_lock_change_counter(connection) == 0
            records_written.store_change_counter(connection, 5)
        with store.read() as connection:
            assert records_read.last_change(connection) == 5
    finally:
        other.dispose()


def _probed_keys(store: Store) -> list[str]:
    """5,000 stored keys; returns 1,000 wanted ones, every other one of them stored."""
    keys = [f"K{number:07d}" for number in range(5_000)]
    with store.write() as connection:
        records_written.insert(connection, [row(key, "330106", seq) for seq, key in enumerate(keys, 1)])
    return [f"K{number:07d}" for number in range(0, 10_000, 10)]


def _plans(store: Store, statement: str, parameters: tuple[Any, ...]) -> Iterator[tuple[str, Connection]]:
    """The plan of ``statement`` on fresh statistics, then after ANALYZE, each with a connection to run it on."""
    explain = "EXPLAIN QUERY PLAN " if store.is_sqlite else "EXPLAIN "
    for analysed in (False, True):
        with store.write() as connection:
            if analysed:
                connection.exec_driver_sql("ANALYZE" if store.is_sqlite else "ANALYZE records")
            lines = connection.exec_driver_sql(explain + statement, parameters).all()
            yield "\n".join(str(line[-1]) for line in lines), connection


def _probes_the_primary_key(store: Store, plan: str, alias: str) -> bool:
    if store.is_sqlite:
        return "SCAN wanted" in plan and f"SEARCH {alias} USING INDEX sqlite_autoindex_records_1" in plan
    return "records_pkey" in plan and "Seq Scan" not in plan and "Bitmap" not in plan


def test_fetch_probes_the_primary_key(store: Store) -> None:
    """Whatever the table's statistics say: a scan of the business type costs in proportion to the table."""
    wanted = _probed_keys(store)
    assert store.dialect.fetch_records == (
        records_read.FETCH_ON_SQLITE if store.is_sqlite else records_read.FETCH_ON_POSTGRESQL
    )
    statement = store.dialect.fetch_records
    for plan, connection in _plans(store, statement, (store.dialect.text_array(wanted), "0101")):
        assert _probes_the_primary_key(store, plan, "records"), plan
        assert sorted(records_read.fetch(connection, "0101", wanted)) == wanted[:500]


def test_live_keys_are_the_live_records_inside_the_region(store: Store) -> None:
    rows = [
        row("K1", "330106", 1),
        row("K2", "330205", 2),
        row("K3", "330106", 3, deleted=True),
        row("K4", "330110", 4),
    ]
    with store.write() as connection:
        records_written.insert(connection, rows)
    wanted = ["K1", "K2", "K3", "K4", "K5", "K1"]
    with store.read() as connection:
        assert records_read.live_keys(connection, "0101", wanted, "3301") == {"K1", "K4"}
        assert records_read.live_keys(connection, "0101", wanted, "330106") == {"K1"}
        assert records_read.live_keys(connection, "0101", wanted) == {"K1", "K2", "K4"}
        assert records_read.live_keys(connection, "0102", wanted) == set()
        assert records_read.live_keys(connection, "0101", []) == set()


def test_live_keys_probe_the_primary_key(store: Store) -> None:
    """One probe per key whatever the statistics: reading the region's range costs in proportion to it."""
    wanted = _probed_keys(store)
    statement = store.dialect.live_keys_statement("3301")
    assert statement == records_read.live_keys_statement(store.dialect.name, "3301")
    for plan, connection in _plans(store, statement, (store.dialect.text_array(wanted), "0101", "3301", "3302")):
        assert _probes_the_primary_key(store, plan, "found"), plan
        assert records_read.live_keys(connection, "0101", wanted, "3301") == set(wanted[:500])


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    """A fresh PostgreSQL schema of its own (for tests of PostgreSQL's connections only)."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{postgres_url}{'&' if '?' in postgres_url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _backend(store: Store) -> int:
    with store.read_statement() as connection:
        ((pid,),) = driver_rows(connection, "SELECT pg_backend_pid()")
    return int(pid)


def _terminate(postgres_url: str, pid: int) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.mark.postgres
def test_a_connection_idle_past_the_window_is_pinged_and_replaced(
    postgres_url: str, postgres_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PostgreSQL restart (here: the pooled connection's backend terminated) costs no request a
    failure once the connection has been idle past ``PING_AFTER_IDLE_SECONDS``."""
    store = open_store(postgres_schema_url, pool_size=1, max_overflow=0)
    try:
        _terminate(postgres_url, _backend(store))
        monkeypatch.setattr(dialects, "PING_AFTER_IDLE_SECONDS", 0.0)
        replaced = _backend(store)  # the ping failed: a new connection, and no error
        with store.write() as connection:
            records_read.last_change(connection)
        assert _backend(store) == replaced
    finally:
        store.dispose()


@pytest.mark.postgres
def test_a_connection_that_died_within_the_window_fails_once_and_is_replaced(
    postgres_url: str, postgres_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside the window a connection is handed out unchecked (no round trip per check-out under
    load): the one statement that meets a dead backend fails, and the pool replaces it."""
    store = open_store(postgres_schema_url, pool_size=1, max_overflow=0)
    try:
        monkeypatch.setattr(dialects, "PING_AFTER_IDLE_SECONDS", 3600.0)
        first = _backend(store)
        _terminate(postgres_url, first)
        with pytest.raises(psycopg.OperationalError):
            _backend(store)
        assert _backend(store) != first
    finally:
        store.dispose()


@pytest.mark.postgres
def test_a_postgresql_connection_keeps_one_cursor_through_statements_failures_and_replacement(
    postgres_url: str, postgres_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """psycopg builds each cursor in Python: one is kept per pooled connection and reused, also after a
    statement failed in a transaction, and a replaced connection gets a cursor of its own."""
    # The dead backend is met by the one statement after it, however slow the machine (no ping).
    monkeypatch.setattr(dialects, "PING_AFTER_IDLE_SECONDS", 3600.0)
    store = open_store(postgres_schema_url, pool_size=1, max_overflow=0)
    cursors: list[Any] = []
    try:
        for _ in range(2):
            with store.read_statement() as lent, dialects.driver_cursor(lent) as cursor:
                cursors.append(cursor)
        with pytest.raises(psycopg.errors.DivisionByZero), store.write() as connection:
            driver_rows(connection, "SELECT 1 / 0")
        with store.write() as connection, dialects.driver_cursor(connection) as cursor:
            cursors.append(cursor)
            assert driver_rows(connection, "SELECT 41 + 1") == [(42,)]
        assert cursors[0] is cursors[1] is cursors[2]
        _terminate(postgres_url, _backend(store))
        with store.read_statement() as lent, pytest.raises(psycopg.OperationalError):
            driver_rows(lent, "SELECT 1")
        with store.read_statement() as lent, dialects.driver_cursor(lent) as replacement:
            assert replacement is not cursors[0]
            assert driver_rows(lent, "SELECT 2") == [(2,)]
        # A result of a page's size is not kept on the pooled connection: its cursor is closed.
        with store.read_statement() as lent:
            assert len(driver_rows(lent, "SELECT generate_series(1, 101)")) == 101
        assert replacement.closed
        with store.read_statement() as lent, dialects.driver_cursor(lent) as cursor:
            assert cursor is not replacement and not cursor.closed
    finally:
        store.dispose()


def test_sqlite_lends_its_spare_connections_for_one_statement_outside_the_pool(tmp_path: Any) -> None:
    """``read_statement`` on a SQLite file: connections kept beside the pool (no check-out, no reset),
    one per reader at a time, at most ``SPARE_READERS`` of them (more readers at once use the pool),
    the one a failed statement used closed, and every one closed with the store."""
    import sqlite3
    import threading

    from tzsb.store.engine import SPARE_READERS

    store = open_store(f"sqlite:///{tmp_path / 'spares.db'}")
    try:
        with store.read_statement() as first:
            assert driver_rows(first, "PRAGMA journal_mode") == [("wal",)]  # made as the pool makes them
        with store.read_statement() as again:
            assert again.driver is first.driver
        # Readers at once each get a connection of their own; more than are kept are closed after.
        held, release = threading.Barrier(SPARE_READERS + 3), threading.Event()
        lent: list[Any] = []

        def read() -> None:
            with store.read_statement() as connection:
                lent.append(connection.driver)
                held.wait(10)
                release.wait(10)
                assert driver_rows(connection, "SELECT 1") == [(1,)]

        readers = [threading.Thread(target=read) for _ in range(SPARE_READERS + 2)]
        for reader in readers:
            reader.start()
        held.wait(10)
        assert len({id(driver) for driver in lent}) == SPARE_READERS + 2
        release.set()
        for reader in readers:
            reader.join(10)
        # Sixteen were spares, kept for the next; the other two came from the pool and went back to it.
        assert not any(_is_closed(driver) for driver in lent)
        assert len(store._spare_readers or ()) == SPARE_READERS
        # A statement that failed: its connection is not lent again.
        with pytest.raises(sqlite3.OperationalError), store.read_statement() as failing:
            driver_rows(failing, "SELECT * FROM no_such_table")
        assert _is_closed(failing.driver)
        with store.read_statement() as after:
            assert after.driver is not failing.driver
    finally:
        store.dispose()
    assert all(_is_closed(driver) for driver in lent) and _is_closed(after.driver)


def _is_closed(driver: Any) -> bool:
    import sqlite3

    try:
        driver.execute("SELECT 1")
    except sqlite3.ProgrammingError:
        return True
    return False
