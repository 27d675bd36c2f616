"""Bounded replay answers, key collisions, tallies of unidentified refusals.

- ``nonces.response_bytes``: the size of a kept answer, so that an app's kept answers can be held
  under a quota; partial index of the claims still keeping an answer, by app and age (expiry and
  quota read only those).
- ``key_collisions``: adds that named a key held by a record the caller may not access.
- ``refusal_tallies``: refusals of unidentified callers, one row per client address and minute.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("nonces") as batch:
        batch.add_column(sa.Column("response_bytes", sa.Integer, nullable=False, server_default="0"))
    op.execute("UPDATE nonces SET response_bytes = length(response) WHERE response IS NOT NULL")
    op.create_index(
        "ix_nonces_kept_answers",
        "nonces",
        ["appid", "created_at"],
        sqlite_where=sa.text("response IS NOT NULL"),
        postgresql_where=sa.text("response IS NOT NULL"),
    )
    op.create_table(
        "key_collisions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("appid", sa.String(64), nullable=False),
        sa.Column("client_addr", sa.String(64), nullable=False),
        sa.Column("business", sa.String(4), nullable=False),
        sa.Column("record_key", sa.String(), nullable=False),
        sa.Column("held_region", sa.String(6), nullable=False),
        sa.Column("held_source", sa.String(64), nullable=False),
        sa.Column("counts", sa.Boolean, nullable=False),
        sa.Column("acknowledged", sa.Boolean, nullable=False),
    )
    op.create_index("ix_key_collisions_appid_at", "key_collisions", ["appid", "at"])
    op.create_table(
        "refusal_tallies",
        sa.Column("client_addr", sa.String(64), primary_key=True),
        sa.Column("minute", sa.BigInteger, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("last_code", sa.String(16), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("refusal_tallies")
    op.drop_index("ix_key_collisions_appid_at", "key_collisions")
    op.drop_table("key_collisions")
    op.drop_index("ix_nonces_kept_answers", "nonces")
    with op.batch_alter_table("nonces") as batch:
        batch.drop_column("response_bytes")
