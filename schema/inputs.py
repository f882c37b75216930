"""Input types of the contract."""

from __future__ import annotations

import datetime
from decimal import Decimal

import strawberry

from schema.enums import (
    ApplicationRule,
    CreditMemoSortField,
    DocumentStatus,
    ItemKind,
    SortDirection,
    TransferredToAccounting,
)
from schema.input_conversion import planned


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
    bill_to_email: str | None = None


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


@strawberry.input
class UpdateCreditMemoItemInput:
    id: strawberry.ID
    amount: Decimal | None = strawberry.field(default=None, description="Only while DRAFT.")
    sku: str | None = strawberry.field(default=None, description='"" clears it.')
    description: str | None = strawberry.field(default=None, description='"" clears it.')


@strawberry.input(description="Fields left null are not changed; an empty string clears a text field.")
class UpdateCreditMemoInput:
    id: strawberry.ID
    comment: str | None = None
    reason_code: str | None = None
    memo_date: datetime.date | None = strawberry.field(default=None, description="Only while DRAFT.")
    transferred_to_accounting: TransferredToAccounting | None = None
    exclude_from_auto_apply_rules: bool | None = None
    items: list[UpdateCreditMemoItemInput] | None = strawberry.field(
        default=None, description="Only while DRAFT; the totals follow."
    )


@strawberry.input
class BulkCreateCreditMemosInput:
    memos: list[CreateCreditMemoInput]


@strawberry.input
class BulkUpdateCreditMemosInput:
    memos: list[UpdateCreditMemoInput]


@strawberry.input
class TaxationItemInput:
    credit_memo_item_id: strawberry.ID = strawberry.field(description="The CHARGE item it taxes.")
    amount: Decimal
    sku: str | None = None
    description: str | None = None


@strawberry.input
class CreateTaxationItemsInput:
    credit_memo_id: strawberry.ID
    taxation_items: list[TaxationItemInput]


@strawberry.input
class GenerateCreditMemoPdfsInput:
    credit_memo_ids: list[strawberry.ID]


@strawberry.input
class EmailCreditMemoInput:
    credit_memo_id: strawberry.ID
    to: list[str] | None = strawberry.field(
        default=None, description="Addresses; the account's bill-to address when omitted."
    )
    idempotency_key: str | None = None


planned(list(globals().values()))  # every input type above is built by plan (schema.input_conversion)
