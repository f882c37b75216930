"""latest_applied_on on credit_memo and payment: the latest APPLY date, kept on every apply

Revision ID: 0003
Revises: 0002_issue14
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002_issue14"
branch_labels = None
depends_on = None

BACKFILL = """
UPDATE {table} SET latest_applied_on = (
    SELECT max(application.effective_date) FROM application
    WHERE application.{owner} = {table}.id AND application.kind = 'APPLY'
)
"""


def upgrade() -> None:
    for table, owner in (("credit_memo", "credit_memo_id"), ("payment", "payment_id")):
        op.add_column(table, sa.Column("latest_applied_on", sa.Date(), nullable=True))
        op.execute(BACKFILL.format(table=table, owner=owner))


def downgrade() -> None:
    for table in ("credit_memo", "payment"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("latest_applied_on")
