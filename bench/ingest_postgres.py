"""ingest-postgres: signed 01 requests of 1,000 valid 0101 records through a node on PostgreSQL,
against psycopg 3 COPY of the same rows into an equivalent table."""

from __future__ import annotations

import time
import uuid

import orjson
import psycopg
from bench.common import (
    POSTGRES_URL,
    arguments,
    device,
    ingest_measured,
    node_server,
    report,
    store_alone_records_per_second,
)


def schema_url(schema: str) -> str:
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"


def baseline_records_per_second(records: int, batch: int, schema: str) -> float:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'SET search_path TO "{schema}"')
        connection.execute(
            "CREATE TABLE plain_records (record_key text PRIMARY KEY, region text, updated_at text, data jsonb)"
        )
        spent = 0.0
        for offset in range(0, records, batch):
            rows = [device(n) for n in range(offset, min(offset + batch, records))]
            began = time.perf_counter()
            with (
                connection.transaction(),
                connection.cursor() as cursor,
                cursor.copy("COPY plain_records (record_key, region, updated_at, data) FROM STDIN") as copy,
            ):
                for r in rows:
                    copy.write_row((r["EQP_CODE"], r["AREA_CODE"], r["UPDATE_TIME"], orjson.dumps(r).decode()))
            spent += time.perf_counter() - began
    return records / spent


def main() -> None:
    options = arguments(__doc__ or "", records=50_000, batch=1000)
    records = 2_000 if options.quick else options.records
    schema, spare, alone = (f"bench_{uuid.uuid4().hex[:12]}" for _ in range(3))
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        admin.execute(f'CREATE SCHEMA "{spare}"')
        admin.execute(f'CREATE SCHEMA "{alone}"')
    try:
        baseline = baseline_records_per_second(records, options.batch, schema)
        store_alone = store_alone_records_per_second(schema_url(alone), records, options.batch)
        with node_server(schema_url(schema)) as server:
            one = ingest_measured(server, records, options.batch)
            node = records / one.seconds
        # Not the headline (the figure is one worker): both cores, as a node runs in production.
        with node_server(schema_url(spare), workers=2) as server:
            two = ingest_measured(server, records, options.batch, clients=4)
            two_workers = records / two.seconds
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
            admin.execute(f'DROP SCHEMA "{spare}" CASCADE')
            admin.execute(f'DROP SCHEMA "{alone}" CASCADE')
    report(
        "ingest-postgres",
        node,
        "records/s",
        baseline,
        "ratio >= 0.5",
        [
            ("records", f"{records:,} in batches of {options.batch}"),
            (
                "node on PostgreSQL (HTTP, signed, validated, logged), 1 worker",
                f"{node:,.0f} records/s; {one.described()}",
            ),
            ("the same, 2 workers and 4 concurrent clients", f"{two_workers:,.0f} records/s; {two.described()}"),
            ("psycopg 3 COPY", f"{baseline:,.0f} records/s"),
            ("the node's store alone, no request (not the baseline)", f"{store_alone:,.0f} records/s"),
        ],
    )


if __name__ == "__main__":
    main()
