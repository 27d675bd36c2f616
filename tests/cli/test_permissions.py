"""A node's home and database are its owner's alone: names, ID numbers, phone numbers and keys."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tzsb.cli.common import create_home, exposed_paths
from tzsb.store import open_store


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most systems give a login (022): files 0644 and folders 0755 unless created otherwise."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


@pytest.mark.usefixtures("usual_umask")
def test_the_database_and_its_side_files_are_private_after_a_write(tmp_path: Path) -> None:
    """SQLite creates tzsb.db 0644 under umask 022 and gives -wal and -shm the database file's mode."""
    database = tmp_path / "tzsb.db"
    store = open_store(f"sqlite:///{database}")
    try:
        with store.write() as connection:
            connection.execute(sa.text("CREATE TABLE scratch (id INTEGER)"))
            connection.execute(sa.text("INSERT INTO scratch VALUES (1)"))
        # (tzsb.db-writer.lock, the writers' queue, stays empty: it holds nothing to read.)
        modes = {name: _mode(tmp_path / name) for name in ("tzsb.db", "tzsb.db-wal", "tzsb.db-shm")}
    finally:
        store.dispose()
    assert modes == {"tzsb.db": 0o600, "tzsb.db-wal": 0o600, "tzsb.db-shm": 0o600}


@pytest.mark.usefixtures("usual_umask")
def test_an_existing_database_keeps_the_mode_its_operator_chose(tmp_path: Path) -> None:
    database = tmp_path / "tzsb.db"
    open_store(f"sqlite:///{database}").dispose()
    database.chmod(0o640)  # e.g. a backup group may read it
    open_store(f"sqlite:///{database}").dispose()
    assert _mode(database) == 0o640


@pytest.mark.usefixtures("usual_umask")
def test_a_home_is_created_or_tightened_to_0700(tmp_path: Path) -> None:
    new = tmp_path / "a" / "node"
    create_home(new)
    assert _mode(new) == 0o700
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o755)
    create_home(existing)
    assert _mode(existing) == 0o700


@pytest.mark.usefixtures("usual_umask")
def test_only_what_others_can_read_is_reported(tmp_path: Path) -> None:
    home = tmp_path / "node"
    create_home(home)
    (home / "tzsb.toml").touch(mode=0o600)
    (home / "master.key").touch(mode=0o640)
    (home / "notes.txt").touch(mode=0o644)  # not the node's: none of its business
    assert exposed_paths(home) == [home / "master.key"]
    home.chmod(0o711)  # others may enter, not list: still reported, a known name can be opened
    assert exposed_paths(home) == [home, home / "master.key"]
