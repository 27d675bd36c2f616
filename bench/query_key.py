"""query-key: 04 by primary key from 16 connections (requests/s, p50, p99), against a bare Starlette
endpoint doing the same SQLite lookup and returning the JSON unsigned. Both are driven by wrk (one
thread, bodies prepared beforehand: the node's signed, each with its own random), in alternating
rounds; the medians are compared. A Python client capped both sides near 500 requests/s (issue 16).

``--postgres 1``: the node on PostgreSQL (a fresh schema), and the baseline reading the same table
with psycopg; ``--workers N``: N server processes for the node and the baseline alike.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
from bench.common import (
    Target,
    arguments,
    free_port,
    ingest,
    key_query_runs,
    node_server,
    postgres_schemas,
    report,
    wait_healthy,
    wrk_summary,
)


@contextmanager
def database(postgres: bool) -> Iterator[str]:
    """The node's database URL: embedded SQLite (""), or a fresh PostgreSQL schema."""
    if not postgres:
        yield ""
        return
    with postgres_schemas(1) as (url,):
        yield url


def main() -> None:
    options = arguments(__doc__ or "", records=20_000, clients=16, seconds=10, rounds=3, postgres=0, workers=1)
    # The baseline answers several thousand a second: enough distinct bodies for it too.
    runs, records, rounds = key_query_runs(options, bodies_per_second=12_000)
    with database(bool(options.postgres)) as url, node_server(url, workers=options.workers) as server:
        ingest(server, records)
        port = free_port()
        baseline_database = url or str(server.database_file)
        baseline = subprocess.Popen(
            [sys.executable, "-m", "bench.baseline_app", baseline_database, str(port), str(options.workers)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_healthy(f"http://127.0.0.1:{port}", baseline)
            bare = Target(f"http://127.0.0.1:{port}/lookup", lambda key: orjson.dumps({"key": key}))
            runs.run({"node": server, "baseline": bare}, rounds)
        finally:
            baseline.terminate()
            baseline.wait(timeout=30)
    node, base = runs.median("node"), runs.median("baseline")
    report(
        "query-key",
        node,
        "requests/s",
        base,
        "ratio >= 0.6, p99 <= 3 x the baseline's",
        [
            ("runs", wrk_summary(runs, records, rounds)),
            ("database / workers", f"{'PostgreSQL' if options.postgres else 'SQLite'} / {options.workers}"),
            ("node 04 by key", runs.described("node")),
            ("bare Starlette + the same lookup", runs.described("baseline")),
            ("p99 node / baseline", f"{runs.p99('node') / runs.p99('baseline'):.2f}"),
        ],
    )


if __name__ == "__main__":
    main()
