"""The kept answers' index (migration 0012): an app's kept answers are summed, its oldest chosen and
the expired ones found from the index alone, and dropped by primary key. The index's condition is a
literal the statements must repeat word for word (a bound parameter, or ``response IS NOT NULL``,
and SQLite reads every row that holds an answer: 80 MB for a quota of 64 MiB)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from tzsb.store import Store, nonces, open_store
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
    assert len(sent) == 2, sent  # the answers dropped without zeroing, then the others
    for statement in sent:
        parameters = tuple("x" for _ in range(statement.count("?")))
        assert "USING INDEX sqlite_autoindex_nonces_1 (appid=? AND random=?)" in _plan(tmp_path, statement, parameters)


def test_every_connection_overwrites_what_it_deletes(tmp_path: Path) -> None:
    """Whatever the SQLite build's default (Debian's ON, SQLite's own OFF): a reader of the file finds
    only what the tables hold, not the rows and pages deleted before."""
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


def _claim(store: Store, random: str, answer: bytes, *, derived: bool) -> None:
    with store.write() as connection:
        nonces.claim(
            connection, "app", random, "fingerprint", answer, datetime(2026, 12, 6, tzinfo=UTC), derived=derived
        )


def test_only_derived_answers_free_their_pages_without_zeroing_them(tmp_path: Path) -> None:
    """A derived answer (a query answered from this node's records) holds only what the file keeps
    anyway, and zeroing a 65 KB answer's overflow pages wrote each of them to the write-ahead log once
    more: it alone is dropped without zeroing. Any other answer (a refusal naming keys never stored, a
    provider's routed answer) is zeroed, and the connection zeroes again after the drop, even when it
    fails."""
    store = open_store(f"sqlite:///{tmp_path / 'tzsb.db'}")
    try:
        _claim(store, "page", bytes(range(256)) * 256, derived=True)
        _claim(store, "refusal", b"keys never stored" * 1000, derived=False)
        sent: list[str] = []
        with store.write() as connection:
            driver = connection.connection.driver_connection
            assert driver is not None
            driver.set_trace_callback(sent.append)
            assert nonces.drop_answers(connection, "app", ["page", "refusal"]) == 2
            driver.set_trace_callback(None)
            assert connection.exec_driver_sql("PRAGMA secure_delete").scalar_one() == 1
        assert [statement.split(" ", 1)[0] for statement in sent] == ["PRAGMA", "UPDATE", "PRAGMA", "UPDATE"], sent
        assert sent[0] == "PRAGMA secure_delete=FAST" and sent[2] == "PRAGMA secure_delete=ON"
        assert sent[1].endswith("AND nonces.derived = 1") and sent[3].endswith("AND nonces.derived = 0"), sent
        with store.read() as connection:
            assert nonces.kept_bytes(connection, "app") == 0
            kept = connection.exec_driver_sql("SELECT random, derived, response FROM nonces ORDER BY random").all()
        assert [tuple(row) for row in kept] == [("page", 1, None), ("refusal", 0, None)]

        _claim(store, "b", b"{}", derived=True)
        with pytest.raises(sa.exc.OperationalError, match="no such table: nonces"), store.write() as connection:
            connection.exec_driver_sql("ALTER TABLE nonces RENAME TO renamed")  # (rolled back with the rest)
            try:
                nonces.drop_answers(connection, "app", ["b"])
            finally:
                assert connection.exec_driver_sql("PRAGMA secure_delete").scalar_one() == 1
    finally:
        store.dispose()
