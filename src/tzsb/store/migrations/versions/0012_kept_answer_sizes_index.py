"""The kept answers' index covers their sizes (issue 16).

An app's kept answers are summed and its oldest dropped each time it has claimed a tenth of its
quota (6.4 MB of answers). The sum read ``response_bytes`` from every kept claim's row, which lies
past the answer itself: about 80 MB of pages for a quota of 64 MB, and for a page of 65 KB every
overflow page of the answer. With ``random`` and ``response_bytes`` in the index, and its condition
on ``response_bytes > 0`` (the same claims as ``response IS NOT NULL``: dropping an answer sets
both), the sum and the choice of the oldest read the index alone.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_KEPT = sa.text("response IS NOT NULL")
#: The same claims (an answer dropped sets both), in the index's own columns: ``nonces.KEPT``.
_KEPT_BY_SIZE = sa.text("response_bytes > 0")


def upgrade() -> None:
    op.drop_index("ix_nonces_kept_answers", "nonces")
    op.create_index(
        "ix_nonces_kept_answer_sizes",
        "nonces",
        ["appid", "created_at", "random", "response_bytes"],
        sqlite_where=_KEPT_BY_SIZE,
        postgresql_where=_KEPT_BY_SIZE,
    )


def downgrade() -> None:
    op.drop_index("ix_nonces_kept_answer_sizes", "nonces")
    op.create_index(
        "ix_nonces_kept_answers", "nonces", ["appid", "created_at"], sqlite_where=_KEPT, postgresql_where=_KEPT
    )
