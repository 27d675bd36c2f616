"""Housekeeping of a node's database."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from tzsb.store.engine import Store
from tzsb.store.schema import nonces


def prune_nonces(store: Store, before: datetime) -> int:
    """Forget ``random`` claims made before ``before``; returns how many were removed.

    A forgotten random could be replayed, so apps that must be safe from that beyond the pruning
    horizon should be required to send the signed ``timestamp`` (its window is minutes).
    """
    with store.write() as connection:
        result = connection.execute(sa.delete(nonces).where(nonces.c.created_at < before.isoformat()))
    return int(result.rowcount)
