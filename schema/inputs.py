"""Input types of the contract."""

from __future__ import annotations

import datetime
from decimal import Decimal

import strawberry

from schema.enums import ApplicationRule, CreditMemoSortField, DocumentStatus, ItemKind, SortDirection


@strawberry.input
class DocumentFilter:
    status: DocumentStatus | None = None
    memo_date_from: datetime.date | None = None
    memo_date_to: datetime.date | None = None


@strawberry.input
class CreditMemoFilter:
    status: DocumentStatus | None = None
    account_id: strawberry.ID | None = None
    referred_invoice_id: strawberry.ID | None = None
    has_referred_invoice: bool | None = None
    reversed: bool | None = None
    memo_date_from: datetime.date | None = None
    memo_date_to: datetime.date | None = None


@strawberry.input
class CreditMemoSort:
    field: CreditMemoSortField
    direction: SortDirection = SortDirection.ASC


@strawberry.input
class ItemAmountInput:
    amount: Decimal
    target_item_id: strawberry.ID
    credit_memo_item_id: strawberry.ID | None = None


@strawberry.input
class TargetAmountInput:
    id: strawberry.ID
    amount: Decimal
    items: list[ItemAmountInput] | None = None


@strawberry.input
class ApplyCreditMemoInput:
    credit_memo_id: strawberry.ID
    effective_date: datetime.date | None = None
    application_rule: ApplicationRule | None = None
    invoices: list[TargetAmountInput] | None = None
    debit_memos: list[TargetAmountInput] | None = None
    idempotency_key: str | None = None


@strawberry.input
class UnapplyCreditMemoInput:
    credit_memo_id: strawberry.ID
    effective_date: datetime.date | None = None
    application_rule: ApplicationRule | None = None
    invoices: list[TargetAmountInput] | None = None
    debit_memos: list[TargetAmountInput] | None = None
    idempotency_key: str | None = None


@strawberry.input
class ReverseCreditMemoInput:
    credit_memo_id: strawberry.ID
    memo_date: datetime.date | None = None
    apply_effective_date: datetime.date | None = None
    reason_code: str | None = None
    comment: str | None = None
    idempotency_key: str | None = None


@strawberry.input
class WriteOffCreditMemoInput:
    credit_memo_id: strawberry.ID
    memo_date: datetime.date | None = None
    reason_code: str | None = None
    comment: str | None = None
    idempotency_key: str | None = None


@strawberry.input
class RefundCreditMemoInput:
    credit_memo_id: strawberry.ID
    amount: Decimal
    refund_date: datetime.date | None = None
    method: str | None = None
    idempotency_key: str | None = None


@strawberry.input
class ApplyPaymentInput:
    payment_id: strawberry.ID
    effective_date: datetime.date | None = None
    invoices: list[TargetAmountInput] | None = None
    debit_memos: list[TargetAmountInput] | None = None
    idempotency_key: str | None = None


@strawberry.input
class NewItemInput:
    amount: Decimal
    kind: ItemKind = ItemKind.CHARGE
    sku: str | None = None
    description: str | None = None
    tax_amount: Decimal | None = None


@strawberry.input
class CreateAccountInput:
    number: str | None = None
    name: str
    currency: str


@strawberry.input
class CreateInvoiceInput:
    account_id: strawberry.ID
    invoice_date: datetime.date | None = None
    due_date: datetime.date | None = None
    items: list[NewItemInput]
    post: bool = True


@strawberry.input
class CreateDebitMemoInput:
    account_id: strawberry.ID
    memo_date: datetime.date | None = None
    due_date: datetime.date | None = None
    items: list[NewItemInput]
    reason_code: str | None = None
    post: bool = True


@strawberry.input
class CreateCreditMemoInput:
    account_id: strawberry.ID
    memo_date: datetime.date | None = None
    items: list[NewItemInput]
    reason_code: str | None = None
    comment: str | None = None
    post: bool = False


@strawberry.input
class CreditMemoFromInvoiceItemInput:
    invoice_item_id: strawberry.ID
    amount: Decimal


@strawberry.input
class CreateCreditMemoFromInvoiceInput:
    invoice_id: strawberry.ID
    memo_date: datetime.date | None = None
    items: list[CreditMemoFromInvoiceItemInput]
    reason_code: str | None = None
    post: bool = False


@strawberry.input
class CreatePaymentInput:
    account_id: strawberry.ID
    amount: Decimal
    effective_date: datetime.date | None = None
