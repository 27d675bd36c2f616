"""Sync links between nodes, and region departures for scoped change feeds.

- ``links``, ``link_positions``, ``parked_records``: links to the parent node, how far each business
  type has been sent or pulled, and records the other side refused.
- ``leases``: one process of several runs each link at a time.
- ``region_departures``: a record's move out of a region, so that a change feed scoped to that
  region delivers it as a tombstone.
- ``interaction_log.direction``: "in" for requests answered, "out" for batches sent over a link.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tzsb.store.schema import CodeText

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("interaction_log") as batch:
        batch.add_column(sa.Column("direction", sa.String(3), nullable=False, server_default="in"))
    op.create_table(
        "region_departures",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("business", sa.String(4), nullable=False),
        sa.Column("record_key", CodeText, nullable=False),
        sa.Column("old_region", CodeText, nullable=False),
        sa.Column("new_region", CodeText, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("at", sa.String(19), nullable=False),
    )
    op.create_index("ix_region_departures_seq", "region_departures", ["business", "seq"])
    op.create_table(
        "links",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("appid", sa.String(64), nullable=False),
        sa.Column("secret_enc", sa.LargeBinary, nullable=False),
        sa.Column("sign_algorithm", sa.String(16), nullable=False),
        sa.Column("direction", sa.String(4), nullable=False),
        sa.Column("businesses", sa.JSON, nullable=False),
        sa.Column("purpose", sa.String(2), nullable=False),
        sa.Column("every_seconds", sa.Integer, nullable=False),
        sa.Column("max_records", sa.Integer, nullable=False),
        sa.Column("max_bytes", sa.Integer),
        sa.Column("timeout_seconds", sa.Float, nullable=False),
        sa.Column("ca_file", sa.Text),
        sa.Column("client_cert", sa.Text),
        sa.Column("client_key", sa.Text),
        sa.Column("send_timestamp", sa.Boolean, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("uid", sa.String(32), nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("wait_until", sa.String(32)),
        sa.Column("last_attempt_at", sa.String(32)),
        sa.Column("last_success_at", sa.String(32)),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "link_positions",
        sa.Column("link", sa.String(64), primary_key=True),
        sa.Column("business", sa.String(4), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("since_token", sa.Text),
        sa.Column("updated_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "parked_records",
        sa.Column("link", sa.String(64), primary_key=True),
        sa.Column("business", sa.String(4), primary_key=True),
        sa.Column("record_key", CodeText, primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("parked_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("holder", sa.String(100), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_table("parked_records")
    op.drop_table("link_positions")
    op.drop_table("links")
    op.drop_index("ix_region_departures_seq", "region_departures")
    op.drop_table("region_departures")
    with op.batch_alter_table("interaction_log") as batch:
        batch.drop_column("direction")
