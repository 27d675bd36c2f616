"""A pool of shared nodes for the security tables, on SQLite and on PostgreSQL.

Building a node compiles its rule book (≈0.15 s); a table of well over a hundred hostile requests on
two backends would spend most of its time doing that. The table's cases therefore share one node
per backend and node identity (level, region) — as a real node serves many apps — and each case
works through an app of its own (its own appid, grants, nonces, lock-outs, rate window) and its
own record keys. Every assertion a case makes is relative to the state just before its request
(store snapshot, log length), so cases cannot see each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from tzsb.app import Node, build_node
from tzsb.clock import BEIJING, FixedClock
from tzsb.registry import MasterKey
from tzsb.settings import load_settings, write_config

#: The moment every shared node's clock starts at (the same as the ``clock`` fixture of tests/conftest.py).
START = datetime(2026, 11, 28, 9, 30, tzinfo=BEIJING)


class NodePool:
    """Nodes on one backend, built on first use and kept for the module."""

    def __init__(self, backend: str, root: Path, postgres_url: str | None) -> None:
        self.backend = backend
        self.root = root
        self.postgres_url = postgres_url
        self._nodes: dict[tuple[str, str], Node] = {}
        self._schemas: list[str] = []

    def get(self, level: str = "province", region: str = "330000") -> Node:
        if (level, region) not in self._nodes:
            home = self.root / f"{level}-{region}"
            home.mkdir()
            config = load_settings(home, environ={}, level=level, region=region, database_url=self._database(home))
            MasterKey.generate().write(config.master_key_path)
            write_config(config)
            node = build_node(config, FixedClock(START))
            # The clock stands still and every case calls from 127.0.0.1: no limit on the unidentified
            # refusals of one address and minute (tests/exchange test the limit).
            node.exchange.answers.tally.per_minute = 10**9
            self._nodes[(level, region)] = node
        return self._nodes[(level, region)]

    def _database(self, home: Path) -> str:
        if self.postgres_url is None:
            return f"sqlite:///{home / 'tzsb.db'}"
        schema = f"t_{uuid.uuid4().hex[:16]}"
        admin = self._admin()
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        self._schemas.append(schema)
        separator = "&" if "?" in self.postgres_url else "?"
        return f"{self.postgres_url}{separator}options=-csearch_path%3D{schema}"

    def _admin(self) -> sa.Engine:
        assert self.postgres_url is not None
        return sa.create_engine(self.postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))

    def close(self) -> None:
        for node in self._nodes.values():
            node.close()
        if self._schemas:
            admin = self._admin()
            with admin.begin() as connection:
                for schema in self._schemas:
                    connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def node_pool(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodePool]:
    postgres_url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    pool = NodePool(request.param, tmp_path_factory.mktemp(f"pool-{request.param}"), postgres_url)
    yield pool
    pool.close()
