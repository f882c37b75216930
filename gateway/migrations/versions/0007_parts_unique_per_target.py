"""One part per source and target, one item part per part and pair of items: unique indexes, which
an apply's writes name to add to a part or insert it in one statement (``INSERT … ON CONFLICT``)

Revision ID: 0007
Revises: 0006

An apply on PostgreSQL read its source's parts on the targets (and their item parts) to learn
which to update and which to insert: a statement, and a round trip, of its own. The writes already
kept one row per key; these indexes say so, so that the apply's combined write can upsert. They
replace the indexes on ``part.credit_memo_id``, ``part.payment_id`` and ``item_part.part_id``,
which lead them (the same lookups, no more index to keep up on an insert). On PostgreSQL the item
parts' index holds a payment's (no source item: null) as one value, ``NULLS NOT DISTINCT``, which
needs PostgreSQL 15 or later. An existing duplicate stops this migration: such rows were already
wrong, and need merging before the upgrade.
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ux_part_credit_memo_target", "part", ["credit_memo_id", "target_id"], unique=True)
    op.create_index("ux_part_payment_target", "part", ["payment_id", "target_id"], unique=True)
    op.create_index(
        "ux_item_part_items",
        "item_part",
        ["part_id", "credit_memo_item_id", "target_item_id"],
        unique=True,
        postgresql_nulls_not_distinct=True,  # a payment's item parts have no source item
    )
    op.drop_index("ix_part_credit_memo_id", table_name="part")
    op.drop_index("ix_part_payment_id", table_name="part")
    op.drop_index("ix_item_part_part_id", table_name="item_part")


def downgrade() -> None:
    op.create_index("ix_item_part_part_id", "item_part", ["part_id"])
    op.create_index("ix_part_payment_id", "part", ["payment_id"])
    op.create_index("ix_part_credit_memo_id", "part", ["credit_memo_id"])
    op.drop_index("ux_item_part_items", table_name="item_part")
    op.drop_index("ux_part_payment_target", table_name="part")
    op.drop_index("ux_part_credit_memo_target", table_name="part")
