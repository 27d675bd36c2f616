"""One object per dialect: chosen once per engine, and what it does differently on each database."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa

from tzsb.store import Store, open_store, records_read, records_written
from tzsb.store.dialects import POSTGRESQL, SQLITE, dialect_named, dialect_of, driver_sql


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url)
    yield opened
    opened.dispose()


def _row(key: str, seq: int) -> records_written.NewRow:
    data = records_written.document({"EQP_CODE": key, "AREA_CODE": "330106", "UPDATE_TIME": "2026-01-01 00:00:00"})
    return ("0101", key, "330106", "2026-01-01 00:00:00", data, False, None, None, "x", "x", "2026-01-01 00:00:00", seq)


def test_the_dialect_is_chosen_once_per_engine(store: Store, database_url: str) -> None:
    assert store.dialect is (SQLITE if database_url.startswith("sqlite") else POSTGRESQL)
    assert dialect_of(store.engine) is store.dialect
    with store.read() as connection:
        assert dialect_of(connection) is store.dialect
        assert driver_sql(connection, "SELECT ? WHERE ?") == store.dialect.driver_sql("SELECT ? WHERE ?")
    assert store.is_sqlite == (store.dialect is SQLITE)


def test_names_and_markers() -> None:
    assert dialect_named("sqlite") is SQLITE
    assert dialect_named("postgresql") is POSTGRESQL
    assert SQLITE.driver_sql("a = ? AND b = ?") == "a = ? AND b = ?"
    assert POSTGRESQL.driver_sql("a = ? AND b = ?") == "a = %s AND b = %s"
    assert SQLITE.fetch_records == records_read.FETCH_ON_SQLITE
    assert POSTGRESQL.fetch_records == records_read.FETCH_ON_POSTGRESQL


def test_inserts_ignoring_a_conflict_as_each_database_spells_it() -> None:
    into, values = "rate_windows (appid, minute, count)", "(?, ?, 0)"
    assert SQLITE.insert_ignoring_conflict(into, values) == (
        "INSERT OR IGNORE INTO rate_windows (appid, minute, count) VALUES (?, ?, 0)"
    )
    assert POSTGRESQL.insert_ignoring_conflict(into, values) == (
        "INSERT INTO rate_windows (appid, minute, count) VALUES (?, ?, 0) ON CONFLICT DO NOTHING"
    )


def test_ping_answers(store: Store) -> None:
    store.ping()


def test_a_snapshot_sees_one_committed_state(store: Store) -> None:
    with store.snapshot() as connection:
        before = records_read.last_change(connection)
        with store.write() as writer:
            records_written.store_change_counter(writer, before + 7)
        assert records_read.last_change(connection) == before
    with store.read() as connection:
        assert records_read.last_change(connection) == before + 7


def test_inserting_rows_finishes_with_the_block(store: Store) -> None:
    ran: list[str] = []
    with store.write() as connection:
        with store.dialect.inserting_rows(connection, "records", records_written.INSERT_COLUMNS, [_row("A", 1)]):
            ran.append("block")
        assert ran == ["block"]
        assert sorted(records_read.fetch(connection, "0101", ["A", "B"])) == ["A"]


def test_an_insert_failure_comes_after_the_block_and_the_block_s_own_first(store: Store) -> None:
    duplicated = [_row("A", 1), _row("A", 2)]
    ran: list[str] = []
    columns = records_written.INSERT_COLUMNS
    with (
        pytest.raises((sa.exc.IntegrityError, psycopg.errors.UniqueViolation)),
        store.write() as connection,
        store.dialect.inserting_rows(connection, "records", columns, duplicated),
    ):
        ran.append("block")
    assert ran == ["block"]
    with (
        pytest.raises(RuntimeError, match="refused"),
        store.write() as connection,
        store.dialect.inserting_rows(connection, "records", columns, duplicated),
    ):
        raise RuntimeError("refused")
    with store.read() as connection:
        assert records_read.fetch(connection, "0101", ["A"]) == {}
