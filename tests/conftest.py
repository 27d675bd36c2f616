"""Fixtures: every store-backed test runs on SQLite and on PostgreSQL.

PostgreSQL: ``TZSB_TEST_POSTGRES_URL`` (default postgresql://postgres@127.0.0.1:5432/test). When it
cannot be reached the PostgreSQL cases are skipped with a loud banner, unless
``TZSB_REQUIRE_POSTGRES=1`` (as in ``.ci/run``), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tzsb.app import Node, build_node
from tzsb.clock import BEIJING, FixedClock
from tzsb.registry import MasterKey
from tzsb.settings import load_settings, write_config

POSTGRES_URL = os.environ.get("TZSB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("TZSB_REQUIRE_POSTGRES") == "1"
_postgres_state: dict[str, Any] = {}


def _postgres_error() -> str | None:
    """None when PostgreSQL answers; else why not (probed once per session)."""
    if "error" not in _postgres_state:
        try:
            engine = sa.create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))
            with engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
            engine.dispose()
            _postgres_state["error"] = None
        except Exception as exc:
            _postgres_state["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return _postgres_state["error"]  # type: ignore[no-any-return]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    # Things a test asks to be shown past the output capture (and from pytest-xdist's workers,
    # whose own output is not shown): ``record_property("show: <what>", value)``.
    for reports in terminalreporter.stats.values():
        for report in reports:
            for name, value in getattr(report, "user_properties", ()):
                if isinstance(name, str) and name.startswith("show: ") and getattr(report, "when", "") == "call":
                    terminalreporter.write_line(f"{name[6:]}: {value}")
    # From the skips themselves (under pytest-xdist the tests ran in workers, not here).
    error = next(
        (
            str(report.longrepr[2]).split("PostgreSQL unreachable (", 1)[1].rstrip(")")
            for report in terminalreporter.stats.get("skipped", [])
            if isinstance(report.longrepr, tuple) and "PostgreSQL unreachable (" in str(report.longrepr[2])
        ),
        None,
    )
    if error:
        terminalreporter.write_sep("!", "POSTGRESQL TESTS SKIPPED", red=True, bold=True)
        terminalreporter.write_line(f"PostgreSQL at {POSTGRES_URL} is unreachable ({error}).")
        terminalreporter.write_line(
            "Every store test ran on SQLite only. Start PostgreSQL or set TZSB_TEST_POSTGRES_URL;"
        )
        terminalreporter.write_line("CI sets TZSB_REQUIRE_POSTGRES=1, which makes this a failure.")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    error = _postgres_error()
    if error:
        if REQUIRE_POSTGRES:
            pytest.fail(f"TZSB_REQUIRE_POSTGRES=1 but PostgreSQL at {POSTGRES_URL} is unreachable: {error}")
        pytest.skip(f"PostgreSQL unreachable ({error})")
    return POSTGRES_URL


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tzsb.db'}"
        return
    base = request.getfixturevalue("postgres_url")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 28, 9, 30, tzinfo=BEIJING))


@pytest.fixture
def make_node(database_url: str, tmp_path: Path, clock: FixedClock) -> Iterator[Callable[..., Node]]:
    """Build nodes on the test database; all are closed at the end."""
    built: list[Node] = []

    def factory(level: str = "province", region: str = "330000", **settings: Any) -> Node:
        home = tmp_path / f"home{len(built)}"
        home.mkdir()
        config = load_settings(home, environ={}, level=level, region=region, database_url=database_url, **settings)
        MasterKey.generate().write(config.master_key_path)
        write_config(config)
        node = build_node(config, clock)
        built.append(node)
        return node

    yield factory
    for node in built:
        node.close()


@pytest.fixture
def node(make_node: Callable[..., Node]) -> Node:
    return make_node()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Fresh databases for the nodes of one test (SQLite files, or PostgreSQL schemas of their own)."""
    from tests.sync.nodes import Databases

    postgres = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    found = Databases(request.param, tmp_path, postgres)
    yield found
    found.drop()


@pytest.fixture
def open_node(databases: Any, tmp_path: Path) -> Iterator[Callable[..., Node]]:
    """Make and open a node home, each with its own database: ``open_node(name, level, region,
    **settings)``; all closed at the end."""
    from tests.sync.nodes import make_home, open_home

    opened: list[Node] = []

    def factory(name: str, level: str, region: str, **settings: Any) -> Node:
        node = open_home(make_home(tmp_path, name, level, region, databases.url(name)), **settings)
        opened.append(node)
        return node

    yield factory
    for node in opened:
        node.close()
