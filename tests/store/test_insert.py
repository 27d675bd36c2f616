"""New records go in by one statement over a JSON array on SQLite, row by row otherwise: the rows
stored must be the same either way, byte for byte."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Connection

from tests.support import JSON_VALUES
from tzsb.store import NewRecords, Store, open_store, records_written


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url)
    yield opened
    opened.dispose()


def _new(records: list[dict[str, Any]], seqs: list[int]) -> NewRecords:
    return NewRecords("0101", "EQP_CODE", "AREA_CODE", "UPDATE_TIME", records, seqs, "app", "2026-11-30 10:00:00")


def _stored_rows(connection: Connection) -> list[tuple[Any, ...]]:
    return [
        tuple(row)
        for row in connection.exec_driver_sql(
            "SELECT business, record_key, region, updated_at, CAST(data AS TEXT), deleted, deleted_at, "
            "deleted_by, source_appid, changed_by, changed_at, seq FROM records ORDER BY seq"
        )
    ]


def _all_rows(store: Store) -> list[tuple[Any, ...]]:
    with store.read() as connection:
        return _stored_rows(connection)


class _RolledBack(Exception):
    pass


def _inserted_then_rolled_back(store: Store, insert: Callable[[Connection], None]) -> list[tuple[Any, ...]]:
    """The rows ``insert`` leaves, read inside its transaction, which is then rolled back."""
    rows: list[tuple[Any, ...]] = []
    with pytest.raises(_RolledBack), store.write() as connection:
        insert(connection)
        rows = _stored_rows(connection)
        raise _RolledBack
    return rows


def _while_nothing(connection: Connection, new: NewRecords) -> None:
    """``inserting`` around an empty block: the statement in its helper thread."""
    with records_written.inserting(connection, new):
        pass


def _record(number: int, **fields: Any) -> dict[str, Any]:
    return {"EQP_CODE": f"K{number:04d}", "AREA_CODE": "330106", "UPDATE_TIME": "2026-11-01 10:00:00", **fields}


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path_factory.mktemp('insert') / 'tzsb.db'}")
    yield opened
    opened.dispose()


@settings(max_examples=60, deadline=None)
@given(
    extras=st.lists(st.dictionaries(st.text(min_size=1, max_size=8), JSON_VALUES, max_size=4), min_size=1, max_size=6),
    key_text=st.text(min_size=1, max_size=12),
    first=st.integers(1, 10**12),
)
def test_one_statement_stores_what_rows_would(
    sqlite_store: Store, extras: list[dict[str, Any]], key_text: str, first: int
) -> None:
    records = [{**extra, **_record(number), "EQP_CODE": f"{key_text}{number}"} for number, extra in enumerate(extras)]
    new = _new(records, list(range(first, first + len(records))))
    one_statement = _inserted_then_rolled_back(
        sqlite_store, lambda connection: records_written.insert_new(connection, new)
    )
    row_by_row = _inserted_then_rolled_back(
        sqlite_store, lambda connection: records_written.insert(connection, new.rows())
    )
    in_a_thread = _inserted_then_rolled_back(sqlite_store, lambda connection: _while_nothing(connection, new))
    assert one_statement == row_by_row == in_a_thread
    assert [row[4] for row in one_statement] == [records_written.document(record) for record in records]


def test_number_keys_and_interleaved_sequences_take_the_row_path(store: Store) -> None:
    numbered = _new([{**_record(1), "EQP_CODE": 15}, _record(2)], [1, 2])
    gapped = _new([_record(3), _record(4)], [3, 5])
    with store.write() as connection:
        records_written.insert_new(connection, numbered)
        records_written.insert_new(connection, gapped)
    assert [(row[1], row[11]) for row in _all_rows(store)] == [("15", 1), ("K0002", 2), ("K0003", 3), ("K0004", 5)]


def test_nothing_new_writes_nothing(store: Store) -> None:
    with store.write() as connection:
        records_written.insert_new(connection, _new([], []))
    assert _all_rows(store) == []


def test_a_key_already_stored_fails_the_whole_statement(store: Store) -> None:
    with store.write() as connection:
        records_written.insert_new(connection, _new([_record(1)], [1]))
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"), store.write() as connection:
        records_written.insert_new(connection, _new([_record(2), _record(1)], [2, 3]))
    assert [row[1] for row in _all_rows(store)] == ["K0001"]


def _sqlite_version(store: Store, version: tuple[int, ...]) -> None:
    store.engine.dialect.server_version_info = version


@pytest.mark.parametrize("version", [(3, 34, 1), (3, 35, 0)], ids=["fields-extracted", "fields-joined"])
def test_both_statements_store_what_rows_would(tmp_path: Path, version: tuple[int, ...]) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'tzsb.db'}")
    try:
        _sqlite_version(store, version)
        records = [_record(number, NAME=f'名称 "{number}" \\ \u00e9', LIST=[number, None]) for number in range(50)]
        new = _new(records, list(range(7, 57)))
        with store.read() as connection:
            chosen = records_written._one_statement(connection, new)
        joined = records_written._INSERT_FROM_ARRAYS if version >= (3, 35) else records_written._INSERT_FROM_ARRAY
        assert chosen is not None and chosen[0] == joined
        one_statement = _inserted_then_rolled_back(
            store, lambda connection: records_written.insert_new(connection, new)
        )
        row_by_row = _inserted_then_rolled_back(
            store, lambda connection: records_written.insert(connection, new.rows())
        )
        assert one_statement == row_by_row
        assert len(one_statement) == 50
    finally:
        store.dispose()


@pytest.mark.skipif(sqlite3.sqlite_version_info < (3, 35, 0), reason="the joined statement needs SQLite 3.35")
def test_the_joined_statement_scans_the_documents_once(tmp_path: Path) -> None:
    """The plan that keeps the statement linear: the documents scanned in one pass, each one's fields
    found through an index (json_each scanned per document would be quadratic in the batch)."""
    store = open_store(f"sqlite:///{tmp_path / 'tzsb.db'}")
    try:
        with store.read() as connection:
            statement = records_written._one_statement(connection, _new([_record(1), _record(2)], [1, 2]))
            assert statement is not None and statement[0] == records_written._INSERT_FROM_ARRAYS
            plan = [row[3] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement[0], statement[1])]
    finally:
        store.dispose()
    scans = [step for step in plan if step.startswith("SCAN")]
    assert scans[-1].startswith("SCAN documents"), plan
    assert any("AUTOMATIC" in step and "fields" in step for step in plan), plan
