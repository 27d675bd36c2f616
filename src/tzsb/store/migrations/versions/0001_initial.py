"""Initial schema: records with change sequence, apps, nonces, interaction log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

CodeText = sa.String().with_variant(sa.String(collation="C"), "postgresql")
JsonDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "records",
        sa.Column("business", sa.String(4), primary_key=True),
        sa.Column("record_key", CodeText, primary_key=True),
        sa.Column("region", CodeText, nullable=False),
        sa.Column("updated_at", sa.String(19), nullable=False),
        sa.Column("data", JsonDocument, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("deleted_at", sa.String(19)),
        sa.Column("deleted_by", sa.String(64)),
        sa.Column("source_appid", sa.String(64), nullable=False),
        sa.Column("changed_by", sa.String(64), nullable=False),
        sa.Column("changed_at", sa.String(19), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False, unique=True),
    )
    op.create_index("ix_records_region", "records", ["business", "region", "record_key"])
    op.create_index("ix_records_seq", "records", ["business", "seq"])
    op.create_table(
        "change_counter",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(
        sa.table("change_counter", sa.column("id", sa.Integer), sa.column("last_seq", sa.BigInteger)),
        [{"id": 1, "last_seq": 0}],
    )
    op.create_table(
        "apps",
        sa.Column("appid", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("secret_enc", sa.LargeBinary, nullable=False),
        sa.Column("previous_secret_enc", sa.LargeBinary),
        sa.Column("previous_valid_until", sa.String(32)),
        sa.Column("sign_algorithm", sa.String(16), nullable=False),
        sa.Column("busicodes", sa.JSON, nullable=False),
        sa.Column("actions", sa.JSON, nullable=False),
        sa.Column("overrides", sa.JSON, nullable=False),
        sa.Column("region", sa.String(6), nullable=False),
        sa.Column("max_records", sa.Integer, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "nonces",
        sa.Column("appid", sa.String(64), primary_key=True),
        sa.Column("random", sa.String(64), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("response", sa.LargeBinary),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "interaction_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("appid", sa.String(64), nullable=False),
        sa.Column("busicode", sa.String(6), nullable=False),
        sa.Column("action", sa.String(2), nullable=False),
        sa.Column("random", sa.String(64), nullable=False),
        sa.Column("client_addr", sa.String(64), nullable=False),
        sa.Column("record_count", sa.Integer, nullable=False),
        sa.Column("result", sa.String(4), nullable=False),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=False),
    )
    op.create_index("ix_interaction_log_appid_at", "interaction_log", ["appid", "at"])


def downgrade() -> None:
    for table in ("interaction_log", "nonces", "apps", "change_counter", "records"):
        op.drop_table(table)
