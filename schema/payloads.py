"""Mutation payloads: the result, or ``userErrors`` saying what was wrong and where."""

from __future__ import annotations

import strawberry

from schema.enums import ApplicationRule
from schema.errors import UserError, Warning
from schema.memo_files import CreditMemoFile
from schema.types import (
    Account,
    Application,
    ApplicationLine,
    CreditMemo,
    DebitMemo,
    Invoice,
    Job,
    Payment,
)


@strawberry.type
class AccountPayload:
    account: Account | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class InvoicePayload:
    invoice: Invoice | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class DebitMemoPayload:
    debit_memo: DebitMemo | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CreditMemoPayload:
    credit_memo: CreditMemo | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PaymentPayload:
    payment: Payment | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class DeletePayload:
    deleted_id: strawberry.ID | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CreditMemoSettlementPayload:
    credit_memo: CreditMemo | None = None
    application: Application | None = None
    applied_rule: ApplicationRule | None = None
    warnings: list[Warning] = strawberry.field(default_factory=list)
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ReverseCreditMemoPayload:
    credit_memo: CreditMemo | None = None
    debit_memo: DebitMemo | None = None
    application: Application | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class WriteOffCreditMemoPayload:
    credit_memo: CreditMemo | None = None
    debit_memo: DebitMemo | None = None
    application: Application | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PaymentSettlementPayload:
    payment: Payment | None = None
    application: Application | None = None
    applied_rule: ApplicationRule | None = None
    warnings: list[Warning] = strawberry.field(default_factory=list)
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="One entry of a bulk request: its memo, or its userErrors.")
class CreditMemoResult:
    credit_memo: CreditMemo | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class BulkCreditMemosPayload:
    results: list[CreditMemoResult] = strawberry.field(
        default_factory=list, description="One per entry, in entry order."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Problems of the whole request (then no entry ran)."
    )


@strawberry.type
class CreditMemoFilePayload:
    file: CreditMemoFile | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class JobPayload:
    job: Job | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="What an apply would do, computed without writing anything.")
class ApplicationPreview:
    applied_rule: ApplicationRule | None = None
    lines: list[ApplicationLine] = strawberry.field(default_factory=list)
    warnings: list[Warning] = strawberry.field(default_factory=list)
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class Limits:
    documents_per_request: int
    items_per_document: int
    specified_items_per_document: int
    total_items: int
    async_total_items: int
    async_invoices_per_request: int
    proration_product_apply: int
    proration_product_unapply: int
    proration_product_async: int
    item_parts_per_unapply: int
    reversal_items: int
    refund_items: int
    specified_source_items: int
    specified_refund_items: int
    memos_per_bulk_request: int
