"""Log queries through the interface (6.3.1 d).

- ``interaction_log.region``: the region of the app an entry is about (an auditor app reads the
  entries within its region); empty for entries written before, and for callers never identified.
- ``apps.log_auditor``: the grant to read every entry within the app's region, not only its own.
- ``apps.report_every_seconds``: how often the app must report data (5.4), when not as its level says.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tzsb.store.schema import CodeText

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("interaction_log") as batch:
        batch.add_column(sa.Column("region", CodeText, nullable=False, server_default=""))
    op.create_index("ix_interaction_log_region_id", "interaction_log", ["region", "id"])
    with op.batch_alter_table("apps") as batch:
        batch.add_column(sa.Column("log_auditor", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("report_every_seconds", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("apps") as batch:
        batch.drop_column("report_every_seconds")
        batch.drop_column("log_auditor")
    op.drop_index("ix_interaction_log_region_id", "interaction_log")
    with op.batch_alter_table("interaction_log") as batch:
        batch.drop_column("region")
