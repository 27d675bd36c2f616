"""ingest-sqlite: signed 01 requests of 1,000 valid 0101 records through the node (all rules, log on),
against a plain sqlite3 executemany upsert of the same rows in WAL with the node's durability setting.

The figure is one worker and one client; the table also shows two workers with four clients."""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from bench.common import arguments, device, ingest, node_server, report

from tzsb.store import open_store
from tzsb.store.records import INSERT_COLUMNS


def _executemany_records_per_second(
    path: Path, records: int, batch: int, statement: str, rows_of: Callable[[int, list[dict[str, Any]]], list[Any]]
) -> float:
    """Write the bench devices in batches, one transaction each, with the node's durability setting."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    spent = 0.0
    for offset in range(0, records, batch):
        devices = [device(n) for n in range(offset, min(offset + batch, records))]
        began = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(statement, rows_of(offset, devices))
        connection.execute("COMMIT")
        spent += time.perf_counter() - began
    connection.close()
    return records / spent


def baseline_records_per_second(records: int, batch: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "plain.db"
        with sqlite3.connect(path) as connection:
            connection.execute(
                "CREATE TABLE records (record_key TEXT PRIMARY KEY, region TEXT, updated_at TEXT, data TEXT)"
            )
        return _executemany_records_per_second(
            path,
            records,
            batch,
            "INSERT INTO records VALUES (?, ?, ?, ?) ON CONFLICT(record_key) DO UPDATE SET "
            "region=excluded.region, updated_at=excluded.updated_at, data=excluded.data",
            lambda _, rows: [(r["EQP_CODE"], r["AREA_CODE"], r["UPDATE_TIME"], orjson.dumps(r).decode()) for r in rows],
        )


def schema_floor_records_per_second(records: int, batch: int) -> float:
    """Not the baseline: the same executemany writing the node's own rows into the node's own schema
    (12 columns, primary key, region and change-sequence indexes). Shows how much of the gap is the
    schema rather than the request pipeline."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "node-schema.db"
        open_store(f"sqlite:///{path}").dispose()
        columns = ", ".join(INSERT_COLUMNS)
        markers = ", ".join("?" for _ in INSERT_COLUMNS)

        def node_rows(offset: int, rows: list[dict[str, Any]]) -> list[Any]:
            return [
                ("0101", r["EQP_CODE"], r["AREA_CODE"], r["UPDATE_TIME"], orjson.dumps(r).decode(), False, None,
                 None, "bench", "bench", "2026-11-01 10:00:00", offset + index + 1)
                for index, r in enumerate(rows)
            ]  # fmt: skip

        statement = f"INSERT INTO records ({columns}) VALUES ({markers})"  # noqa: S608 - fixed names
        return _executemany_records_per_second(path, records, batch, statement, node_rows)


def main() -> None:
    options = arguments(__doc__ or "", records=50_000, batch=1000)
    records = 2_000 if options.quick else options.records
    baseline = baseline_records_per_second(records, options.batch)
    floor = schema_floor_records_per_second(records, options.batch)
    with node_server() as server:
        node = records / ingest(server, records, options.batch)
    # Not the headline (the figure is one worker): both cores, as a node runs in production.
    with node_server(workers=2) as server:
        two_workers = records / ingest(server, records, options.batch, clients=4)
    report(
        "ingest-sqlite",
        node,
        "records/s",
        baseline,
        "ratio >= 0.5",
        [
            ("records", f"{records:,} in batches of {options.batch}"),
            ("node (HTTP, signed, validated, logged), 1 worker", f"{node:,.0f} records/s"),
            ("the same, 2 workers and 4 concurrent clients", f"{two_workers:,.0f} records/s"),
            ("plain sqlite3 executemany upsert (baseline)", f"{baseline:,.0f} records/s"),
            ("the same, node's rows into node's schema", f"{floor:,.0f} records/s (not the baseline)"),
        ],
    )


if __name__ == "__main__":
    main()
