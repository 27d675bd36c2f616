"""``random`` claims: each app's randoms, each claimed once, with the first answer kept for retries.

Owns the ``nonces`` table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from tzsb.errors import StoreConflict
from tzsb.store.dialects import driver_sql
from tzsb.store.engine import Store
from tzsb.store.schema import nonces

#: Built once: SQLAlchemy then reuses its compiled form instead of building a statement per request.
_CLAIM: Final = sa.insert(nonces)
#: Straight to the driver: SQLAlchemy's statement building and result processing cost more than the
#: look-up, once per write (0.14 → 0.05 ms).
_FIND: Final = "SELECT fingerprint, response FROM nonces WHERE appid = ? AND random = ?"


@dataclass(frozen=True, slots=True)
class Claim:
    """A claimed random: the fingerprint of the request that claimed it, and its answer (if stored)."""

    fingerprint: str
    response: bytes | None


def find(connection: Connection, appid: str, random: str) -> Claim | None:
    """The claim of ``random`` by ``appid``, if any."""
    row = connection.exec_driver_sql(driver_sql(connection, _FIND), (appid, random)).first()
    if row is None:
        return None
    fingerprint, response = row
    return Claim(fingerprint, None if response is None else bytes(response))


def claim(connection: Connection, appid: str, random: str, fingerprint: str, response: bytes, at: datetime) -> None:
    """Claim ``random`` for ``appid`` with the answer to keep, in the caller's transaction.

    Raises ``StoreConflict`` when the random is claimed already (the caller's transaction is then
    to be rolled back).
    """
    try:
        connection.execute(
            _CLAIM,
            {
                "appid": appid,
                "random": random,
                "fingerprint": fingerprint,
                "response": response,
                "created_at": at.isoformat(),
            },
        )
    except IntegrityError as taken:
        raise StoreConflict(f"random {random} of app {appid} is claimed already") from taken


def prune(store: Store, before: datetime) -> int:
    """Forget ``random`` claims made before ``before``; returns how many were removed.

    A forgotten random could be replayed, so apps that must be safe from that beyond the pruning
    horizon should be required to send the signed ``timestamp`` (its window is minutes).
    """
    with store.write() as connection:
        result = connection.execute(sa.delete(nonces).where(nonces.c.created_at < before.isoformat()))
    return int(result.rowcount)
