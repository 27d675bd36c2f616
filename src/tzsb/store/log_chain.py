"""The interaction log's hash chain: what an entry's digest covers, and the head every append moves.

Each entry gets the next ``chain_seq`` and ``digest = SM3(previous digest, its fields)``, computed
while the appending transaction holds the ``log_chain`` row's lock (a row lock on PostgreSQL; on
SQLite the writers' lock already orders every write). Entries of several workers, or of several
hosts sharing one PostgreSQL database, so form a single chain in the order they committed. An
entry edited, deleted or moved afterwards no longer fits the digests around it; entries removed
from the end are caught against a head kept elsewhere (``tzsb audit head``).

Owns the ``log_chain`` table and the digest's definition.
"""

from __future__ import annotations

import hashlib
import operator
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from tzsb.store.dialects import dialect_of, driver_cursor
from tzsb.store.schema import interaction_log, log_chain

#: The "previous digest" of the first entry ever appended.
GENESIS: Final = "0" * 64
#: GB/T 32905 (SM3), as the spec's signatures may use; named in ``tzsb audit head``.
ALGORITHM: Final = "SM3"

#: The columns a digest covers, in this order: every column but ``id``, ``digest`` and ``chain_seq``.
#: The entry's place in the chain is held by the previous digest it covers (renumbering entries
#: breaks the links), and leaving the number out lets a verifier recognise an entry that was moved.
CHAINED_COLUMNS: Final = (
    "at",
    "appid",
    "busicode",
    "action",
    "random",
    "client_addr",
    "record_count",
    "result",
    "code",
    "message",
    "duration_ms",
    "direction",
    "region",
)


#: An entry as it is appended: its values in this order, each of the type its digest covers (text,
#: but an integer ``record_count`` and a float ``duration_ms``). Built by ``entry_values``, or field
#: by field by a caller that knows its types (``tzsb.audit.LogEntry.values``).
ENTRY_COLUMNS: Final = (*CHAINED_COLUMNS, "correlation")
_CORRELATION: Final = len(CHAINED_COLUMNS)


def _sm3_hex() -> Callable[[bytes], str]:
    """SM3 of some bytes, in hexadecimal: hashlib's (OpenSSL's), copied from one prepared hash
    (1.2 µs for an entry against 2.0 through ``cryptography``), or ``cryptography``'s where this
    OpenSSL leaves SM3 out."""
    try:
        prepared = hashlib.new("sm3")
    except ValueError:  # pragma: no cover - every OpenSSL 3 build seen here has it

        def through_cryptography(data: bytes) -> str:
            hasher = hashes.Hash(hashes.SM3())
            hasher.update(data)
            return hasher.finalize().hex()

        return through_cryptography

    def through_hashlib(data: bytes) -> str:
        hasher = prepared.copy()
        hasher.update(data)
        return hasher.hexdigest()

    return through_hashlib


sm3_hex: Final = _sm3_hex()


def entry_values(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """An entry's columns (``ENTRY_COLUMNS``; ``direction``, ``region`` and ``correlation`` as their
    defaults when missing) as the types its digest covers: what both databases give back (an integer
    count, a float duration), so that a digest computed before the insert matches one recomputed from
    the stored row."""
    values: list[Any] = []
    for name in CHAINED_COLUMNS:
        value = row[name] if name in row else _DEFAULTS[name]
        if name == "record_count":
            values.append(int(value))
        elif name == "duration_ms":
            values.append(float(value))
        else:
            values.append(str(value))
    values.append(str(row.get("correlation") or ""))
    return tuple(values)


_DEFAULTS: Final = {"direction": "in", "region": ""}


def digest_of(previous: str, row: Mapping[str, Any]) -> str:
    """The digest of an entry: SM3 over the previous digest and the entry's fields as one JSON array
    (its values as ``entry_values`` gives them)."""
    return _digest(previous, entry_values(row))


def stored_digest_of(previous: str, row: Mapping[str, Any]) -> str:
    """``digest_of`` for a row as the log stores it (each column of its type already): its values
    taken as they are, without ``entry_values``' conversions. Equal to ``digest_of`` for every row the
    node wrote; a caller that finds a mismatch asks ``digest_of`` before calling it one."""
    return _digest(previous, _stored_values(row))


_stored_values: Final = operator.itemgetter(*ENTRY_COLUMNS)


def _digest(previous: str, values: Sequence[Any]) -> str:
    """``digest_of`` for an entry's ``ENTRY_COLUMNS`` values."""
    correlation = values[_CORRELATION]
    # Covered only when set: entries written before the column existed keep their digests, and
    # setting, changing or clearing a correlation afterwards changes the digest all the same.
    if correlation:
        fields = [previous, ["correlation", correlation], *values[:_CORRELATION]]
    else:
        fields = [previous, *values[:_CORRELATION]]
    return sm3_hex(orjson.dumps(fields))


@dataclass(frozen=True, slots=True)
class ChainState:
    """The chain's head (the last entry appended) and the last archived entry."""

    head_seq: int
    head_digest: str
    archived_seq: int
    archived_digest: str


_COLUMNS: Final = (
    log_chain.c.head_seq,
    log_chain.c.head_digest,
    log_chain.c.archived_seq,
    log_chain.c.archived_digest,
)
#: Appending goes to the driver as plain SQL (every logged request runs it: through SQLAlchemy's
#: statement handling it cost more than the chaining itself). SQLite has no FOR UPDATE, and needs
#: none: its writers' lock is held already.
_READ_HEAD: Final = "SELECT head_seq, head_digest FROM log_chain WHERE id = 1"
#: Moves the head only from where the appender believes it is (a compare-and-set): see ``append_chained``.
_MOVE_HEAD: Final = (
    "UPDATE log_chain SET head_seq = ?, head_digest = ? WHERE id = 1 AND head_seq = ? AND head_digest = ?"
)
#: The columns an appended entry fills (``id`` is the database's): its values, then its place.
APPENDED: Final = (*CHAINED_COLUMNS, "chain_seq", "digest", "correlation")
_INSERT: Final = (
    f"INSERT INTO interaction_log ({', '.join(APPENDED)}) "  # noqa: S608 - the table's own column names
    f"VALUES ({', '.join('?' for _ in APPENDED)})"
)


def _record_type(name: str) -> str:
    """The type ``json_to_recordset`` reads column ``name`` of ``interaction_log`` as (text for
    every string: the insert casts it to the column's own)."""
    column_type = interaction_log.c[name].type
    if isinstance(column_type, sa.String):
        return "text"
    return str(column_type.compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]


#: ``_try_append`` on PostgreSQL. With the entries spelled out in VALUES, the statement's text (and
#: its parameters, 16 an entry) changed with their number: psycopg converted it afresh each time
#: (it caches statements of at most 50 parameters) and PostgreSQL parsed and planned it afresh. One
#: JSON parameter holds them all: for batches of 2-8 entries, 70-78 µs of psycopg's CPU a statement
#: against 208-267, and half the wall time.
_APPEND_POSTGRES: Final = (
    "WITH moved AS (UPDATE log_chain SET "  # noqa: S608 - fixed names, bound values
    "head_seq = CASE WHEN head_seq = %s AND head_digest = %s THEN %s ELSE head_seq END, "
    "head_digest = CASE WHEN head_seq = %s AND head_digest = %s THEN %s ELSE head_digest END "
    "WHERE id = 1 RETURNING head_seq, head_digest), "
    f"appended AS (INSERT INTO interaction_log ({', '.join(APPENDED)}) "
    f"SELECT {', '.join(APPENDED)} FROM json_to_recordset(%s::json) "
    f"AS entries ({', '.join(f'{name} {_record_type(name)}' for name in APPENDED)}) "
    "WHERE EXISTS (SELECT 1 FROM moved WHERE head_seq = %s AND head_digest = %s) "
    # The head is already where this append would move it when another appender added the same
    # entries after the same head (alerts repeat): those numbers are taken, nothing goes in, and
    # the append is made again after them.
    "ON CONFLICT (chain_seq) DO NOTHING RETURNING 1) "
    "SELECT head_seq, head_digest, (SELECT count(*) FROM appended) FROM moved"
)
#: The head this process last moved the chain to, per engine: whichever pooled connection appends
#: next tries from there. Kept per connection before, it was stale on nearly every append once
#: requests rotated through the pool (on PostgreSQL 93 % of group commits made three round trips:
#: the failed attempt, the head read under its lock, the append). A stale hint costs one attempt,
#: never an entry: the head moves only from where it is.
_last_heads: weakref.WeakKeyDictionary[Engine, tuple[int, str]] = weakref.WeakKeyDictionary()


def state(connection: Connection, *, lock: bool = False) -> ChainState:
    """The chain's head and archive boundary (``lock``: and hold the appenders' lock until the
    transaction ends, so that no entry is appended meanwhile)."""
    statement = sa.select(*_COLUMNS).where(log_chain.c.id == 1)
    if lock:
        statement = statement.with_for_update()
    head_seq, head_digest, archived_seq, archived_digest = connection.execute(statement).one()
    return ChainState(int(head_seq), str(head_digest), int(archived_seq), str(archived_digest))


def _chained(head: tuple[int, str], entries: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """``entries`` (``ENTRY_COLUMNS`` values) numbered and digested after ``head``, as the insert's
    parameter tuples (``APPENDED``)."""
    seq, digest = head
    values = []
    for entry in entries:
        seq += 1
        digest = _digest(digest, entry)
        values.append((*entry[:_CORRELATION], seq, digest, entry[_CORRELATION]))
    return values


_LAST_SEQ: Final = APPENDED.index("chain_seq")
_LAST_DIGEST: Final = APPENDED.index("digest")


def _try_append(
    connection: Connection, head: tuple[int, str], rows: Sequence[Sequence[Any]]
) -> tuple[tuple[int, str] | None, tuple[int, str] | None]:
    """Insert ``rows`` (``ENTRY_COLUMNS`` values) chained after ``head`` and move the head past
    them, if ``head`` is the head.

    Returns the new head (None: nothing written, ``head`` was not the head) and, on PostgreSQL when
    nothing was written, the head as it is, its row now locked by this transaction (so that the
    append can be made from it at once, without reading it again)."""
    values = _chained(head, rows)
    last = (int(values[-1][_LAST_SEQ]), str(values[-1][_LAST_DIGEST]))
    dialect = dialect_of(connection)
    with driver_cursor(connection) as cursor:
        if dialect.single_writer:
            cursor.execute(_MOVE_HEAD, (*last, *head))
            if cursor.rowcount != 1:
                return None, None
            cursor.executemany(_INSERT, values)
            return last, None
        # PostgreSQL, one round trip: the head's row is updated (so locked, after waiting for any
        # other appender's commit) whatever it holds, moved only if it is ``head``; the entries go in
        # only if it moved; the statement answers with the head as it now is. The entries travel as
        # one JSON parameter: the statement's text stays the same whatever their number, so psycopg
        # converts it once and PostgreSQL runs it prepared (``_APPEND_POSTGRES``).
        entries = orjson.dumps([dict(zip(APPENDED, row, strict=True)) for row in values]).decode()
        cursor.execute(_APPEND_POSTGRES, (*head, last[0], *head, last[1], entries, *last))
        ((seq, digest, appended),) = cursor.fetchall()
        if appended == len(values):
            return last, None
        if appended:
            raise RuntimeError("the interaction log's chain head moved while its entries were inserted")
        return None, (int(seq), str(digest))


def append_chained(connection: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Insert ``rows`` (each its ``ENTRY_COLUMNS`` values: ``entry_values``) in the caller's
    transaction, numbered and digested after the chain's head, and move the head past them; the
    head's row stays locked until the transaction ends.

    The process remembers the head it last moved the chain to: the next append tries from there at
    once, and moves the head only if it is still there. When it is not — another process appended
    meanwhile, or the transaction that moved it rolled back — the append is made from the head as
    it is, read under its lock: on SQLite by a read of its own, on PostgreSQL from the answer of the
    attempt itself, which locked the head's row (two statements for a stale hint, not three).
    """
    if not rows:
        return
    hint = _last_heads.get(connection.engine)
    head, current = (None, None) if hint is None else _try_append(connection, hint, rows)
    if head is None:
        if current is None:
            with driver_cursor(connection) as cursor:
                cursor.execute(_READ_HEAD if dialect_of(connection).single_writer else _READ_HEAD + " FOR UPDATE")
                seq, digest = cursor.fetchone()
            current = (int(seq), str(digest))
        head, _ = _try_append(connection, current, rows)
        if head is None:
            raise RuntimeError("the interaction log's chain head moved while its lock was held")
    _last_heads[connection.engine] = head


def mark_archived(connection: Connection, seq: int, digest: str) -> None:
    """Record that the entries up to ``seq`` (the last with ``digest``) left the live table."""
    connection.execute(sa.update(log_chain).where(log_chain.c.id == 1).values(archived_seq=seq, archived_digest=digest))
