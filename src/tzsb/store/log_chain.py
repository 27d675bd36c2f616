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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from sqlalchemy.engine import Connection

from tzsb.store.schema import log_chain

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


def digest_of(previous: str, row: Mapping[str, Any]) -> str:
    """The digest of an entry: SM3 over the previous digest and the entry's fields as one JSON array.

    Numbers are normalised to what both databases give back (an integer count, a float duration),
    so that a digest computed before the insert matches one recomputed from the stored row.
    """
    fields: list[Any] = [previous]
    for name in CHAINED_COLUMNS:
        value = row[name]
        if name == "record_count":
            value = int(value)
        elif name == "duration_ms":
            value = float(value)
        else:
            value = str(value)
        fields.append(value)
    hasher = hashes.Hash(hashes.SM3())
    hasher.update(orjson.dumps(fields))
    return hasher.finalize().hex()


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
_LOCK_HEAD: Final = (
    sa.select(log_chain.c.head_seq, log_chain.c.head_digest).where(log_chain.c.id == 1).with_for_update()
)
_MOVE_HEAD: Final = (
    sa.update(log_chain)
    .where(log_chain.c.id == 1)
    .values(head_seq=sa.bindparam("seq"), head_digest=sa.bindparam("digest"))
)


def state(connection: Connection, *, lock: bool = False) -> ChainState:
    """The chain's head and archive boundary (``lock``: and hold the appenders' lock until the
    transaction ends, so that no entry is appended meanwhile)."""
    statement = sa.select(*_COLUMNS).where(log_chain.c.id == 1)
    if lock:
        statement = statement.with_for_update()
    head_seq, head_digest, archived_seq, archived_digest = connection.execute(statement).one()
    return ChainState(int(head_seq), str(head_digest), int(archived_seq), str(archived_digest))


def chain(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Give ``rows`` (about to be inserted in this transaction) the next chain numbers and their
    digests, and move the head past them. The head's lock is held until the transaction ends."""
    seq, digest = connection.execute(_LOCK_HEAD).one()
    seq, digest = int(seq), str(digest)
    for row in rows:
        seq += 1
        row["chain_seq"] = seq
        digest = digest_of(digest, row)
        row["digest"] = digest
    connection.execute(_MOVE_HEAD, {"seq": seq, "digest": digest})


def mark_archived(connection: Connection, seq: int, digest: str) -> None:
    """Record that the entries up to ``seq`` (the last with ``digest``) left the live table."""
    connection.execute(sa.update(log_chain).where(log_chain.c.id == 1).values(archived_seq=seq, archived_digest=digest))
