"""credit memo API: descriptive fields, files, PDFs, emails, the account's bill-to address

Revision ID: 0002_issue14
Revises: 0001
Create Date: 2026-11-23 20:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002_issue14'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bill_to_email', sa.String(length=320), nullable=True))
    with op.batch_alter_table('credit_memo', schema=None) as batch_op:
        batch_op.add_column(sa.Column('transferred_to_accounting', sa.String(length=16), server_default='NO', nullable=False))
        batch_op.add_column(sa.Column('exclude_from_auto_apply_rules', sa.Boolean(), server_default=sa.false(), nullable=False))

    op.create_table('credit_memo_file',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('credit_memo_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=127), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('storage_key', sa.String(length=512), nullable=False),
    sa.Column('created_by', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['credit_memo_id'], ['credit_memo.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('storage_key')
    )
    with op.batch_alter_table('credit_memo_file', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_memo_file_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_memo_file_credit_memo_id'), ['credit_memo_id'], unique=False)

    op.create_table('credit_memo_pdf',
    sa.Column('credit_memo_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('file_id', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['credit_memo_id'], ['credit_memo.id'], ),
    sa.ForeignKeyConstraint(['file_id'], ['credit_memo_file.id'], ),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], ),
    sa.PrimaryKeyConstraint('credit_memo_id')
    )
    with op.batch_alter_table('credit_memo_pdf', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_memo_pdf_job_id'), ['job_id'], unique=False)

    op.create_table('credit_memo_email',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('credit_memo_id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('recipients', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_by', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['credit_memo_id'], ['credit_memo.id'], ),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('credit_memo_email', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_memo_email_credit_memo_id'), ['credit_memo_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_memo_email_job_id'), ['job_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('credit_memo_email', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_memo_email_job_id'))
        batch_op.drop_index(batch_op.f('ix_credit_memo_email_credit_memo_id'))
    op.drop_table('credit_memo_email')
    with op.batch_alter_table('credit_memo_pdf', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_memo_pdf_job_id'))
    op.drop_table('credit_memo_pdf')
    with op.batch_alter_table('credit_memo_file', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_memo_file_credit_memo_id'))
        batch_op.drop_index(batch_op.f('ix_credit_memo_file_account_id'))
    op.drop_table('credit_memo_file')
    with op.batch_alter_table('credit_memo', schema=None) as batch_op:
        batch_op.drop_column('exclude_from_auto_apply_rules')
        batch_op.drop_column('transferred_to_accounting')
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.drop_column('bill_to_email')
