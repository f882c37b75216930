"""The node types: thin views over rows. Scalars are copied from the row when the object is built;
every relation is one loader call (``resolvers.relations``), so a level of the graph costs one
statement however many rows it has."""

from __future__ import annotations

import datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Annotated, Any

import strawberry
from sqlalchemy import Row
from strawberry.types import Info

from gateway.ids import encode
from gateway.settlement.money import from_minor
from resolvers import filters
from resolvers.relations import ctx, many, one, paged
from schema.connection import Connection
from schema.enums import (
    ApplicationKind,
    ApplicationRule,
    CreditMemoSource,
    DocumentStatus,
    ItemKind,
    JobOperation,
    JobStatus,
)
from schema.errors import UserError
from schema.inputs import CreditMemoFilter, CreditMemoSort, DocumentFilter

ITEM_ORDER = ("seq",)


def _utc(value: datetime.datetime | None) -> datetime.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=datetime.UTC)


@strawberry.interface
class Node:
    id: strawberry.ID


@strawberry.type
class Account(Node):
    number: str
    name: str
    currency: str
    _pk: strawberry.Private[int]

    @classmethod
    def from_row(cls, r: Row[Any]) -> Account:
        return cls(id=encode("Account", r.id), number=r.number, name=r.name, currency=r.currency, _pk=r.id)

    @strawberry.field
    async def credit_memos(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        filter: CreditMemoFilter | None = None,
        sort: CreditMemoSort | None = None,
    ) -> Connection[CreditMemo]:
        where = await filters.credit_memo_where(info, filter)
        order, desc = filters.credit_memo_order(sort)
        lo = ctx(info).loaders
        return await paged(
            info,
            lo.credit_memo_pages_by_account,
            lo.credit_memo_counts_by_account,
            self._pk,
            first,
            after,
            CreditMemo.from_row,
            where=where,
            order=order,
            descending=desc,
        )

    @strawberry.field
    async def debit_memos(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        filter: DocumentFilter | None = None,
    ) -> Connection[DebitMemo]:
        lo = ctx(info).loaders
        where = (("kind", "=", "DEBIT_MEMO"), *filters.document_where(filter, "doc_date"))
        return await paged(
            info,
            lo.receivable_pages_by_account,
            lo.receivable_counts_by_account,
            self._pk,
            first,
            after,
            DebitMemo.from_row,
            where=where,
        )

    @strawberry.field
    async def invoices(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        filter: DocumentFilter | None = None,
    ) -> Connection[Invoice]:
        lo = ctx(info).loaders
        where = (("kind", "=", "INVOICE"), *filters.document_where(filter, "doc_date"))
        return await paged(
            info,
            lo.receivable_pages_by_account,
            lo.receivable_counts_by_account,
            self._pk,
            first,
            after,
            Invoice.from_row,
            where=where,
        )

    @strawberry.field
    async def payments(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Payment]:
        lo = ctx(info).loaders
        return await paged(
            info,
            lo.payment_pages_by_account,
            lo.payment_counts_by_account,
            self._pk,
            first,
            after,
            Payment.from_row,
        )


@strawberry.type
class Invoice(Node):
    number: str
    status: DocumentStatus
    currency: str
    invoice_date: datetime.date
    due_date: datetime.date | None
    amount: Decimal
    balance: Decimal
    credit_memo_amount: Decimal
    payment_amount: Decimal
    _row: strawberry.Private[Row[Any]]

    @classmethod
    def from_row(cls, r: Row[Any]) -> Invoice:
        c = r.currency
        return cls(
            id=encode("Invoice", r.id),
            number=r.number,
            status=r.status,
            currency=c,
            invoice_date=r.doc_date,
            due_date=r.due_date,
            amount=from_minor(r.amount, c),
            balance=from_minor(r.balance, c),
            credit_memo_amount=from_minor(r.credit_memo_amount, c),
            payment_amount=from_minor(r.payment_amount, c),
            _row=r,
        )

    @strawberry.field
    async def account(self, info: Info) -> Account:
        return await one(ctx(info).loaders.accounts_by_id, self._row.account_id, Account.from_row)  # type: ignore[no-any-return]

    @strawberry.field
    async def items(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[InvoiceItem]:
        lo = ctx(info).loaders
        return await paged(
            info,
            lo.receivable_item_pages_by_receivable,
            lo.receivable_item_counts_by_receivable,
            self._row.id,
            first,
            after,
            InvoiceItem.from_row,
            order=ITEM_ORDER,
        )

    @strawberry.field(
        description="Every credit memo part and payment part currently applied to this invoice."
    )
    async def application_parts(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[ApplicationPart]:
        lo = ctx(info).loaders
        return await paged(
            info,
            lo.part_pages_by_target,
            lo.part_counts_by_target,
            self._row.id,
            first,
            after,
            part_from_row,
            where=(("amount", ">", 0),),
        )

    @strawberry.field(description="Credit memos that refer to this invoice.")
    async def credit_memos(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[CreditMemo]:
        lo = ctx(info).loaders
        return await paged(
            info,
            lo.credit_memo_pages_by_referred_invoice,
            lo.credit_memo_counts_by_referred_invoice,
            self._row.id,
            first,
            after,
            CreditMemo.from_row,
        )


@strawberry.type
class InvoiceItem(Node):
    kind: ItemKind
    sku: str | None
    description: str | None
    amount: Decimal
    balance: Decimal
    _row: strawberry.Private[Row[Any]]

    @classmethod
    def from_row(cls, r: Row[Any]) -> InvoiceItem:
        return cls(
            id=encode("InvoiceItem", r.id),
            kind=r.kind,
            sku=r.sku,
            description=r.description,
            amount=from_minor(r.amount, r.currency),
            balance=from_minor(r.balance, r.currency),
            _row=r,
        )

    @strawberry.field
    async def invoice(self, info: Info) -> Invoice:
        return await one(ctx(info).loaders.receivables_by_id, self._row.receivable_id, Invoice.from_row)  # type: ignore[no-any-return]

    @strawberry.field(description="The charge a TAX or DISCOUNT item belongs to.")
    async def parent_item(self, info: Info) -> InvoiceItem | None:
        return await one(
            ctx(info).loaders.receivable_items_by_id, self._row.parent_item_id, InvoiceItem.from_row
        )  # type: ignore[no-any-return]

    @strawberry.field(description="TAX items whose parent is this item.")
    async def taxation_items(self, info: Info) -> list[InvoiceItem]:
        return await many(
            ctx(info).loaders.taxation_items_by_receivable_item, self._row.id, InvoiceItem.from_row
        )


@strawberry.type
class DebitMemo(Node):
    number: str
    status: DocumentStatus
    currency: str
    memo_date: datetime.date
    due_date: datetime.date | None
    amount: Decimal
    balance: Decimal
    applied_amount: Decimal
    reason_code: str | None
    comment: str | None
    _row: strawberry.Private[Row[Any]]

    @classmethod
    def from_row(cls, r: Row[Any]) -> DebitMemo:
        c = r.currency
        return cls(
            id=encode("DebitMemo", r.id),
            number=r.number,
            status=r.status,
            currency=c,
            memo_date=r.doc_date,
            due_date=r.due_date,
            amount=from_minor(r.amount, c),
            balance=from_minor(r.balance, c),
            applied_amount=from_minor(r.credit_memo_amount + r.payment_amount, c),
            reason_code=r.reason_code,
            comment=r.comment,
            _row=r,
        )

    @strawberry.field
    async def account(self, info: Info) -> Account:
        return await one(ctx(info).loaders.accounts_by_id, self._row.account_id, Account.from_row)  # type: ignore[no-any-return]

    @strawberry.field(description="Set when created by reversing or writing off a credit memo.")
    async def referred_credit_memo(self, info: Info) -> CreditMemo | None:
        return await one(
            ctx(info).loaders.credit_memos_by_id, self._row.referred_credit_memo_id, CreditMemo.from_row
        )  # type: ignore[no-any-return]

    @strawberry.field
    async def items(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[DebitMemoItem]:
        lo = ctx(info).loaders
        return await paged(
            info,
            lo.receivable_item_pages_by_receivable,
            lo.receivable_item_counts_by_receivable,
            self._row.id,
            first,
            after,
            DebitMemoItem.from_row,
            order=ITEM_ORDER,
        )

    @strawberry.field
    async def application_parts(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[ApplicationPart]:
        lo = ctx(info).loaders
        return await paged(
            info,
            lo.part_pages_by_target,
            lo.part_counts_by_target,
            self._row.id,
            first,
            after,
            part_from_row,
            where=(("amount", ">", 0),),
        )


@strawberry.type
class DebitMemoItem(Node):
    kind: ItemKind
    sku: str | None
    description: str | None
    amount: Decimal
    balance: Decimal
    _row: strawberry.Private[Row[Any]]

    @classmethod
    def from_row(cls, r: Row[Any]) -> DebitMemoItem:
        return cls(
            id=encode("DebitMemoItem", r.id),
            kind=r.kind,
            sku=r.sku,
            description=r.description,
            amount=from_minor(r.amount, r.currency),
            balance=from_minor(r.balance, r.currency),
            _row=r,
        )

    @strawberry.field
    async def debit_memo(self, info: Info) -> DebitMemo:
        return await one(ctx(info).loaders.receivables_by_id, self._row.receivable_id, DebitMemo.from_row)  # type: ignore[no-any-return]

    @strawberry.field
    async def parent_item(self, info: Info) -> DebitMemoItem | None:
        return await one(
            ctx(info).loaders.receivable_items_by_id, self._row.parent_item_id, DebitMemoItem.from_row
        )  # type: ignore[no-any-return]

    @strawberry.field
    async def taxation_items(self, info: Info) -> list[DebitMemoItem]:
        return await many(
            ctx(info).loaders.taxation_items_by_receivable_item, self._row.id, DebitMemoItem.from_row
        )


SettlementTarget = Annotated[Invoice | DebitMemo, strawberry.union("SettlementTarget")]
SettlementTargetItem = Annotated[InvoiceItem | DebitMemoItem, strawberry.union("SettlementTargetItem")]


def target_from_row(r: Row[Any]) -> Invoice | DebitMemo:
    return Invoice.from_row(r) if r.kind == "INVOICE" else DebitMemo.from_row(r)


def target_item_from_row(r: Row[Any]) -> InvoiceItem | DebitMemoItem:
    return InvoiceItem.from_row(r) if r.doc_kind == "INVOICE" else DebitMemoItem.from_row(r)


@strawberry.type
class CreditMemo(Node):
    number: str
    status: DocumentStatus
    currency: str
    memo_date: datetime.date
    source: CreditMemoSource
    amount: Decimal
    tax_amount: Decimal
    applied_amount: Decimal
    unapplied_amount: Decimal
    refund_amount: Decimal
    reversed: bool
    reason_code: str | None
    comment: str | None
    created_at: datetime.datetime
    posted_at: datetime.datetime | None
    _row: strawberry.Private[Row[Any]]

    @classmethod
    def from_row(cls, r: Row[Any]) -> CreditMemo:
        c = r.currency
        return cls(
            id=encode("CreditMemo", r.id),
            number=r.number,
            status=r.status,
            currency=c,
            memo_date=r.memo_date,
            source=r.source,
            amount=from_minor(r.amount, c),
            tax_amount=from_minor(r.tax_amount, c),
            applied_amount=from_minor(r.applied_amount, c),
            unapplied_amount=from_minor(r.unapplied_amount, c),
            refund_amount=from_minor(r.refund_amount, c),
            reversed=r.reversed,
            reason_code=r.reason_code,
            comment=r.comment,
            created_at=_utc(r.created_at),
            posted_at=_utc(r.posted_at),
            _row=r,  # type: ignore[arg-type]
        )

    @strawberry.field
    async def account(self, info: Info) -> Account:
        return await one(ctx(info).loaders.accounts_by_id, self._row.account_id, Account.from_row)  # type: ignore[no-any-return]

    @strawberry.field
    async def referred_invoice(self, info: Info) -> Invoice | None:
        return await one(ctx(info).loaders.receivables_by_id, self._row.referred_invoice_id, Invoice.from_row)  # type: ignore[no-any-return]

    @strawberry.field
    async def items(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[CreditMemoItem]:
        lo = ctx(info).loaders
        return await paged(
            info,
            lo.credit_memo_item_pages_by_memo,
            lo.credit_memo_item_counts_by_memo,
            self._row.id,
            first,
            after,
            CreditMemoItem.from_row,
            order=ITEM_ORDER,
        )

    @strawberry.field(description="The unapplied part and one part per target; zero parts are not listed.")
    async def parts(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[CreditMemoPart]:
        lo = ctx(info).loaders
        return await paged(
            info,
            lo.part_pages_by_credit_memo,
            lo.part_counts_by_credit_memo,
            self._row.id,
            first,
            after,
            CreditMemoPart.from_row,
            where=(("amount", ">", 0),),
        )

    @strawberry.field(description="Every settlement action on this memo, oldest first.")
    async def applications(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Application]:
        lo = ctx(info).loaders
        return await paged(
            info,
            lo.application_pages_by_credit_memo,
            lo.application_counts_by_credit_memo,
            self._row.id,
            first,
            after,
            Application.from_row,
        )


@strawberry.type
class CreditMemoItem(Node):
    kind: ItemKind
    sku: str | None
    description: str | None
    amount: Decimal
    applied_amount: Decimal
    unapplied_amount: Decimal
    refund_amount: Decimal
    _row: strawberry.Private[Row[Any]]

    @classmethod
    def from_row(cls, r: Row[Any]) -> CreditMemoItem:
        c = r.currency
        return cls(
            id=encode("CreditMemoItem", r.id),
            kind=r.kind,
            sku=r.sku,
            description=r.description,
            amount=from_minor(r.amount, c),
            applied_amount=from_minor(r.applied_amount, c),
            unapplied_amount=from_minor(r.unapplied_amount, c),
            refund_amount=from_minor(r.refund_amount, c),
            _row=r,
        )

    @strawberry.field
    async def credit_memo(self, info: Info) -> CreditMemo:
        return await one(ctx(info).loaders.credit_memos_by_id, self._row.credit_memo_id, CreditMemo.from_row)  # type: ignore[no-any-return]

    @strawberry.field
    async def parent_item(self, info: Info) -> CreditMemoItem | None:
        return await one(
            ctx(info).loaders.credit_memo_items_by_id, self._row.parent_item_id, CreditMemoItem.from_row
        )  # type: ignore[no-any-return]

    @strawberry.field
    async def taxation_items(self, info: Info) -> list[CreditMemoItem]:
        return await many(
            ctx(info).loaders.taxation_items_by_credit_memo_item, self._row.id, CreditMemoItem.from_row
        )

    @strawberry.field(description="The invoice item it credits, when created from an invoice.")
    async def source_item(self, info: Info) -> InvoiceItem | None:
        return await one(
            ctx(info).loaders.receivable_items_by_id, self._row.source_item_id, InvoiceItem.from_row
        )  # type: ignore[no-any-return]

    @strawberry.field
    async def item_parts(self, info: Info) -> list[CreditMemoItemPart]:
        return await many(
            ctx(info).loaders.item_parts_by_credit_memo_item, self._row.id, CreditMemoItemPart.from_row
        )


@strawberry.type
class CreditMemoPart(Node):
    amount: Decimal
    _row: strawberry.Private[Row[Any]]

    @classmethod
    def from_row(cls, r: Row[Any]) -> CreditMemoPart:
        return cls(id=encode("CreditMemoPart", r.id), amount=from_minor(r.amount, r.currency), _row=r)

    @strawberry.field
    async def credit_memo(self, info: Info) -> CreditMemo:
        return await one(ctx(info).loaders.credit_memos_by_id, self._row.credit_memo_id, CreditMemo.from_row)  # type: ignore[no-any-return]

    @strawberry.field(description="Null for the unapplied part.")
    async def target(self, info: Info) -> SettlementTarget | None:
        return await one(ctx(info).loaders.receivables_by_id, self._row.target_id, target_from_row)  # type: ignore[no-any-return]

    @strawberry.field
    async def item_parts(self, info: Info) -> list[CreditMemoItemPart]:
        return await many(ctx(info).loaders.item_parts_by_part, self._row.id, CreditMemoItemPart.from_row)


@strawberry.type
class CreditMemoItemPart(Node):
    amount: Decimal
    _row: strawberry.Private[Row[Any]]

    @classmethod
    def from_row(cls, r: Row[Any]) -> CreditMemoItemPart:
        return cls(id=encode("CreditMemoItemPart", r.id), amount=from_minor(r.amount, r.currency), _row=r)

    @strawberry.field
    async def part(self, info: Info) -> CreditMemoPart:
        return await one(ctx(info).loaders.parts_by_id, self._row.part_id, CreditMemoPart.from_row)  # type: ignore[no-any-return]

    @strawberry.field
    async def credit_memo_item(self, info: Info) -> CreditMemoItem:
        return await one(
            ctx(info).loaders.credit_memo_items_by_id, self._row.credit_memo_item_id, CreditMemoItem.from_row
        )  # type: ignore[no-any-return]

    @strawberry.field
    async def target_item(self, info: Info) -> SettlementTargetItem:
        return await one(
            ctx(info).loaders.receivable_items_by_id, self._row.target_item_id, target_item_from_row
        )  # type: ignore[no-any-return]


@strawberry.type
class Payment(Node):
    number: str
    currency: str
    effective_date: datetime.date
    amount: Decimal
    applied_amount: Decimal
    unapplied_amount: Decimal
    _row: strawberry.Private[Row[Any]]

    @classmethod
    def from_row(cls, r: Row[Any]) -> Payment:
        c = r.currency
        return cls(
            id=encode("Payment", r.id),
            number=r.number,
            currency=c,
            effective_date=r.effective_date,
            amount=from_minor(r.amount, c),
            applied_amount=from_minor(r.applied_amount, c),
            unapplied_amount=from_minor(r.unapplied_amount, c),
            _row=r,
        )

    @strawberry.field
    async def account(self, info: Info) -> Account:
        return await one(ctx(info).loaders.accounts_by_id, self._row.account_id, Account.from_row)  # type: ignore[no-any-return]

    @strawberry.field
    async def parts(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[PaymentPart]:
        lo = ctx(info).loaders
        return await paged(
            info,
            lo.part_pages_by_payment,
            lo.part_counts_by_payment,
            self._row.id,
            first,
            after,
            PaymentPart.from_row,
            where=(("amount", ">", 0),),
        )

    @strawberry.field
    async def applications(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Application]:
        lo = ctx(info).loaders
        return await paged(
            info,
            lo.application_pages_by_payment,
            lo.application_counts_by_payment,
            self._row.id,
            first,
            after,
            Application.from_row,
        )


@strawberry.type
class PaymentPart(Node):
    amount: Decimal
    _row: strawberry.Private[Row[Any]]

    @classmethod
    def from_row(cls, r: Row[Any]) -> PaymentPart:
        return cls(id=encode("PaymentPart", r.id), amount=from_minor(r.amount, r.currency), _row=r)

    @strawberry.field
    async def payment(self, info: Info) -> Payment:
        return await one(ctx(info).loaders.payments_by_id, self._row.payment_id, Payment.from_row)  # type: ignore[no-any-return]

    @strawberry.field(description="Null for the unapplied part.")
    async def target(self, info: Info) -> SettlementTarget | None:
        return await one(ctx(info).loaders.receivables_by_id, self._row.target_id, target_from_row)  # type: ignore[no-any-return]

    @strawberry.field
    async def item_parts(self, info: Info) -> list[PaymentItemPart]:
        return await many(ctx(info).loaders.item_parts_by_part, self._row.id, PaymentItemPart.from_row)


@strawberry.type
class PaymentItemPart(Node):
    amount: Decimal
    _row: strawberry.Private[Row[Any]]

    @classmethod
    def from_row(cls, r: Row[Any]) -> PaymentItemPart:
        return cls(id=encode("PaymentItemPart", r.id), amount=from_minor(r.amount, r.currency), _row=r)

    @strawberry.field
    async def part(self, info: Info) -> PaymentPart:
        return await one(ctx(info).loaders.parts_by_id, self._row.part_id, PaymentPart.from_row)  # type: ignore[no-any-return]

    @strawberry.field
    async def target_item(self, info: Info) -> SettlementTargetItem:
        return await one(
            ctx(info).loaders.receivable_items_by_id, self._row.target_item_id, target_item_from_row
        )  # type: ignore[no-any-return]


ApplicationPart = Annotated[CreditMemoPart | PaymentPart, strawberry.union("ApplicationPart")]


def part_from_row(r: Row[Any]) -> CreditMemoPart | PaymentPart:
    return CreditMemoPart.from_row(r) if r.credit_memo_id is not None else PaymentPart.from_row(r)


@strawberry.type(description="One settlement action, immutable once written.")
class Application(Node):
    kind: ApplicationKind
    effective_date: datetime.date
    amount: Decimal
    rule: ApplicationRule | None = strawberry.field(description="The rule actually used to allocate items.")
    created_by: str | None = strawberry.field(description="The name of the token that asked for it.")
    created_at: datetime.datetime
    _row: strawberry.Private[Row[Any]]

    @classmethod
    def from_row(cls, r: Row[Any]) -> Application:
        return cls(
            id=encode("Application", r.id),
            kind=r.kind,
            effective_date=r.effective_date,
            amount=from_minor(r.amount, r.currency),
            rule=r.rule,
            created_by=r.created_by,
            created_at=_utc(r.created_at),
            _row=r,  # type: ignore[arg-type]
        )

    @strawberry.field
    async def credit_memo(self, info: Info) -> CreditMemo | None:
        return await one(ctx(info).loaders.credit_memos_by_id, self._row.credit_memo_id, CreditMemo.from_row)  # type: ignore[no-any-return]

    @strawberry.field
    async def payment(self, info: Info) -> Payment | None:
        return await one(ctx(info).loaders.payments_by_id, self._row.payment_id, Payment.from_row)  # type: ignore[no-any-return]

    @strawberry.field(description="Created by REVERSE or WRITE_OFF.")
    async def debit_memo(self, info: Info) -> DebitMemo | None:
        return await one(ctx(info).loaders.receivables_by_id, self._row.debit_memo_id, DebitMemo.from_row)  # type: ignore[no-any-return]

    @strawberry.field(description="Movements between items; a refund's lines are in refundLines.")
    async def lines(self, info: Info) -> list[ApplicationLine]:
        rows = await ctx(info).loaders.lines_by_application.load(self._row.id)
        return [ApplicationLine.from_row(r) for r in rows if r.target_id is not None]


@strawberry.type
class ApplicationLine:
    amount: Decimal
    _row: strawberry.Private[Row[Any]]

    @classmethod
    def from_row(cls, r: Row[Any]) -> ApplicationLine:
        return cls(amount=from_minor(r.amount, r.currency), _row=r)

    @classmethod
    def preview(cls, movement: Any, currency: str) -> ApplicationLine:
        """A line of a previewed (unwritten) application."""
        row = SimpleNamespace(
            credit_memo_item_id=movement.source_item_id,
            target_id=movement.target_id,
            target_item_id=movement.target_item_id,
            amount=movement.amount,
            currency=currency,
        )
        return cls(amount=from_minor(movement.amount, currency), _row=row)  # type: ignore[arg-type]

    @strawberry.field
    async def source_item(self, info: Info) -> CreditMemoItem | None:
        return await one(
            ctx(info).loaders.credit_memo_items_by_id, self._row.credit_memo_item_id, CreditMemoItem.from_row
        )  # type: ignore[no-any-return]

    @strawberry.field
    async def target(self, info: Info) -> SettlementTarget:
        return await one(ctx(info).loaders.receivables_by_id, self._row.target_id, target_from_row)  # type: ignore[no-any-return]

    @strawberry.field
    async def target_item(self, info: Info) -> SettlementTargetItem:
        return await one(
            ctx(info).loaders.receivable_items_by_id, self._row.target_item_id, target_item_from_row
        )  # type: ignore[no-any-return]


@strawberry.type
class JobProgress:
    total_items: int
    processed_items: int
    percent: float


@strawberry.type
class Job(Node):
    operation: JobOperation
    status: JobStatus
    created_at: datetime.datetime
    started_at: datetime.datetime | None
    finished_at: datetime.datetime | None
    progress: JobProgress
    errors: list[UserError]
    _row: strawberry.Private[Row[Any]]

    @classmethod
    def from_row(cls, r: Row[Any]) -> Job:
        from resolvers.jobs import processed_items
        from schema.errors import user_errors_from_json

        total, done = r.total_items, processed_items(r)
        percent = (
            100.0 if total == 0 and r.status == "COMPLETED" else (100.0 * done / total if total else 0.0)
        )
        return cls(
            id=encode("Job", r.id),
            operation=r.operation,
            status=r.status,
            created_at=_utc(r.created_at),  # type: ignore[arg-type]
            started_at=_utc(r.started_at),
            finished_at=_utc(r.finished_at),
            progress=JobProgress(total_items=total, processed_items=done, percent=round(percent, 2)),
            errors=user_errors_from_json(r.errors),
            _row=r,
        )

    @strawberry.field
    async def credit_memo(self, info: Info) -> CreditMemo:
        return await one(ctx(info).loaders.credit_memos_by_id, self._row.credit_memo_id, CreditMemo.from_row)  # type: ignore[no-any-return]

    @strawberry.field(description="Set when COMPLETED.")
    async def application(self, info: Info) -> Application | None:
        return await one(ctx(info).loaders.applications_by_id, self._row.application_id, Application.from_row)  # type: ignore[no-any-return]
