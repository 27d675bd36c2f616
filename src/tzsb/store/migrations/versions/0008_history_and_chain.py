"""Record history and the interaction log's hash chain (issue 14).

- ``record_versions``: versions a later change replaced.
- ``record_changes``: one row per write, its change sequences, app, action and ``random`` (the
  provenance of each version); none for writes made before.
- ``interaction_log.chain_seq`` / ``digest`` and the one-row ``log_chain``: the entries already in
  the log are chained here, in the order they were written (``id``), so that the chain covers the
  whole log from its first entry.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tzsb.store.log_chain import GENESIS, digest_of
from tzsb.store.schema import CodeText, JsonDocument

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_PAGE = 5000


def upgrade() -> None:
    op.create_table(
        "record_versions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("business", sa.String(4), nullable=False),
        sa.Column("record_key", CodeText, nullable=False),
        sa.Column("region", CodeText, nullable=False),
        sa.Column("updated_at", sa.String(19), nullable=False),
        sa.Column("data", JsonDocument, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("deleted_at", sa.String(19)),
        sa.Column("deleted_by", sa.String(64)),
        sa.Column("source_appid", sa.String(64), nullable=False),
        sa.Column("changed_by", sa.String(64), nullable=False),
        sa.Column("changed_at", sa.String(19), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_record_versions_key", "record_versions", ["business", "record_key", "seq"])
    op.create_table(
        "record_changes",
        sa.Column("first_seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("appid", sa.String(64), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("random", sa.String(64), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
    )

    with op.batch_alter_table("interaction_log") as batch:
        batch.add_column(sa.Column("chain_seq", sa.BigInteger))
        batch.add_column(sa.Column("digest", sa.String(64)))
    head_seq, head_digest = _chain_existing_entries(op.get_bind())
    with op.batch_alter_table("interaction_log") as batch:
        batch.alter_column("chain_seq", existing_type=sa.BigInteger, nullable=False)
        batch.alter_column("digest", existing_type=sa.String(64), nullable=False)
        batch.create_unique_constraint("uq_interaction_log_chain_seq", ["chain_seq"])
    chain_table = op.create_table(
        "log_chain",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("head_seq", sa.BigInteger, nullable=False),
        sa.Column("head_digest", sa.String(64), nullable=False),
        sa.Column("archived_seq", sa.BigInteger, nullable=False),
        sa.Column("archived_digest", sa.String(64), nullable=False),
    )
    assert chain_table is not None
    op.bulk_insert(
        chain_table,
        [{"id": 1, "head_seq": head_seq, "head_digest": head_digest, "archived_seq": 0, "archived_digest": GENESIS}],
    )


def _chain_existing_entries(connection: sa.Connection) -> tuple[int, str]:
    """Number and digest the entries already logged, oldest first; returns the head."""
    log = sa.table(
        "interaction_log",
        sa.column("id", sa.BigInteger),
        sa.column("at"),
        sa.column("appid"),
        sa.column("busicode"),
        sa.column("action"),
        sa.column("random"),
        sa.column("client_addr"),
        sa.column("record_count"),
        sa.column("result"),
        sa.column("code"),
        sa.column("message"),
        sa.column("duration_ms"),
        sa.column("direction"),
        sa.column("region"),
        sa.column("chain_seq", sa.BigInteger),
        sa.column("digest"),
    )
    seq, digest, after = 0, GENESIS, -1
    fields = [column for column in log.c if column.name not in ("chain_seq", "digest")]
    update = (
        sa.update(log)
        .where(log.c.id == sa.bindparam("entry_id"))
        .values(chain_seq=sa.bindparam("new_seq"), digest=sa.bindparam("new_digest"))
    )
    while True:
        rows = connection.execute(sa.select(*fields).where(log.c.id > after).order_by(log.c.id).limit(_PAGE)).all()
        if not rows:
            return seq, digest
        changes = []
        for row in rows:
            seq += 1
            values = {**row._mapping, "chain_seq": seq}
            digest = digest_of(digest, values)
            changes.append({"entry_id": row.id, "new_seq": seq, "new_digest": digest})
        connection.execute(update, changes)
        after = rows[-1].id


def downgrade() -> None:
    op.drop_table("log_chain")
    with op.batch_alter_table("interaction_log") as batch:
        batch.drop_constraint("uq_interaction_log_chain_seq", type_="unique")
        batch.drop_column("digest")
        batch.drop_column("chain_seq")
    op.drop_table("record_changes")
    op.drop_index("ix_record_versions_key", "record_versions")
    op.drop_table("record_versions")
