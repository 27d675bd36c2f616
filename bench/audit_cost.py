"""audit-cost: 04 by primary key with the interaction log written and chained, against the same node
answering without it (TZSB_BENCH_WITHOUT_LOG=1), both driven by wrk (one thread, 16 connections)
with bodies signed beforehand, each with its own random. Rounds alternate off / on; the medians
are compared. Goal (issue 14): on ≥ 0.9 × off.

``--postgres 1``: both nodes on PostgreSQL (a schema each); ``--workers N``: N server processes
(on PostgreSQL, every worker's entries are chained under one lock).
"""

from __future__ import annotations

import random
import shutil
import statistics
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from bench.common import POSTGRES_URL, WRK_SCRIPT, arguments, device, ingest, node_server, report, signed, wrk_run


@contextmanager
def databases(postgres: bool) -> Iterator[tuple[str, str]]:
    """The off and on nodes' database URLs: embedded SQLite (""), or a fresh PostgreSQL schema each."""
    if not postgres:
        yield "", ""
        return
    schemas = [f"bench_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    separator = "&" if "?" in POSTGRES_URL else "?"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        for schema in schemas:
            admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        off, on = (f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}" for schema in schemas)
        yield off, on
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            for schema in schemas:
                admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def main() -> None:
    options = arguments(__doc__ or "", records=20_000, clients=16, seconds=10, rounds=3, postgres=0, workers=1)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (.ci/run installs it)")
    records = 2_000 if options.quick else options.records
    seconds = 1.0 if options.quick else float(options.seconds)
    rounds = 1 if options.quick else options.rounds
    keys = [device(n)["EQP_CODE"] for n in range(records)]
    # Enough bodies that no random comes twice (a repeated one is answered from its first answer).
    per_round = 3_000 if options.quick else int(2_500 * seconds)
    rates: dict[str, list[float]] = {"off": [], "on": []}
    latency: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory(prefix="tzsb-audit-cost-") as folder:
        script = Path(folder) / "feed.lua"
        script.write_text(WRK_SCRIPT, encoding="utf-8")
        with (
            databases(bool(options.postgres)) as (off_url, on_url),
            node_server(off_url, workers=options.workers, environ={"TZSB_BENCH_WITHOUT_LOG": "1"}) as off_server,
            node_server(on_url, workers=options.workers) as on_server,
        ):
            servers = {"off": off_server, "on": on_server}
            for server in servers.values():
                ingest(server, records)
            for number in range(rounds):
                for mode in ("off", "on"):
                    server = servers[mode]
                    bodies = Path(folder) / f"{mode}-{number}.txt"
                    with bodies.open("wb") as output:
                        for _ in range(per_round):
                            output.write(signed(server.secret, "04", [{"EQP_CODE": random.choice(keys)}]) + b"\n")
                    figures = wrk_run(server.url, bodies, script, seconds, options.clients)
                    if figures["requests"] > per_round:
                        raise RuntimeError(f"{figures['requests']} requests outran {per_round} bodies: raise per_round")
                    rates[mode].append(figures["rate"])
                    latency[mode].append((figures["p50_ms"], figures["p99_ms"]))
    on, off = statistics.median(rates["on"]), statistics.median(rates["off"])

    def described(mode: str) -> str:
        runs = ", ".join(f"{rate:.0f}" for rate in rates[mode])
        p50 = statistics.median(item[0] for item in latency[mode])
        p99 = statistics.median(item[1] for item in latency[mode])
        return f"{statistics.median(rates[mode]):.0f} req/s (runs {runs}); p50 {p50:.1f} ms, p99 {p99:.1f} ms"

    report(
        "audit-cost",
        on,
        "requests/s",
        off,
        "on ≥ 0.9 × off",
        [
            ("log on (written, chained)", described("on")),
            ("log off (baseline)", described("off")),
            ("records / rounds", f"{records} / {rounds} × {seconds:.0f} s, wrk -t1 -c{options.clients}"),
            ("database / workers", f"{'PostgreSQL' if options.postgres else 'SQLite'} / {options.workers}"),
        ],
    )


if __name__ == "__main__":
    main()
