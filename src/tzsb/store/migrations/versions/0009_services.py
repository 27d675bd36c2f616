"""Routing to providers (issue 13): the ``services`` table, and ``interaction_log.correlation``
(the legs of one routed request share it; "" for the entries before, which are one leg each).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("interaction_log") as batch:
        batch.add_column(sa.Column("correlation", sa.String(64), nullable=False, server_default=""))
    op.create_table(
        "services",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("businesses", sa.JSON, nullable=False),
        sa.Column("actions", sa.JSON, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("appid", sa.String(64), nullable=False),
        sa.Column("secret_enc", sa.LargeBinary, nullable=False),
        sa.Column("sign_algorithm", sa.String(16), nullable=False),
        sa.Column("upstream_purpose", sa.String(2)),
        sa.Column("timeout_seconds", sa.Float, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("breaker_state", sa.String(16), nullable=False),
        sa.Column("breaker_changed_at", sa.String(32)),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("services")
    with op.batch_alter_table("interaction_log") as batch:
        batch.drop_column("correlation")
