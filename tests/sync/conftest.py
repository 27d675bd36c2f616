"""Fixtures of the sync tests: a county node and its city parent, each with its own home and
database (SQLite files, or PostgreSQL schemas), the parent served over HTTP on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support import grant
from tests.sync.nodes import Served, serve_in_thread
from tzsb.app import Node

COUNTY = "330106"
CITY = "330100"
#: What flows up from a county in these tests: devices, units, people.
FLOWING = ("0101", "0102", "0103")


@pytest.fixture
def open_node(open_node: Callable[..., Node]) -> Callable[..., Node]:
    """``open_node`` of tests/conftest.py, with back-off without waiting: the tests count attempts, not seconds."""

    def factory(name: str, level: str, region: str, **settings: Any) -> Node:
        return open_node(name, level, region, **{"sync_backoff_seconds": 0.0, **settings})

    return factory


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
