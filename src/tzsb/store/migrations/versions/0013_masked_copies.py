"""Masked copies of records (issue 16).

``masked_copies`` keeps the text a masked answer shows of a record, made by the first masked page
that read it (``store.masked_copies``). The table starts empty: copies are made as masked callers
read, so the upgrade writes nothing else.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_CODE_TEXT = sa.String().with_variant(sa.String(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "masked_copies",
        sa.Column("business", sa.String(4), primary_key=True),
        sa.Column("record_key", _CODE_TEXT, primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("plan", sa.String(16), nullable=False),
        sa.Column("doc", sa.Text, nullable=False),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("masked_copies")
