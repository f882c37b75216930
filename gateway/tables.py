"""The tables. Amounts are integer minor units; the document's currency says how to read them.

Invoices and debit memos are both *receivables* with the same money mechanics (amount, balance,
items with balances), so they share ``receivable`` and ``receivable_item``, told apart by ``kind``;
a settlement target is then a single foreign key. Credit memo parts and payment parts share
``part`` likewise (exactly one of ``credit_memo_id`` / ``payment_id`` is set; ``target_id`` null is
the unapplied part). Every foreign key a loader filters on has an index.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = False) -> Column[datetime]:
    return Column(DateTime(timezone=True), nullable=nullable)


def _money() -> Column[int]:
    return Column(BigInteger, nullable=False, server_default="0")


# SPEC's row invariants, held by the database too (migration 0005): a write that would break one
# fails whatever the code above it got wrong, instead of leaving an item at -5.00.
BALANCE = "balance >= 0 AND balance <= amount"
MEMO_AMOUNTS = (
    "applied_amount >= 0 AND unapplied_amount >= 0 AND refund_amount >= 0"
    " AND amount = applied_amount + unapplied_amount + refund_amount"
)
PAYMENT_AMOUNTS = (
    "applied_amount >= 0 AND unapplied_amount >= 0 AND amount = applied_amount + unapplied_amount"
)


class Account(SQLModel, table=True):
    __tablename__ = "account"
    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=255)
    currency: str = Field(max_length=3)
    # where emailed documents go unless a request names other addresses
    bill_to_email: str | None = Field(default=None, max_length=320)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Receivable(SQLModel, table=True):
    """An invoice (kind INVOICE) or a debit memo (kind DEBIT_MEMO)."""

    __tablename__ = "receivable"
    __table_args__ = (
        Index("ix_receivable_account_kind", "account_id", "kind", "id"),
        CheckConstraint(BALANCE, name="ck_receivable_balance"),
    )
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    number: str = Field(max_length=32, unique=True)
    account_id: int = Field(foreign_key="account.id")
    status: str = Field(max_length=16)
    currency: str = Field(max_length=3)
    doc_date: date
    due_date: date | None = None
    amount: int = Field(sa_column=_money())
    balance: int = Field(sa_column=_money())
    credit_memo_amount: int = Field(default=0, sa_column=_money())
    payment_amount: int = Field(default=0, sa_column=_money())
    item_count: int = 0
    reason_code: str | None = Field(default=None, max_length=255)
    comment: str | None = Field(default=None, sa_type=Text)
    # No FOREIGN KEY here: credit_memo already points at receivable, and a cycle of constraints
    # cannot be created on SQLite. The reverse/write-off service is the only writer.
    referred_credit_memo_id: int | None = Field(default=None, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    posted_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class ReceivableItem(SQLModel, table=True):
    __tablename__ = "receivable_item"
    __table_args__ = (
        UniqueConstraint("receivable_id", "seq"),
        CheckConstraint(BALANCE, name="ck_receivable_item_balance"),
        CheckConstraint(
            "credited_amount >= 0 AND credited_amount <= amount", name="ck_receivable_item_credited"
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    receivable_id: int = Field(foreign_key="receivable.id")
    # copied from the document (both immutable) so that items resolve without a join
    doc_kind: str = Field(max_length=16)
    currency: str = Field(max_length=3)
    seq: int  # FIFO position within the document: creation order, TAX right after its parent
    kind: str = Field(max_length=16)
    parent_item_id: int | None = Field(default=None, foreign_key="receivable_item.id", index=True)
    sku: str | None = Field(default=None, max_length=255)
    description: str | None = Field(default=None, sa_type=Text)
    amount: int = Field(sa_column=_money())
    balance: int = Field(sa_column=_money())
    # what credit memos created from this invoice item (and not canceled) have credited
    credited_amount: int = Field(default=0, sa_column=_money())


class CreditMemo(SQLModel, table=True):
    __tablename__ = "credit_memo"
    __table_args__ = (
        Index("ix_credit_memo_account", "account_id", "id"),
        CheckConstraint(MEMO_AMOUNTS, name="ck_credit_memo_amounts"),
    )
    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=32, unique=True)
    account_id: int = Field(foreign_key="account.id")
    status: str = Field(max_length=16)
    currency: str = Field(max_length=3)
    memo_date: date
    source: str = Field(max_length=32, default="API")
    amount: int = Field(sa_column=_money())
    tax_amount: int = Field(default=0, sa_column=_money())
    applied_amount: int = Field(default=0, sa_column=_money())
    unapplied_amount: int = Field(sa_column=_money())
    refund_amount: int = Field(default=0, sa_column=_money())
    reversed: bool = False
    item_count: int = 0
    # the latest effective date of its APPLY applications, kept on every apply (no scan of history)
    latest_applied_on: date | None = None
    reason_code: str | None = Field(default=None, max_length=255)
    comment: str | None = Field(default=None, sa_type=Text)
    referred_invoice_id: int | None = Field(default=None, foreign_key="receivable.id", index=True)
    # Zuora's transferredToAccounting: NO | PROCESSING | YES | ERROR | IGNORE (descriptive only)
    transferred_to_accounting: str = Field(
        default="NO", sa_column=Column(String(16), nullable=False, server_default="NO")
    )
    exclude_from_auto_apply_rules: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    posted_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class CreditMemoItem(SQLModel, table=True):
    __tablename__ = "credit_memo_item"
    __table_args__ = (
        UniqueConstraint("credit_memo_id", "seq"),
        CheckConstraint(MEMO_AMOUNTS, name="ck_credit_memo_item_amounts"),
    )
    id: int | None = Field(default=None, primary_key=True)
    credit_memo_id: int = Field(foreign_key="credit_memo.id")
    seq: int
    kind: str = Field(max_length=16)
    parent_item_id: int | None = Field(default=None, foreign_key="credit_memo_item.id", index=True)
    source_item_id: int | None = Field(default=None, foreign_key="receivable_item.id", index=True)
    sku: str | None = Field(default=None, max_length=255)
    description: str | None = Field(default=None, sa_type=Text)
    currency: str = Field(max_length=3)
    amount: int = Field(sa_column=_money())
    applied_amount: int = Field(default=0, sa_column=_money())
    unapplied_amount: int = Field(sa_column=_money())
    refund_amount: int = Field(default=0, sa_column=_money())


class Payment(SQLModel, table=True):
    __tablename__ = "payment"
    __table_args__ = (
        Index("ix_payment_account", "account_id", "id"),
        CheckConstraint(PAYMENT_AMOUNTS, name="ck_payment_amounts"),
    )
    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=32, unique=True)
    account_id: int = Field(foreign_key="account.id")
    status: str = Field(max_length=16, default="POSTED")
    currency: str = Field(max_length=3)
    effective_date: date
    amount: int = Field(sa_column=_money())
    applied_amount: int = Field(default=0, sa_column=_money())
    unapplied_amount: int = Field(sa_column=_money())
    latest_applied_on: date | None = None  # as on credit_memo
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Part(SQLModel, table=True):
    """The present split of a credit memo or payment: one row per target, target null = unapplied."""

    __tablename__ = "part"
    __table_args__ = (
        CheckConstraint("amount >= 0", name="ck_part_amount"),
        # one part per source and target, which an apply's upsert names (null ``target_id``, the
        # unapplied part, is not covered: nulls are distinct); they also serve the source's lookups
        Index("ux_part_credit_memo_target", "credit_memo_id", "target_id", unique=True),
        Index("ux_part_payment_target", "payment_id", "target_id", unique=True),
    )
    id: int | None = Field(default=None, primary_key=True)
    credit_memo_id: int | None = Field(default=None, foreign_key="credit_memo.id")
    payment_id: int | None = Field(default=None, foreign_key="payment.id")
    target_id: int | None = Field(default=None, foreign_key="receivable.id", index=True)
    currency: str = Field(max_length=3)
    amount: int = Field(sa_column=_money())
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class ItemPart(SQLModel, table=True):
    """How much one source item (a memo item; none for payments) gives to one target item."""

    __tablename__ = "item_part"
    __table_args__ = (
        CheckConstraint("amount >= 0", name="ck_item_part_amount"),
        # one item part per part, source item and target item, which an apply's upsert names; it
        # also serves the lookups by part. A payment's item parts have no source item: on
        # PostgreSQL (15 or later) those nulls are one value, as the upsert needs.
        Index(
            "ux_item_part_items",
            "part_id",
            "credit_memo_item_id",
            "target_item_id",
            unique=True,
            postgresql_nulls_not_distinct=True,
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    part_id: int = Field(foreign_key="part.id")
    credit_memo_item_id: int | None = Field(default=None, foreign_key="credit_memo_item.id", index=True)
    target_item_id: int = Field(foreign_key="receivable_item.id", index=True)
    currency: str = Field(max_length=3)
    amount: int = Field(sa_column=_money())


class Application(SQLModel, table=True):
    """One settlement action, immutable once written."""

    __tablename__ = "application"
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    account_id: int = Field(foreign_key="account.id", index=True)
    effective_date: date
    amount: int = Field(sa_column=_money())
    currency: str = Field(max_length=3)
    rule: str | None = Field(default=None, max_length=16)
    credit_memo_id: int | None = Field(default=None, foreign_key="credit_memo.id", index=True)
    payment_id: int | None = Field(default=None, foreign_key="payment.id", index=True)
    debit_memo_id: int | None = Field(default=None, foreign_key="receivable.id", index=True)
    created_by: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


# PostgreSQL checks these tables' references once per statement, by triggers, in place of the
# foreign keys declared here (migration 0004: a foreign key's check per row was three quarters of
# the time of an apply at TOTAL_ITEMS); SQLite keeps the foreign keys.
PER_STATEMENT_REFERENCES = ("application_line", "item_part")


class ApplicationLine(SQLModel, table=True):
    """One movement of an application: source item → target item, or a refunded memo item."""

    __tablename__ = "application_line"
    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="application.id", index=True)
    seq: int
    credit_memo_item_id: int | None = Field(default=None, foreign_key="credit_memo_item.id")
    target_id: int | None = Field(default=None, foreign_key="receivable.id")
    target_item_id: int | None = Field(default=None, foreign_key="receivable_item.id")
    currency: str = Field(max_length=3)
    amount: int = Field(sa_column=_money())


class Job(SQLModel, table=True):
    __tablename__ = "job"
    __table_args__ = (Index("ix_job_status_created", "status", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    operation: str = Field(max_length=32)
    status: str = Field(max_length=16, default="PENDING")
    account_id: int = Field(foreign_key="account.id", index=True)
    credit_memo_id: int = Field(foreign_key="credit_memo.id", index=True)
    request: str = Field(sa_type=Text)  # the validated input, as JSON
    total_items: int = 0
    processed_items: int = 0
    application_id: int | None = Field(default=None, foreign_key="application.id")
    errors: str | None = Field(default=None, sa_type=Text)  # JSON list of user errors when FAILED
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_expires_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    attempts: int = 0
    created_by: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    started_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class CreditMemoFile(SQLModel, table=True):
    """A file of a credit memo: an upload (ATTACHMENT) or a generated PDF. The bytes live in the
    file store under ``storage_key``; the row is the metadata."""

    __tablename__ = "credit_memo_file"
    id: int | None = Field(default=None, primary_key=True)
    credit_memo_id: int = Field(foreign_key="credit_memo.id", index=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    kind: str = Field(max_length=16)  # ATTACHMENT | PDF
    name: str = Field(max_length=255)
    content_type: str = Field(max_length=127)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    sha256: str = Field(max_length=64)
    storage_key: str = Field(max_length=512, unique=True)
    created_by: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class CreditMemoPdf(SQLModel, table=True):
    """The PDF state of one memo: the latest generation asked for, and its file once GENERATED."""

    __tablename__ = "credit_memo_pdf"
    credit_memo_id: int = Field(
        foreign_key="credit_memo.id", primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    status: str = Field(max_length=16)  # PENDING | GENERATED | FAILED
    job_id: int | None = Field(default=None, foreign_key="job.id", index=True)
    file_id: int | None = Field(default=None, foreign_key="credit_memo_file.id")
    error: str | None = Field(default=None, sa_type=Text)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class CreditMemoEmail(SQLModel, table=True):
    """One emailing of a memo's PDF and its outcome."""

    __tablename__ = "credit_memo_email"
    id: int | None = Field(default=None, primary_key=True)
    credit_memo_id: int = Field(foreign_key="credit_memo.id", index=True)
    job_id: int = Field(foreign_key="job.id", index=True)
    recipients: str = Field(sa_type=Text)  # comma-separated
    status: str = Field(max_length=16)  # PENDING | SENT | FAILED
    error: str | None = Field(default=None, sa_type=Text)
    created_by: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    sent_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class IdempotencyKey(SQLModel, table=True):
    __tablename__ = "idempotency_key"
    key: str = Field(primary_key=True, max_length=255)
    operation: str = Field(max_length=64)
    request_hash: str = Field(max_length=64)
    status: str = Field(max_length=16)  # IN_PROGRESS | DONE
    response: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    expires_at: datetime = Field(sa_column=_ts())


class SettlementEvent(SQLModel, table=True):
    """A durable event; its id is the resumable cursor of ``settlementEvents``."""

    __tablename__ = "settlement_event"
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    account_id: int = Field(foreign_key="account.id", index=True)
    credit_memo_id: int | None = Field(default=None, foreign_key="credit_memo.id")
    payment_id: int | None = Field(default=None, foreign_key="payment.id")
    application_id: int | None = Field(default=None, foreign_key="application.id")
    created_by: str | None = Field(default=None, max_length=255)
    occurred_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=255, unique=True)
    token_hash: str = Field(max_length=64, unique=True)
    permissions: str = Field(sa_type=Text)  # comma-separated
    accounts: str | None = Field(default=None, sa_type=Text)  # comma-separated account ids; null = all
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    revoked_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class DocumentSequence(SQLModel, table=True):
    """The last number issued per kind; incremented in the creating transaction, so gap-free."""

    __tablename__ = "document_sequence"
    kind: str = Field(primary_key=True, max_length=16)
    last_value: int = 0


metadata = SQLModel.metadata


def table_of(model: type[SQLModel]) -> Table:
    """The Core table behind a SQLModel class (typed, unlike ``model.__table__``)."""
    return SQLModel.metadata.tables[str(model.__tablename__)]
