"""The kept answers' index (migration 0012): an app's kept answers are summed, its oldest chosen and
the expired ones found from the index alone, and dropped by primary key. The index's condition is a
literal the statements must repeat word for word (a bound parameter, or ``response IS NOT NULL``,
and SQLite reads every row that holds an answer: 80 MB for a quota of 64 MiB)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import event

from tzsb.store import nonces, open_store
from tzsb.store.dialects import _configure_sqlite as configure_sqlite
from tzsb.store.dialects import driver_rows

INDEX = "ix_nonces_kept_answer_sizes"


def _plan(path: Path, statement: str, parameters: tuple[object, ...]) -> str:
    store = open_store(f"sqlite:///{path / 'tzsb.db'}")
    try:
        with store.read() as connection:
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
    finally:
        store.dispose()
    return " / ".join(str(row[-1]) for row in rows)


def test_the_kept_answers_are_summed_chosen_and_found_expired_from_their_index_alone(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'tzsb.db'}")
    sent: list[str] = []

    def spy(*arguments: object) -> None:
        sent.append(str(arguments[2]))  # (connection, cursor, statement, ...)

    try:
        with store.read() as connection:
            event.listen(connection, "before_cursor_execute", spy)
            nonces.kept_bytes(connection, "app")
            nonces.over_quota(connection, "app", -1)  # over it: its sum, then the oldest (through the driver)
            nonces.expired_answers(connection, datetime(2026, 12, 6, tzinfo=UTC), 10)
    finally:
        store.dispose()
    sent.append(nonces._OLDEST_KEPT)
    assert len(sent) == 4 and all(nonces.KEPT in statement for statement in sent), sent
    for statement in sent:
        parameters = tuple("x" for _ in range(statement.count("?")))
        assert f"COVERING INDEX {INDEX}" in _plan(tmp_path, statement, parameters), statement


def test_answers_are_dropped_by_primary_key(tmp_path: Path) -> None:
    """``KEPT`` in the drop would have SQLite walk the app's kept answers instead (20 ms a chunk)."""
    store = open_store(f"sqlite:///{tmp_path / 'tzsb.db'}")
    sent: list[str] = []

    def spy(*arguments: object) -> None:
        sent.append(str(arguments[2]))

    try:
        with store.write() as connection:
            event.listen(connection, "before_cursor_execute", spy)
            assert nonces.drop_answers(connection, "app", ["a", "b"]) == 0
    finally:
        store.dispose()
    (statement,) = sent
    parameters = tuple("x" for _ in range(statement.count("?")))
    assert "USING INDEX sqlite_autoindex_nonces_1 (appid=? AND random=?)" in _plan(tmp_path, statement, parameters)


def test_every_connection_overwrites_what_it_deletes(tmp_path: Path) -> None:
    """Whatever the SQLite build's default (Debian's ON, SQLite's own OFF): a reader of the file finds
    only what the tables hold, not the rows and pages deleted before (dropped answers included)."""
    store = open_store(f"sqlite:///{tmp_path / 'tzsb.db'}")
    try:
        with store.read() as reading, store.write() as writing, store.read_statement() as alone:
            for connection in (reading, writing):
                assert connection.exec_driver_sql("PRAGMA secure_delete").scalar_one() == 1
            assert driver_rows(alone, "PRAGMA secure_delete") == [(1,)]
    finally:
        store.dispose()
    # On a build whose default is OFF too (this one's may be ON).
    plain = sqlite3.connect(tmp_path / "plain.db")
    try:
        plain.execute("PRAGMA secure_delete=OFF")
        configure_sqlite(plain, None)
        assert plain.execute("PRAGMA secure_delete").fetchone() == (1,)
    finally:
        plain.close()
