"""The baselines of query-key and query-region: bare Starlette endpoints doing the node's record
lookup (``/lookup``) and its keyset page over a region (``/page``), unsigned. sqlite3 is called in
worker threads; PostgreSQL's lookup is awaited on the event loop (psycopg's asyncio connection).

Run as ``python -m bench.baseline_app DATABASE PORT [WORKERS]``: DATABASE is the node's SQLite file,
or a ``postgresql://`` URL (the node's schema in its ``search_path``); WORKERS uvicorn processes
(1 unless given, like the node).
"""

from __future__ import annotations

import asyncio
import os
import queue
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import Any

import orjson
import psycopg
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

DATABASE_VARIABLE = "TZSB_BASELINE_DATABASE"
#: Connections kept per process: as many as wrk's connections, so that no request waits for one,
#: and few enough that two processes and the node stay within PostgreSQL's max_connections.
POOLED = 16
_idle: queue.LifoQueue[Any] = queue.LifoQueue()
#: PostgreSQL's connections for lookups awaited on the event loop: as many as requests at once, at
#: most ``POOLED`` (the slots).
_awaited_idle: list[psycopg.AsyncConnection[Any]] = []
_awaited_slots = asyncio.Semaphore(POOLED)


@contextmanager
def _connection(database: str) -> Iterator[Any]:
    try:
        connection = _idle.get_nowait()
    except queue.Empty:
        if database.startswith("postgresql://"):
            connection = psycopg.connect(database, autocommit=True)
        else:
            connection = sqlite3.connect(database, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
    try:
        yield connection
    finally:
        _idle.put(connection)


def build(database: str) -> Starlette:
    postgres = database.startswith("postgresql://")
    marker = "%s" if postgres else "?"
    statement = f"SELECT data FROM records WHERE business = '0101' AND record_key = {marker}"  # noqa: S608 - a marker

    def lookup(key: str) -> bytes:
        with _connection(database) as connection:
            row = connection.execute(statement, (key,)).fetchone()
        if row is None:
            return orjson.dumps({"busilist": []})
        # SQLite hands back the JSON text, psycopg the decoded jsonb: each answered as JSON.
        return orjson.dumps({"busilist": [orjson.loads(row[0]) if isinstance(row[0], str) else row[0]]})

    async def endpoint(request: Request) -> Response:
        import anyio.to_thread

        key = orjson.loads(await request.body())["key"]
        if postgres:
            return Response(await lookup_awaited(key), media_type="application/json")
        return Response(await anyio.to_thread.run_sync(lookup, key), media_type="application/json")

    async def lookup_awaited(key: str) -> bytes:
        # psycopg's asyncio connection, awaited on the event loop. The blocking lookup in worker threads
        # (as SQLite's above) stalled with two workers: in three runs of six, some requests took 0.5-2 s
        # (wrk's p99 0.3-1.3 s, and requests past its 2 s timeout failing the run) while its p50 stayed
        # near 3 ms; awaited, six runs of six were steady (p99 5-14 ms), at a higher rate.
        async with _awaited_slots:  # at most POOLED connections, as the threads' limiter kept them
            try:
                connection = _awaited_idle.pop()
            except IndexError:
                connection = await psycopg.AsyncConnection.connect(database, autocommit=True)
            try:
                row = await (await connection.execute(statement, (key,))).fetchone()
            except BaseException:
                with suppress(Exception):  # the lookup's own error is the one to see
                    await connection.close()
                raise
            _awaited_idle.append(connection)
        return orjson.dumps({"busilist": [] if row is None else [row[0]]})

    #: The node's keyset page over a region prefix (``records_read.select_records``): the rest of the
    #: region after the position, then the regions after it; one row more than the page tells
    #: whether another page follows. As in the node, the rest of a region is asked without the prefix
    #: range: beside "region = ? AND record_key > ?" it made SQLite walk the primary key from that key
    #: on, through every later key (280 ms for the last page of a county of 20,000 records).
    not_deleted = "false" if postgres else "0"
    live = f"SELECT record_key, region, data FROM records WHERE business = '0101' AND deleted = {not_deleted}"  # noqa: S608
    in_scope = f"{live} AND region >= {marker} AND region < {marker}"
    order = f" ORDER BY region, record_key LIMIT {marker}"

    def page(prefix: str, size: int, after: list[str] | None) -> bytes:
        bounds = (prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1))
        with _connection(database) as connection:
            if after is None:
                rows = connection.execute(in_scope + order, (*bounds, size + 1)).fetchall()
            else:
                rows = []
                if after[0].startswith(prefix):
                    same = f"{live} AND region = {marker} AND record_key > {marker}{order}"
                    rows = connection.execute(same, (*after, size + 1)).fetchall()
                if len(rows) <= size:
                    later = f"{in_scope} AND region > {marker}{order}"
                    rows += connection.execute(later, (*bounds, after[0], size + 1 - len(rows))).fetchall()
        shown = rows[:size]
        # The stored JSON spliced in as it is (the node does the same on SQLite).
        documents = b",".join(row[2].encode() if isinstance(row[2], str) else orjson.dumps(row[2]) for row in shown)
        following = orjson.dumps([shown[-1][1], shown[-1][0]] if len(rows) > size else None)
        return b'{"busilist":[' + documents + b'],"after":' + following + b"}"

    async def page_endpoint(request: Request) -> Response:
        import anyio.to_thread

        asked = orjson.loads(await request.body())
        answer = await anyio.to_thread.run_sync(page, asked["prefix"], asked["size"], asked["after"])
        return Response(answer, media_type="application/json")

    async def health(_request: Request) -> Response:
        return Response(b"{}", media_type="application/json")

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        import anyio.to_thread

        # No more lookups at once than connections kept (wrk keeps 16 requests in flight in all).
        anyio.to_thread.current_default_thread_limiter().total_tokens = POOLED
        yield
        while _awaited_idle:
            await _awaited_idle.pop().close()

    routes = [
        Route("/lookup", endpoint, methods=["POST"]),
        Route("/page", page_endpoint, methods=["POST"]),
        Route("/healthz", health),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def worker_app() -> Starlette:
    """One of several worker processes (uvicorn's factory), its database from the environment."""
    return build(os.environ[DATABASE_VARIABLE])


if __name__ == "__main__":
    database, port = sys.argv[1], int(sys.argv[2])
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    options: dict[str, Any] = {"host": "127.0.0.1", "port": port, "log_level": "warning", "access_log": False}
    if workers == 1:
        uvicorn.run(build(database), **options)
    else:
        os.environ[DATABASE_VARIABLE] = database
        uvicorn.run("bench.baseline_app:worker_app", factory=True, workers=workers, **options)
