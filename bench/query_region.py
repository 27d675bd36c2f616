"""query-region: 04 by _region in pages of 100 over 200,000 records (pages/s), against the same
keyset SELECT in plain sqlite3 on the same database file."""

from __future__ import annotations

import sqlite3
import time

import httpx
from bench.common import arguments, ingest, node_server, post_ok, report, signed

REGION = "330100"  # half of the bench devices lie in Hangzhou (3301xx)


def node_pages_per_second(url: str, secret: str, page_size: int, max_pages: int) -> tuple[float, int]:
    pages = 0
    cursor: str | None = None
    with httpx.Client(timeout=60) as client:
        began = time.perf_counter()
        while pages < max_pages:
            conditions: dict[str, object] = {"_region": REGION, "_page_size": page_size}
            if cursor:
                conditions["_cursor"] = cursor
            answer = post_ok(client, url, signed(secret, "04", [conditions]))
            pages += 1
            cursor = answer["datalist"]["next_cursor"]
            if not cursor:
                break
        elapsed = time.perf_counter() - began
    return pages / elapsed, pages


def checkpoint(path: str) -> None:
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    connection.close()


def baseline_pages_per_second(path: str, page_size: int, pages: int) -> float:
    """The node's keyset SELECTs (the rest of the region, then the next regions), in plain sqlite3."""
    connection = sqlite3.connect(path)
    base = (
        "SELECT record_key, region, data FROM records WHERE business = '0101' AND region >= '3301' "
        "AND region < '3302' AND deleted = 0 AND "
    )
    after: tuple[str, str] | None = None
    began = time.perf_counter()
    for _ in range(pages):
        if after is None:
            rows = connection.execute(base + "1 ORDER BY region, record_key LIMIT ?", (page_size + 1,)).fetchall()
        else:
            rows = connection.execute(
                base + "region = ? AND record_key > ? ORDER BY region, record_key LIMIT ?",
                (after[0], after[1], page_size + 1),
            ).fetchall()
            if len(rows) <= page_size:
                rows += connection.execute(
                    base + "region > ? ORDER BY region, record_key LIMIT ?",
                    (after[0], page_size + 1 - len(rows)),
                ).fetchall()
        if not rows:
            break
        last = rows[min(page_size, len(rows)) - 1]
        after = (last[1], last[0])
    elapsed = time.perf_counter() - began
    connection.close()
    return pages / elapsed


def main() -> None:
    options = arguments(__doc__ or "", records=200_000, page_size=100)
    records = 4_000 if options.quick else options.records
    with node_server() as server:
        ingest(server, records)
        # Node and baseline read the same file in the same state: the write-ahead log the ingest left
        # copied into it (the node's background checkpoints may still be at it when ingest ends).
        checkpoint(str(server.database_file))
        node_rate, pages = node_pages_per_second(server.url, server.secret, options.page_size, 10**9)
        baseline = baseline_pages_per_second(str(server.database_file), options.page_size, pages)
    report(
        "query-region",
        node_rate,
        "pages/s",
        baseline,
        "ratio >= 0.5",
        [
            ("records held", f"{records:,} ({pages:,} pages of {options.page_size} in {REGION})"),
            ("node 04 by _region with _cursor", f"{node_rate:,.1f} pages/s"),
            ("plain sqlite3 keyset SELECT", f"{baseline:,.1f} pages/s"),
        ],
    )


if __name__ == "__main__":
    main()
