"""Which kept answers hold only what the node's own tables keep (issue 16).

``nonces.derived`` marks the answers of queries the node answered from its own records: their text
is what the tables hold, masked as the app saw it, so the pages they free when dropped need not be
overwritten with zeros (``nonces.drop_answers``). Every other answer (a refusal naming the keys of
records never stored, a provider's answer passed on by routing) is zeroed as before. Claims made
before the upgrade are not marked: zeroed when dropped.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("nonces", sa.Column("derived", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("nonces") as batch:
        batch.drop_column("derived")
