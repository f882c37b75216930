"""SPEC's row invariants as CHECK constraints: balances within amounts, memo and payment amounts
split exactly, parts never negative, an invoice item never credited beyond its amount

Revision ID: 0005
Revises: 0004

The code keeps them (tests check them after every operation); the database now refuses a write
that would break one, so a mistake fails its transaction instead of leaving an item at -5.00. An
existing row that breaks one stops this migration with the constraint's name: such a row was
already wrong, and needs mending before the upgrade.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BALANCE = "balance >= 0 AND balance <= amount"
CREDITED = "credited_amount >= 0 AND credited_amount <= amount"
MEMO_AMOUNTS = (
    "applied_amount >= 0 AND unapplied_amount >= 0 AND refund_amount >= 0"
    " AND amount = applied_amount + unapplied_amount + refund_amount"
)
PAYMENT_AMOUNTS = (
    "applied_amount >= 0 AND unapplied_amount >= 0 AND amount = applied_amount + unapplied_amount"
)

CHECKS = (
    ("receivable", "ck_receivable_balance", BALANCE),
    ("receivable_item", "ck_receivable_item_balance", BALANCE),
    ("receivable_item", "ck_receivable_item_credited", CREDITED),
    ("credit_memo", "ck_credit_memo_amounts", MEMO_AMOUNTS),
    ("credit_memo_item", "ck_credit_memo_item_amounts", MEMO_AMOUNTS),
    ("payment", "ck_payment_amounts", PAYMENT_AMOUNTS),
    ("part", "ck_part_amount", "amount >= 0"),
    ("item_part", "ck_item_part_amount", "amount >= 0"),
)


def upgrade() -> None:
    for table, name, condition in CHECKS:
        with op.batch_alter_table(table) as batch:  # SQLite rebuilds the table; PostgreSQL alters it
            batch.create_check_constraint(name, condition)


def downgrade() -> None:
    for table, name, _ in reversed(CHECKS):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(name, type_="check")
