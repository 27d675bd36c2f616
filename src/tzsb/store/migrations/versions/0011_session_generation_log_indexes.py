"""Console sign-out that ends sessions, and the log's look-ups by time and correlation (issue 15).

- ``accounts.session_generation``: a console session token carries a stamp of it; signing out
  raises it, so the account's tokens issued before stop validating (a cookie copied before the
  sign-out is worth nothing after it).
- ``ix_interaction_log_at``: the dashboard's traffic over the last hour and day reads by ``at``
  (it scanned the whole log).
- ``ix_interaction_log_correlation``: a log entry's page finds the other legs of its request.

Building the two indexes holds log inserts (so requests) on PostgreSQL until they are built: on a
node with a large log, start the upgraded node (it migrates at start) in a quiet hour. (Not
CONCURRENTLY: the migrations run inside the caller's transaction, which that cannot.)

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("session_generation", sa.Integer, nullable=False, server_default="0"))
    op.create_index("ix_interaction_log_at", "interaction_log", ["at"])
    op.create_index("ix_interaction_log_correlation", "interaction_log", ["correlation"])


def downgrade() -> None:
    op.drop_index("ix_interaction_log_correlation", "interaction_log")
    op.drop_index("ix_interaction_log_at", "interaction_log")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("session_generation")
