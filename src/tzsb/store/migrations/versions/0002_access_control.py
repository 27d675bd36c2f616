"""Access control: app level, byte and rate limits, IP allow-list, unmasked and timestamp grants,
certificate binding; failed-authentication lock-outs; console accounts.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("apps") as batch:
        batch.add_column(sa.Column("level", sa.String(16), nullable=False, server_default="external"))
        batch.add_column(sa.Column("max_bytes", sa.Integer, nullable=True))
        batch.add_column(sa.Column("rate_per_minute", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("ip_allow", sa.JSON, nullable=False, server_default="[]"))
        batch.add_column(sa.Column("unmasked", sa.JSON, nullable=False, server_default="[]"))
        batch.add_column(sa.Column("require_timestamp", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("cert_fingerprints", sa.JSON, nullable=False, server_default="[]"))
    op.create_table(
        "auth_failures",
        sa.Column("appid", sa.String(64), primary_key=True),
        sa.Column("client_addr", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("first_failed_at", sa.String(32), nullable=False),
        sa.Column("last_failed_at", sa.String(32), nullable=False),
        sa.Column("locked_until", sa.String(32)),
    )
    op.create_table(
        "accounts",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("region", sa.String(6), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("failed_logins", sa.Integer, nullable=False),
        sa.Column("locked_until", sa.String(32)),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("password_changed_at", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("accounts")
    op.drop_table("auth_failures")
    with op.batch_alter_table("apps") as batch:
        for column in (
            "cert_fingerprints",
            "require_timestamp",
            "unmasked",
            "ip_allow",
            "rate_per_minute",
            "max_bytes",
            "level",
        ):
            batch.drop_column(column)
