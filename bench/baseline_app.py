"""The query-key baseline: a bare Starlette endpoint doing the node's SQLite lookup, unsigned.

Run as ``python -m bench.baseline_app DB_FILE PORT`` (one uvicorn worker, like the node).
"""

from __future__ import annotations

import sqlite3
import sys
import threading

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_local = threading.local()


def _connection(path: str) -> sqlite3.Connection:
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = sqlite3.connect(path, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        _local.connection = connection
    return connection


def build(path: str) -> Starlette:
    def lookup(key: str) -> bytes:
        row = (
            _connection(path)
            .execute("SELECT data FROM records WHERE business = '0101' AND record_key = ?", (key,))
            .fetchone()
        )
        return orjson.dumps({"busilist": [orjson.loads(row[0])] if row else []})

    async def endpoint(request: Request) -> Response:
        import anyio.to_thread

        key = orjson.loads(await request.body())["key"]
        return Response(await anyio.to_thread.run_sync(lookup, key), media_type="application/json")

    async def health(_request: Request) -> Response:
        return Response(b"{}", media_type="application/json")

    return Starlette(routes=[Route("/lookup", endpoint, methods=["POST"]), Route("/healthz", health)])


if __name__ == "__main__":
    uvicorn.run(build(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
