"""Keyset pages over regions: the right rows in the right order, each page an index range scan.

A page of a region query is "the rest of this region after key k, then the regions after it".
SQLite, without statistics, once answered "region = ? AND record_key > ?" beside the caller's
region range by walking the primary-key index from k onwards, filtering by region: harmless while
keys happened to start with their region, a scan of the table per page otherwise. The plans are
checked here on data whose keys say nothing about their region.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Final

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tzsb.store import RecordQuery, Store, open_store, records_read, records_written

REGIONS: Final = ("110101", "330102", "330106", "330110", "330201", "339900")
#: Prefixes a query may carry: the caller's scope and ``_region``, nested or (in the model) not.
PREFIXES: Final = ("", "33", "3301", "330106", "11", "3302")


def _dataset(count: int) -> list[tuple[str, str, bool]]:
    """(key, region, deleted): keys drawn independently of regions, a tenth of them deleted."""
    chooser = random.Random(20261130)
    keys = chooser.sample(range(10**6), count)
    return [(f"K{key:06d}", chooser.choice(REGIONS), chooser.random() < 0.1) for key in keys]


def _row(key: str, region: str, deleted: bool, seq: int) -> records_written.NewRow:
    data = records_written.document({"EQP_CODE": key, "AREA_CODE": region, "UPDATE_TIME": "2026-01-01 00:00:00"})
    deleted_at, deleted_by = ("2026-02-01 00:00:00", "x") if deleted else (None, None)
    return ("0101", key, region, "2026-01-01 00:00:00", data, deleted, deleted_at, deleted_by,
            "x", "x", "2026-01-01 00:00:00", seq)  # fmt: skip


def _filled(url: str, rows: list[tuple[str, str, bool]]) -> Store:
    store = open_store(url)
    with store.write() as connection:
        records_written.insert(connection, [_row(*row, seq) for seq, row in enumerate(rows, 1)])
        records_written.store_change_counter(connection, len(rows))
    return store


@pytest.fixture
def small_store(database_url: str) -> Iterator[tuple[Store, list[tuple[str, str, bool]]]]:
    rows = _dataset(120)
    store = _filled(database_url, rows)
    yield store, rows
    store.dispose()


def _model(rows: list[tuple[str, str, bool]], query: RecordQuery) -> list[str]:
    kept = [
        (region, key)
        for key, region, deleted in rows
        if (query.include_deleted or not deleted)
        and all(region.startswith(prefix) for prefix in query.region_prefixes)
        and query.region in (None, region)
    ]
    return [key for _, key in sorted(kept)]


def _all_pages(store: Store, query: RecordQuery) -> list[str]:
    seen: list[str] = []
    after: tuple[str, str] | None = None
    with store.read() as connection:
        while True:
            page = records_read.select_records(connection, replace(query, after=after))
            seen += [row.key for row in page]
            if len(page) < query.limit:
                return seen
            after = (page[-1].region, page[-1].key)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    prefixes=st.lists(st.sampled_from(PREFIXES), max_size=3),
    pinned=st.none() | st.sampled_from(REGIONS),
    include_deleted=st.booleans(),
    limit=st.integers(1, 40),
)
def test_pages_join_up_to_the_whole_answer(
    small_store: tuple[Store, list[tuple[str, str, bool]]],
    prefixes: list[str],
    pinned: str | None,
    include_deleted: bool,
    limit: int,
) -> None:
    store, rows = small_store
    query = RecordQuery(
        "0101", region_prefixes=tuple(prefixes), region=pinned, include_deleted=include_deleted, limit=limit
    )
    assert _all_pages(store, query) == _model(rows, query)


def test_a_pinned_region_after_a_position_outside_it(
    small_store: tuple[Store, list[tuple[str, str, bool]]],
) -> None:
    store, rows = small_store
    everything = _model(rows, RecordQuery("0101", region="330106"))

    def page(after: tuple[str, str]) -> list[str]:
        with store.read() as connection:
            query = RecordQuery("0101", region="330106", after=after, limit=1000)
            return [row.key for row in records_read.select_records(connection, query)]

    assert page(("330102", "K999999")) == everything
    assert page(("330106", everything[2])) == everything[3:]
    assert page(("330110", "")) == []


def _plans(store: Store, queries: list[RecordQuery]) -> list[tuple[str, list[str]]]:
    """Every statement the queries ran, with SQLite's plan for it (bound parameters, as run)."""
    with _pages_read() as statements, store.read() as connection:
        for query in queries:
            records_read.select_records(connection, query)
        driver = connection.connection.driver_connection
        assert driver is not None
        return [
            (statement, [str(line[3]) for line in driver.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)])
            for statement, parameters in statements
        ]


@contextmanager
def _pages_read() -> Iterator[list[tuple[str, Any]]]:
    """The page statements run meanwhile, with their parameters. Pages go to the driver itself
    (``driver_rows``), past SQLAlchemy's events: captured there."""
    statements: list[tuple[str, Any]] = []
    run = records_read.driver_rows

    def capture(connection: Any, statement: str, parameters: Any = ()) -> list[Any]:
        if statement.startswith("SELECT") and "FROM records" in statement:
            statements.append((statement, parameters))
        return run(connection, statement, parameters)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(records_read, "driver_rows", capture)
        yield statements


def test_every_region_page_is_a_range_scan_of_the_region_index(tmp_path: Any) -> None:
    rows = _dataset(3000)
    store = _filled(f"sqlite:///{tmp_path / 'plans.db'}", rows)
    try:
        with store.read() as connection:
            first = records_read.select_records(connection, RecordQuery("0101", region_prefixes=("33", "3301")))
        middle = (first[-1].region, first[-1].key)
        end_of_region = max((region, key) for key, region, _ in rows if region == "330106")
        queries = [
            RecordQuery("0101", region_prefixes=("33", "3301")),
            RecordQuery("0101", region_prefixes=("33", "3301"), after=middle),
            RecordQuery("0101", region_prefixes=("33", "3301"), after=end_of_region),
            RecordQuery("0101", region_prefixes=("33",), region="330106"),
            RecordQuery("0101", region_prefixes=("33",), region="330106", after=end_of_region),
            RecordQuery("0101", region_prefixes=("33",), region="330106", after=("330106", rows[0][0])),
            RecordQuery("0101", region_prefixes=("33", "3301"), equals={"UPDATE_TIME": "x"}, after=middle),
        ]
        plans = _plans(store, queries)
    finally:
        store.dispose()
    assert len(plans) >= len(queries)
    for statement, plan in plans:
        assert len(plan) == 1, (statement, plan)
        assert plan[0].startswith("SEARCH records USING INDEX ix_records_region (business=? AND region"), (
            statement,
            plan,
        )
        if "region = ?" in statement:
            assert "region=?" in plan[0], (statement, plan)


def _model_by_key(rows: list[tuple[str, str, bool]], query: RecordQuery) -> list[str]:
    """What a query naming its key answers: the model's rows of that key after the position."""
    assert query.key is not None
    seqs = {key: seq for seq, (key, _, _) in enumerate(rows, 1)}
    regions = {key: region for key, region, _ in rows}
    found = [key for key in _model(rows, query) if key == query.key]
    if query.after is None:
        return found
    if query.by_seq:
        return [key for key in found if seqs[key] > int(query.after[0])]
    return [key for key in found if (regions[key], key) > query.after]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.data(),
    prefixes=st.lists(st.sampled_from(PREFIXES), max_size=3),
    pinned=st.none() | st.sampled_from(REGIONS),
    include_deleted=st.booleans(),
    by_seq=st.booleans(),
)
def test_a_query_by_key_answers_its_row_only_within_scope_and_after_the_position(
    small_store: tuple[Store, list[tuple[str, str, bool]]],
    data: st.DataObject,
    prefixes: list[str],
    pinned: str | None,
    include_deleted: bool,
    by_seq: bool,
) -> None:
    store, rows = small_store
    key = data.draw(st.sampled_from([row[0] for row in rows]) | st.just("K-none"))
    # Positions right at the key's own row (and either side of it) as well as anywhere.
    seq = next((number for number, row in enumerate(rows, 1) if row[0] == key), 0)
    region = next((row[1] for row in rows if row[0] == key), REGIONS[0])
    after: tuple[str, str] | tuple[int] | None
    if by_seq:
        after = data.draw(
            st.none() | st.tuples(st.sampled_from([seq - 1, seq, seq + 1]) | st.integers(0, len(rows) + 1))
        )
    else:
        near = st.sampled_from([(region, key), (region, key[:-1]), (region, key + "0")])
        after = data.draw(
            st.none() | near | st.tuples(st.sampled_from(REGIONS), st.sampled_from([key, "K", "K999999"]))
        )
    query = RecordQuery(
        "0101",
        key=key,
        region_prefixes=tuple(prefixes),
        region=pinned,
        include_deleted=include_deleted,
        by_seq=by_seq,
        after=after,
    )
    with store.read() as connection:
        found = [row.key for row in records_read.select_records(connection, query)]
    assert found == _model_by_key(rows, query)


@pytest.mark.postgres
def test_a_key_look_up_on_a_freshly_loaded_postgresql_table_uses_the_primary_key(postgres_url: str) -> None:
    """Without statistics (no ANALYZE yet), PostgreSQL took the caller's region range beside the key
    as a reason to walk ``ix_records_region`` through the whole scope: 2.9 ms a look-up at 20,000
    records. The key query must reach the row through the primary key whatever the statistics."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    rows = [(f"K{number:06d}", "330106", False) for number in range(20_000)]
    store = _filled(f"{postgres_url}?options=-csearch_path%3D{schema}", rows)
    try:
        with _pages_read() as statements, store.read() as connection:
            query = RecordQuery("0101", key="K012345", region_prefixes=("33",))
            assert [row.key for row in records_read.select_records(connection, query)] == ["K012345"]
            ((statement, parameters),) = statements
            marked = statement.replace("?", "%s")
            plan = "\n".join(
                str(line[0]) for line in connection.exec_driver_sql(f"EXPLAIN {marked}", tuple(parameters))
            )
    finally:
        store.dispose()
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    assert "records_pkey" in plan, plan
