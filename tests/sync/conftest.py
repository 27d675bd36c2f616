"""Fixtures of the sync tests: a county node and its city parent, each with its own home and
database (SQLite files, or PostgreSQL schemas), the parent served over HTTP on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import grant
from tests.sync.nodes import Databases, Served, make_home, open_home, serve_in_thread
from tzsb.app import Node

COUNTY = "330106"
CITY = "330100"
#: What flows up from a county in these tests: devices, units, people.
FLOWING = ("0101", "0102", "0103")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Databases]:
    postgres = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    found = Databases(request.param, tmp_path, postgres)
    yield found
    found.drop()


@pytest.fixture
def open_node(databases: Databases, tmp_path: Path) -> Iterator[Callable[..., Node]]:
    """Make and open a node home: ``open_node(name, level, region, **settings)``; all closed at the end."""
    opened: list[Node] = []

    def factory(name: str, level: str, region: str, **settings: Any) -> Node:
        home = make_home(tmp_path, name, level, region, databases.url(name))
        # Back-off without waiting: the tests count attempts, not seconds.
        node = open_home(home, sync_backoff_seconds=0.0, **settings)
        opened.append(node)
        return node

    yield factory
    for node in opened:
        node.close()


@pytest.fixture
def city(open_node: Callable[..., Node]) -> Iterator[Served]:
    node = open_node("city", "city", CITY)
    with serve_in_thread(node) as served:
        yield served


@pytest.fixture
def county(open_node: Callable[..., Node]) -> Node:
    return open_node("county", "county", COUNTY)


@pytest.fixture
def county_secret(city: Served) -> str:
    """The app the city issued to the county: its region, the business types that flow, 01/03/04."""
    return grant(
        city.node,
        appid="county-330106",
        region=COUNTY,
        busicodes=frozenset("14" + code for code in FLOWING),
        actions=frozenset({"01", "03", "04"}),
    )
