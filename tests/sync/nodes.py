"""Nodes for sync tests: each in its own home and database, a parent served over real HTTP on loopback."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
import uvicorn

from tzsb.app import Node, build_node
from tzsb.registry import MasterKey
from tzsb.settings import load_settings, write_config
from tzsb.store.schema import records
from tzsb.sync import LinkSpec
from tzsb.web import create_asgi


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Databases:
    """Fresh databases for the nodes of one test: SQLite files, or PostgreSQL schemas of their own."""

    def __init__(self, kind: str, tmp_path: Path, postgres_url: str | None) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.postgres_url = postgres_url
        self.schemas: list[str] = []

    def url(self, name: str) -> str:
        if self.kind == "sqlite":
            return ""  # the home's own tzsb.db
        assert self.postgres_url is not None
        schema = f"s_{uuid.uuid4().hex[:16]}"
        admin = sa.create_engine(self.postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        self.schemas.append(schema)
        separator = "&" if "?" in self.postgres_url else "?"
        return f"{self.postgres_url}{separator}options=-csearch_path%3D{schema}"

    def drop(self) -> None:
        if not self.schemas or self.postgres_url is None:
            return
        admin = sa.create_engine(self.postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
        with admin.begin() as connection:
            for schema in self.schemas:
                connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def make_home(root: Path, name: str, level: str, region: str, database_url: str, **settings: Any) -> Path:
    """A node home as `tzsb init` makes it (settings, master key), without starting anything."""
    home = root / name
    home.mkdir(mode=0o700)
    config = load_settings(home, environ={}, level=level, region=region, database_url=database_url, **settings)
    MasterKey.generate().write(config.master_key_path)
    write_config(config)
    return home


def open_home(home: Path, **settings: Any) -> Node:
    return build_node(load_settings(home, environ={}, **settings))


@dataclass
class Served:
    node: Node
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@contextmanager
def serve_in_thread(node: Node, port: int | None = None) -> Iterator[Served]:
    """Serve ``node`` over HTTP on loopback from a thread of the test (no sync schedule)."""
    port = port or free_port()
    config = uvicorn.Config(create_asgi(node), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    served = Served(node, f"http://127.0.0.1:{port}{node.settings.service_path}", server, thread)
    try:
        yield served
    finally:
        served.stop()


def link_up(child: Node, url: str, appid: str, secret: str, businesses: tuple[str, ...], **options: Any) -> None:
    child.links.add(
        LinkSpec(
            name=options.pop("name", "up"),
            url=url,
            appid=appid,
            secret=secret,
            direction=options.pop("direction", "up"),
            businesses=businesses,
            **options,
        )
    )


def held(node: Node, business: str | None = None) -> dict[tuple[str, str], tuple[str, bool]]:
    """Every record the node holds: (business, key) → (digest of the document, deleted)."""
    with node.store.read() as connection:
        statement = sa.select(records.c.business, records.c.record_key, records.c.data, records.c.deleted)
        if business is not None:
            statement = statement.where(records.c.business == business)
        rows = connection.execute(statement).all()
    found: dict[tuple[str, str], tuple[str, bool]] = {}
    for code, key, data, deleted in rows:
        document = orjson.loads(data) if isinstance(data, str | bytes) else data
        digest = hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()
        found[(code, key)] = (digest, bool(deleted))
    return found


def last_seq(node: Node) -> int:
    with node.store.read() as connection:
        return int(connection.execute(sa.text("SELECT last_seq FROM change_counter")).scalar_one())
