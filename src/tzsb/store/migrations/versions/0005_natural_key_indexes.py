"""Natural-key indexes of the shipped catalog.

One partial expression index per natural key (``store.natural_keys``): the live records of one
business type by the key's fields read out of the JSON document. Building an index reads every
record already stored, so records present before this revision are found by natural key after it;
the database keeps the indexes current with every later write.

The keys are those the shipped catalog declared when this revision was written (a later catalog, or
a deployment's own, is brought in line by ``natural_keys.index_catalog`` when a node starts).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

from tzsb.store import natural_keys

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

#: The natural keys of the shipped catalog at this revision: business type → field sets.
SHIPPED: dict[str, tuple[tuple[str, ...], ...]] = {
    "0101": (("REG_CODE",), ("USE_CERT_NO",), ("FACTORY_NO", "MAKE_UNIT_NAME")),
    "0500": (("EQP_CODE", "ACCIDENT_TIME"),),
}


def upgrade() -> None:
    connection = op.get_bind()
    for business, keys in SHIPPED.items():
        for fields in keys:
            natural_keys.create_index(connection, business, fields)


def downgrade() -> None:
    connection = op.get_bind()
    # Every natural-key index, also those a node's catalog added after this revision.
    for name in sorted(natural_keys.index_names(connection)):
        natural_keys.drop_index(connection, name)
