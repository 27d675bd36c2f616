"""SQLite's write-ahead log is copied into the database file by a background thread, not by a commit."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tzsb.store import open_store
from tzsb.store.engine import WAL_AUTOCHECKPOINT_PAGES


def checkpointer_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "tzsb-wal-checkpoint"]


def test_committed_pages_reach_the_database_file_without_a_commit_checkpointing(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    store = open_store(f"sqlite:///{path}")
    try:
        with store.read() as connection:
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == WAL_AUTOCHECKPOINT_PAGES
        time.sleep(0.5)  # the migration's own checkpoint
        before = path.stat().st_size
        with store.write() as connection:
            connection.execute(sa.text("CREATE TABLE filler (data TEXT)"))
            connection.execute(sa.text("INSERT INTO filler VALUES (:data)"), [{"data": "x" * 4000}] * 200)
        # Far below the auto-checkpoint size, so only the background thread copies the pages.
        deadline = time.monotonic() + 10
        while path.stat().st_size <= before + 200 * 4000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert path.stat().st_size > before + 200 * 4000
    finally:
        store.dispose()


def test_dispose_stops_the_checkpointer(tmp_path: Path) -> None:
    running = len(checkpointer_threads())
    store = open_store(f"sqlite:///{tmp_path / 'node.db'}")
    assert len(checkpointer_threads()) == running + 1
    store.dispose()
    assert len(checkpointer_threads()) == running


def test_an_in_memory_database_has_no_checkpointer() -> None:
    running = len(checkpointer_threads())
    store = open_store("sqlite://")
    try:
        assert len(checkpointer_threads()) == running
    finally:
        store.dispose()


def test_a_failed_open_leaves_no_checkpointer_behind(tmp_path: Path) -> None:
    path = tmp_path / "not-a-node.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE records (anything TEXT)")  # the first migration cannot create its own
    running = len(checkpointer_threads())
    for _ in range(3):
        with pytest.raises(sa.exc.OperationalError, match="already exists"):
            open_store(f"sqlite:///{path}")
    assert len(checkpointer_threads()) == running
