"""audit-cost: 04 by primary key with the interaction log written and chained, against the same node
answering without it (TZSB_BENCH_WITHOUT_LOG=1), both driven by wrk (one thread, 16 connections)
with bodies signed beforehand, each with its own random. Rounds alternate off / on; the medians
are compared. Goal (issue 14): on ≥ 0.9 × off.

``--postgres 1``: both nodes on PostgreSQL (a schema each); ``--workers N``: N server processes
(on PostgreSQL, every worker's entries are chained under one lock).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bench.common import arguments, ingest, key_query_runs, node_server, postgres_schemas, report, wrk_summary


@contextmanager
def databases(postgres: bool) -> Iterator[tuple[str, str]]:
    """The off and on nodes' database URLs: embedded SQLite (""), or a fresh PostgreSQL schema each."""
    if not postgres:
        yield "", ""
        return
    with postgres_schemas(2) as (off, on):
        yield off, on


def main() -> None:
    options = arguments(__doc__ or "", records=20_000, clients=16, seconds=10, rounds=3, postgres=0, workers=1)
    runs, records, rounds = key_query_runs(options)
    with (
        databases(bool(options.postgres)) as (off_url, on_url),
        node_server(off_url, workers=options.workers, environ={"TZSB_BENCH_WITHOUT_LOG": "1"}) as off_server,
        node_server(on_url, workers=options.workers) as on_server,
    ):
        servers = {"off": off_server, "on": on_server}
        for server in servers.values():
            ingest(server, records)
        runs.run(servers, rounds)
    on, off = runs.median("on"), runs.median("off")
    described = runs.described
    report(
        "audit-cost",
        on,
        "requests/s",
        off,
        "on ≥ 0.9 × off",
        [
            ("log on (written, chained)", described("on")),
            ("log off (baseline)", described("off")),
            ("runs", wrk_summary(runs, records, rounds)),
            ("database / workers", f"{'PostgreSQL' if options.postgres else 'SQLite'} / {options.workers}"),
        ],
    )


if __name__ == "__main__":
    main()
