"""Masked copies of records: the text a masked answer shows of a record, kept beside it.

Masking a record costs several times what reading it does (a 0101 device about 6 µs, against about
1.7 to decode it), and a page of 100 was masked anew for every masked caller that read it. The
first masked page that reads a record now keeps its masked text here, in the transaction that
claims the page's random (``keep``), and later masked pages serve that text as it is
(``records_read.select_records`` with ``masked_plan``).

A copy is served only for the version of the record it was made from (``seq``: every change to a
record hands out a new one) and under the masking it was made with (``plan``: a digest of the type's
sensitive fields and of the masker's code, ``exchange.masking.mask_plan``). A changed record, a
catalog that masks differently or another masker leaves the copy unused until a masked page replaces
it. The copies hold nothing an answer to a masked caller does not show, at most one per record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from sqlalchemy.engine import Connection

from tzsb.store.dialects import driver_cursor, driver_sql

#: A record's copy, replaced by a copy of a later (or the same) version only: two masked pages that
#: read different versions may commit in either order.
_KEEP: Final = (
    "INSERT INTO masked_copies (business, record_key, seq, plan, doc) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (business, record_key) DO UPDATE SET seq = excluded.seq, plan = excluded.plan, doc = excluded.doc "
    "WHERE excluded.seq >= masked_copies.seq"
)

#: The copy of the record in ``records`` beside it, as a column of a select from ``records``: its
#: text when made from this version under the plan bound to its one marker, else NULL.
COPY_COLUMN: Final = (
    "(SELECT copy.doc FROM masked_copies AS copy WHERE copy.business = records.business "
    "AND copy.record_key = records.record_key AND copy.seq = records.seq AND copy.plan = ?)"
)


def keep(connection: Connection, business: str, plan: str, copies: Sequence[tuple[str, int, str]]) -> None:
    """Keep the masked texts ``copies`` (key, the version's ``seq``, text) of records of ``business``
    masked under ``plan``, in the caller's transaction."""
    if not copies:
        return
    with driver_cursor(connection) as cursor:
        cursor.executemany(
            driver_sql(connection, _KEEP), [(business, key, seq, plan, text) for key, seq, text in copies]
        )
