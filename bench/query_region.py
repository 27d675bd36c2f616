"""query-region: 04 by _region in pages of 100 over 200,000 records (pages/s, p50, p99) from 4
connections, against a bare Starlette endpoint running the node's keyset SELECTs in sqlite3 on the
same database file and answering the stored JSON unsigned. Both are driven by wrk (one thread, bodies
prepared beforehand) in alternating rounds, and the medians are compared.

Four callers page through four counties side by side (each county holds a tenth of the records):
the bodies go page 1 of each county, then page 2 of each, and so on, each with its own random. The
cursors (node) and positions (baseline) come from one walk through each county beforehand, one page
at a time, whose rate is printed too.
"""

from __future__ import annotations

import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from bench.common import (
    Feed,
    WrkRuns,
    arguments,
    free_port,
    ingest,
    node_server,
    post_ok,
    report,
    signed,
    wait_healthy,
)

#: Counties of the bench devices (``bench.common.device``: ten counties, a tenth of the records each).
COUNTIES = ("330102", "330105", "330106", "330108", "330110", "330203", "330205", "330206", "330211", "330212")


def node_walk(url: str, secret: str, region: str, page_size: int) -> tuple[list[str | None], float]:
    """The cursor of every page of ``region`` in order (None: the first page), and pages/s of the walk."""
    cursors: list[str | None] = [None]
    with httpx.Client(timeout=60) as client:
        began = time.perf_counter()
        while True:
            answer = post_ok(client, url, node_page(secret, region, page_size, cursors[-1]))
            cursor = answer["datalist"]["next_cursor"]
            if not cursor:
                return cursors, len(cursors) / (time.perf_counter() - began)
            cursors.append(cursor)


def node_page(secret: str, region: str, page_size: int, cursor: str | None) -> bytes:
    conditions: dict[str, object] = {"_region": region, "_page_size": page_size}
    if cursor:
        conditions["_cursor"] = cursor
    return signed(secret, "04", [conditions])


def baseline_page(region: str, page_size: int, after: Any) -> bytes:
    return orjson.dumps({"prefix": region, "size": page_size, "after": after})


def baseline_walk(url: str, region: str, page_size: int) -> tuple[list[Any], float]:
    """The keyset position before every page of ``region`` (None: the first page), and pages/s of the walk."""
    positions: list[Any] = [None]
    with httpx.Client(timeout=60) as client:
        began = time.perf_counter()
        while True:
            answer = orjson.loads(client.post(url, content=baseline_page(region, page_size, positions[-1])).content)
            if answer["after"] is None:
                return positions, len(positions) / (time.perf_counter() - began)
            positions.append(answer["after"])


def checkpoint(path: str) -> None:
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    connection.close()


def side_by_side(walks: dict[str, list[Any]], body: Callable[[str, Any], bytes]) -> Callable[[int], bytes]:
    """The ``n``-th body when callers page through the regions of ``walks`` side by side: the next page
    of each region in turn (``body(region, position of the page)``, made afresh: a new random each),
    each walk starting over when done."""
    regions = list(walks)

    def nth(index: int) -> bytes:
        region = regions[index % len(regions)]
        return body(region, walks[region][(index // len(regions)) % len(walks[region])])

    return nth


def main() -> None:
    options = arguments(__doc__ or "", records=200_000, page_size=100, clients=4, seconds=10, rounds=3)
    records = 4_000 if options.quick else options.records
    seconds, rounds = (1.0, 1) if options.quick else (float(options.seconds), options.rounds)
    with node_server() as server:
        ingest(server, records)
        # Node and baseline read the same file in the same state: the write-ahead log the ingest left
        # copied into it (the node's background checkpoints may still be at it when ingest ends).
        checkpoint(str(server.database_file))
        port = free_port()
        baseline = subprocess.Popen(
            [sys.executable, "-m", "bench.baseline_app", str(server.database_file), str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_healthy(f"http://127.0.0.1:{port}", baseline)
            base_url = f"http://127.0.0.1:{port}/page"
            counties = COUNTIES[: options.clients]
            cursors = {county: node_walk(server.url, server.secret, county, options.page_size) for county in counties}
            positions = {county: baseline_walk(base_url, county, options.page_size) for county in counties}
            if any(len(positions[county][0]) != len(cursors[county][0]) for county in counties):
                raise RuntimeError("the node and the baseline gave different numbers of pages")
            pages = sum(len(walk) for walk, _ in cursors.values())
            node_walked = statistics.mean(rate for _, rate in cursors.values())
            base_walked = statistics.mean(rate for _, rate in positions.values())
            runs = WrkRuns(seconds=seconds, clients=options.clients, per_round=int(4_000 * seconds) + 500)
            node_body = side_by_side(
                {county: walk for county, (walk, _) in cursors.items()},
                lambda county, cursor: node_page(server.secret, county, options.page_size, cursor),
            )
            base_body = side_by_side(
                {county: walk for county, (walk, _) in positions.items()},
                lambda county, after: baseline_page(county, options.page_size, after),
            )
            runs.run_feeds({"node": Feed(server.url, node_body), "baseline": Feed(base_url, base_body)}, rounds)
        finally:
            baseline.terminate()
            baseline.wait(timeout=30)
    report(
        "query-region",
        runs.median("node"),
        "pages/s",
        runs.median("baseline"),
        "ratio >= 0.5",
        [
            ("records held", f"{records:,} ({pages:,} pages of {options.page_size} in {', '.join(counties)})"),
            ("runs", f"wrk -t1 -c{runs.clients}, {rounds} alternating rounds of {runs.seconds:.0f} s"),
            ("node 04 by _region with _cursor", runs.described("node").replace("req/s", "pages/s")),
            ("bare Starlette + the same keyset SELECTs", runs.described("baseline").replace("req/s", "pages/s")),
            ("one walk, a page at a time (httpx)", f"node {node_walked:,.1f}, baseline {base_walked:,.1f} pages/s"),
        ],
    )


if __name__ == "__main__":
    main()
