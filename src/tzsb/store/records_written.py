"""Writing business records, and the change counter that orders every write.

Every write assigns each changed row the next change sequence (``seq``) in the same transaction.
Writers lock the single ``change_counter`` row before anything else, so sequences are handed out
in commit order: a reader that has seen ``seq = n`` never later finds a new row below ``n``.

Every change of a stored record first copies the version it replaces to ``record_versions``, and
every write notes its range of sequences with who made it and through which request
(``record_changes``): a record's history.

Owns writes to the ``records``, ``record_versions``, ``record_changes`` and ``change_counter`` tables.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tzsb.store.dialects import dialect_of
from tzsb.store.schema import change_counter, record_changes, record_versions, records, region_departures


def lock_change_counter(connection: Connection) -> int:
    """Take the writers' lock (row lock on PostgreSQL) and return the last sequence handed out."""
    statement = sa.select(change_counter.c.last_seq).where(change_counter.c.id == 1).with_for_update()
    return int(connection.execute(statement).scalar_one())


def try_lock_change_counter(connection: Connection) -> int | None:
    """``lock_change_counter`` if no other writer holds the lock now (PostgreSQL: SKIP LOCKED), else None."""
    statement = sa.select(change_counter.c.last_seq).where(change_counter.c.id == 1).with_for_update(skip_locked=True)
    last_seq = connection.execute(statement).scalar_one_or_none()
    return None if last_seq is None else int(last_seq)


def store_change_counter(connection: Connection, last_seq: int) -> None:
    connection.execute(sa.update(change_counter).where(change_counter.c.id == 1).values(last_seq=last_seq))


#: Column order of the rows ``insert`` takes.
INSERT_COLUMNS = (
    "business",
    "record_key",
    "region",
    "updated_at",
    "data",
    "deleted",
    "deleted_at",
    "deleted_by",
    "source_appid",
    "changed_by",
    "changed_at",
    "seq",
)
#: A new row in ``INSERT_COLUMNS`` order; ``data`` is the document as compact JSON text (``document``).
NewRow = tuple[str, str, str, str, str, bool, str | None, str | None, str, str, str, int]


def document(data: Mapping[str, Any]) -> str:
    """A record as the JSON text the store keeps (and raw reads splice into answers unparsed)."""
    return orjson.dumps(data).decode("utf-8")


def insert(connection: Connection, rows: Sequence[NewRow]) -> None:
    """Insert new rows, straight to the driver, inside the caller's transaction.

    SQLite: one executemany. PostgreSQL: COPY (psycopg's executemany costs ~50 µs a row in Python).
    SQLAlchemy's per-row parameter processing was most of the cost of a 1,000-record add.
    """
    if not rows:
        return
    dialect_of(connection).insert_rows(connection, "records", INSERT_COLUMNS, rows)


@dataclass(frozen=True, slots=True)
class NewRecords:
    """Records new to the store, added by one app in one write, with their change sequences."""

    business: str
    key_field: str
    region_field: str
    timestamp_field: str
    records: Sequence[Mapping[str, Any]]
    seqs: Sequence[int]
    appid: str
    now: str

    def rows(self) -> list[NewRow]:
        return [
            (self.business, str(record[self.key_field]), record[self.region_field], record[self.timestamp_field],
             document(record), False, None, None, self.appid, self.appid, self.now, seq)
            for seq, record in zip(self.seqs, self.records, strict=True)
        ]  # fmt: skip


#: SQLite: the new rows of a batch in one statement over one JSON array of the documents. The
#: sqlite3 module binds 12 parameters per row of an executemany in Python and takes the GIL back
#: for every row; this binds 7 in all and leaves the GIL while SQLite parses and inserts.
#: json_each gives each element's text exactly as orjson wrote it (compact, strings verbatim). The
#: arrays go in as orjson's bytes, cast to text: SQLite 3.45 and later read a BLOB as binary JSONB.
#: Key, region and timestamp come from a second, small array of [key, region, timestamp] joined by
#: position: json_extract on each document parsed all of it again (a third of the statement's time).
#: MATERIALIZED and CROSS JOIN fix the plan: the documents scanned once, the fields found through
#: an automatic index (the other way round, json_each would be scanned once per document).
_INSERT_FROM_ARRAYS = (
    "WITH fields(position, record_key, region, updated_at) AS MATERIALIZED ("  # noqa: S608 - fixed names
    "SELECT key, json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]') "
    "FROM json_each(CAST(? AS TEXT))) "
    f"INSERT INTO records ({', '.join(INSERT_COLUMNS)}) "
    "SELECT ?, fields.record_key, fields.region, fields.updated_at, documents.value, 0, NULL, NULL, ?, ?, ?, "
    "? + documents.key FROM json_each(CAST(? AS TEXT)) AS documents "
    "CROSS JOIN fields ON fields.position = documents.key"
)
#: The same for SQLite before 3.35 (no MATERIALIZED): the fields read out of each document.
_INSERT_FROM_ARRAY = (
    f"INSERT INTO records ({', '.join(INSERT_COLUMNS)}) "  # noqa: S608 - fixed names
    "SELECT ?, json_extract(value, ?), json_extract(value, ?), json_extract(value, ?), value, 0, NULL, NULL, "
    "?, ?, ?, ? + key FROM json_each(CAST(? AS TEXT))"
)
_MATERIALIZED_SINCE = (3, 35, 0)


def _plain_texts(values: list[Any]) -> bool:
    """All strings, none holding NUL (checked per column in C: a per-value test cost 1 ms a batch)."""
    return set(map(type, values)) == {str} and "\x00" not in "".join(values)


def _one_statement(connection: Connection, new: NewRecords) -> tuple[str, tuple[Any, ...]] | None:
    """The statement inserting ``new`` at once and its parameters, or None when it must go row by row."""
    if not dialect_of(connection).inserts_from_json_array:
        return None
    first = new.seqs[0]
    # The statement numbers the rows first, first + 1, …: only for one run of sequences (a batch
    # that also changes stored records may interleave them). json_extract hands back exactly what
    # the record holds only for strings without NUL (a number comes back as SQLite formats it, and
    # a string ends at its first NUL).
    fields = (new.key_field, new.region_field, new.timestamp_field)
    columns = [[record.get(field) for record in new.records] for field in fields]
    if new.seqs[-1] - first != len(new.seqs) - 1 or not all(map(_plain_texts, columns)):
        return None
    try:
        documents = orjson.dumps(new.records)
    except orjson.JSONEncodeError:
        return None  # a record at orjson's depth limit, one level deeper inside the array: row by row
    constants = (new.appid, new.appid, new.now, first, documents)
    if _joins_fields(connection):
        return _INSERT_FROM_ARRAYS, (orjson.dumps(list(zip(*columns, strict=True))), new.business, *constants)
    paths = [f'$."{field}"' for field in fields]
    return _INSERT_FROM_ARRAY, (new.business, *paths, *constants)


def _joins_fields(connection: Connection) -> bool:
    version = connection.dialect.server_version_info
    return version is not None and tuple(version) >= _MATERIALIZED_SINCE


def insert_new(connection: Connection, new: NewRecords) -> None:
    """Insert records new to the store, inside the caller's transaction (no block to overlap: the
    statement runs in the caller's thread)."""
    if not new.records:
        return
    statement = _one_statement(connection, new)
    if statement is None:
        insert(connection, new.rows())
    else:
        connection.exec_driver_sql(*statement)


@contextmanager
def inserting(connection: Connection, new: NewRecords) -> Iterator[None]:
    """Insert records new to the store, inside the caller's transaction, while the caller's block runs.

    SQLite: the one statement runs in a thread of its own, without the GIL, so the block's Python
    work (validating the same batch) overlaps it. PostgreSQL: the rows are streamed by COPY before
    the block runs and the server works through them meanwhile. When the block ends the insert has
    finished; an error of the block wins over one of the insert (the transaction rolls back either
    way), and the connection is never left with a statement still running.
    """
    if not new.records:
        yield
        return
    failures: list[BaseException] = []
    try:
        statement = _one_statement(connection, new)
        rows = new.rows() if statement is None else []
    except Exception as exc:  # a record that cannot be stored (the caller's validation usually says why)
        failures.append(exc)
        statement, rows = None, []
    if failures:
        pass
    elif statement is None:
        # PostgreSQL streams the rows by COPY around the block; SQLite inserts them before it and
        # raises a failure after it, the block's own refusal first.
        with dialect_of(connection).inserting_rows(connection, "records", INSERT_COLUMNS, rows):
            yield
        return
    else:
        driver: Any = connection.connection.driver_connection
        sql, parameters = statement
        started = threading.Event()

        def run() -> None:
            started.set()
            try:
                driver.execute(sql, parameters)
            except BaseException as exc:  # raised in the caller's thread below
                failures.append(exc)

        worker = threading.Thread(target=run, name="tzsb-insert", daemon=True)
        worker.start()
        # Waiting here hands the GIL to the new thread, which keeps it only until SQLite starts.
        started.wait()
        try:
            yield
        finally:
            worker.join()
        if failures:
            raise failures[0]
        return
    yield
    if failures:
        raise failures[0]


#: The columns a version keeps (all of ``records``'): copied by one INSERT … SELECT, never through Python.
_VERSION_COLUMNS: Final = tuple(column.name for column in records.c)


def keep_versions(connection: Connection, business: str, keys: Sequence[str]) -> None:
    """Copy the stored versions of ``keys`` to ``record_versions`` before a change replaces them."""
    if not keys:
        return
    source = sa.select(*(records.c[name] for name in _VERSION_COLUMNS)).where(
        records.c.business == business, records.c.record_key.in_(sa.bindparam("keys", expanding=True))
    )
    connection.execute(sa.insert(record_versions).from_select(_VERSION_COLUMNS, source), {"keys": list(keys)})


def note_change(
    connection: Connection, first_seq: int, last_seq: int, *, appid: str, action: str, random: str, at: str
) -> None:
    """Record who made the changes numbered ``first_seq`` to ``last_seq``, how and through which request."""
    if last_seq < first_seq:
        return
    connection.execute(
        sa.insert(record_changes).values(
            first_seq=first_seq, last_seq=last_seq, appid=appid[:64], action=action, random=random[:64], at=at
        )
    )


def update(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Replace existing rows (keeping the versions they replace); each dict has ``business`` and
    ``record_key`` plus the new values, and ``previous_region``: a row whose region changed leaves a
    departure (``region_departures``)."""
    if not rows:
        return
    by_business: dict[str, list[str]] = {}
    for row in rows:
        by_business.setdefault(row["business"], []).append(row["record_key"])
    for business, keys in by_business.items():
        keep_versions(connection, business, keys)
    note_departures(
        connection,
        [
            (row["business"], row["record_key"], row["previous_region"], row["region"], row["seq"], row["changed_at"])
            for row in rows
            if row.get("previous_region") not in (None, row["region"])
        ],
    )
    rows = [{name: value for name, value in row.items() if name != "previous_region"} for row in rows]
    statement = (
        sa.update(records)
        .where(
            records.c.business == sa.bindparam("b_business"),
            records.c.record_key == sa.bindparam("b_record_key"),
        )
        .values(
            region=sa.bindparam("region"),
            updated_at=sa.bindparam("updated_at"),
            data=sa.bindparam("data"),
            deleted=sa.bindparam("deleted"),
            deleted_at=sa.bindparam("deleted_at"),
            deleted_by=sa.bindparam("deleted_by"),
            changed_by=sa.bindparam("changed_by"),
            changed_at=sa.bindparam("changed_at"),
            seq=sa.bindparam("seq"),
        )
    )
    connection.execute(
        statement,
        [{"b_business": row["business"], "b_record_key": row["record_key"], **row} for row in rows],
    )


def hand_over(
    connection: Connection,
    business: str,
    key: str,
    *,
    region: str,
    data: Mapping[str, Any],
    source_appid: str,
    changed_by: str,
    changed_at: str,
    seq: int,
) -> None:
    """Give a stored record another region and source (an operator's reassignment), as a change
    with its own sequence so that the change feed carries it."""
    previous = connection.execute(
        sa.select(records.c.region).where(records.c.business == business, records.c.record_key == key)
    ).scalar_one_or_none()
    if previous is not None and previous != region:
        note_departures(connection, [(business, key, previous, region, seq, changed_at)])
    keep_versions(connection, business, [key])
    connection.execute(
        sa.update(records)
        .where(records.c.business == business, records.c.record_key == key)
        .values(
            region=region,
            data=data,
            source_appid=source_appid,
            changed_by=changed_by,
            changed_at=changed_at,
            seq=seq,
        )
    )


#: One move out of a region: business type, key, the region left, the region entered, the change
#: sequence of the move, its time.
Departure = tuple[str, str, str, str, int, str]


def note_departures(connection: Connection, departures: Sequence[Departure]) -> None:
    """Keep records' moves out of their regions, for change feeds scoped to the regions they left."""
    if not departures:
        return
    connection.execute(
        sa.insert(region_departures),
        [
            {"business": business, "record_key": key, "old_region": old, "new_region": new, "seq": seq, "at": at}
            for business, key, old, new, seq, at in departures
        ],
    )
