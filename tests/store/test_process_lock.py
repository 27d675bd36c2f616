"""SQLite writers of different processes queue on a file lock held for the whole write transaction."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tzsb.store import open_store

TRY_LOCK = """
import fcntl, sys
with open(sys.argv[1], "ab") as lock:
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("busy")
    else:
        print("free")
"""


def other_process_sees(lock: Path) -> str:
    return subprocess.run(
        [sys.executable, "-c", TRY_LOCK, str(lock)], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")
def test_a_write_transaction_holds_the_writer_lock_against_other_processes(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    store = open_store(f"sqlite:///{path}")
    lock = Path(f"{path}-writer.lock")
    try:
        assert other_process_sees(lock) == "free"
        with store.write():
            assert other_process_sees(lock) == "busy"
        assert other_process_sees(lock) == "free"
        with pytest.raises(RuntimeError), store.write():
            raise RuntimeError("a failed transaction releases the lock too")
        assert other_process_sees(lock) == "free"
    finally:
        store.dispose()


HOLD_LOCK = """
import fcntl, sys, time
with open(sys.argv[1], "ab") as lock:
    fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
    print("held", flush=True)
    time.sleep(30)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")
def test_a_writer_waits_no_longer_than_the_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    store = open_store(f"sqlite:///{path}")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, f"{path}-writer.lock"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        lock = store._process_lock
        assert lock is not None
        lock._timeout = 0.3
        with pytest.raises(sa.exc.OperationalError, match="database is locked"), store.write():
            pass
    finally:
        holder.kill()
        holder.communicate()
    with store.write() as connection:  # free again once the other process is gone
        connection.execute(sa.text("SELECT 1"))
    store.dispose()


def test_a_sqlite_uri_name_gets_no_lock_file(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    store = open_store(f"sqlite:///file:{path}?mode=rwc&uri=true")
    try:
        with store.write() as connection:
            connection.execute(sa.text("SELECT 1"))
        assert store._process_lock is None
        assert not list(tmp_path.glob("*writer.lock"))
    finally:
        store.dispose()


@pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")
def test_every_name_of_the_file_shares_one_lock(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    (tmp_path / "link.db").symlink_to(path)
    store = open_store(f"sqlite:///{tmp_path / 'link.db'}")
    try:
        with store.write():
            assert other_process_sees(Path(f"{path}-writer.lock")) == "busy"
        assert not Path(f"{tmp_path / 'link.db'}-writer.lock").exists()
    finally:
        store.dispose()
