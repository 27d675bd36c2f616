"""ingest-sqlite: signed 01 requests of 1,000 valid 0101 records through the node (all rules, log on),
against a plain sqlite3 executemany upsert of the same rows in WAL with the node's durability setting.

The figure is one worker and one client; the table also shows two workers with four clients."""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path

import orjson
from bench.common import arguments, device, ingest_measured, node_server, report, store_alone_records_per_second


def baseline_records_per_second(records: int, batch: int) -> float:
    """sqlite3 executemany upserts of (key, region, timestamp, JSON text) in batches, one transaction
    each, in WAL with the node's durability setting."""
    with tempfile.TemporaryDirectory() as folder:
        connection = sqlite3.connect(Path(folder) / "plain.db", isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute(
            "CREATE TABLE records (record_key TEXT PRIMARY KEY, region TEXT, updated_at TEXT, data TEXT)"
        )
        statement = (
            "INSERT INTO records VALUES (?, ?, ?, ?) ON CONFLICT(record_key) DO UPDATE SET "
            "region=excluded.region, updated_at=excluded.updated_at, data=excluded.data"
        )
        spent = 0.0
        for offset in range(0, records, batch):
            devices = [device(n) for n in range(offset, min(offset + batch, records))]
            began = time.perf_counter()
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(
                statement,
                [(r["EQP_CODE"], r["AREA_CODE"], r["UPDATE_TIME"], orjson.dumps(r).decode()) for r in devices],
            )
            connection.execute("COMMIT")
            spent += time.perf_counter() - began
        connection.close()
        return records / spent


def main() -> None:
    options = arguments(__doc__ or "", records=50_000, batch=1000)
    records = 2_000 if options.quick else options.records
    baseline = baseline_records_per_second(records, options.batch)
    with tempfile.TemporaryDirectory() as folder:
        store_alone = store_alone_records_per_second(f"sqlite:///{Path(folder) / 'alone.db'}", records, options.batch)
    with node_server() as server:
        one = ingest_measured(server, records, options.batch)
        node = records / one.seconds
    # Not the headline (the figure is one worker): both cores, as a node runs in production.
    with node_server(workers=2) as server:
        two = ingest_measured(server, records, options.batch, clients=4)
        two_workers = records / two.seconds
    report(
        "ingest-sqlite",
        node,
        "records/s",
        baseline,
        "ratio >= 0.5",
        [
            ("records", f"{records:,} in batches of {options.batch}"),
            ("node (HTTP, signed, validated, logged), 1 worker", f"{node:,.0f} records/s; {one.described()}"),
            ("the same, 2 workers and 4 concurrent clients", f"{two_workers:,.0f} records/s; {two.described()}"),
            ("plain sqlite3 executemany upsert (baseline)", f"{baseline:,.0f} records/s"),
            ("the node's store alone, no request (not the baseline)", f"{store_alone:,.0f} records/s"),
        ],
    )


if __name__ == "__main__":
    main()
