"""SQLite writers of different processes queue on a file lock held for the whole write transaction."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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
