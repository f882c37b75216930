"""The node types: thin views over rows, built from their declaration in ``schema.model``.

Scalars are copied from the row when the object is built; every relation is one loader call
(``follow``), so a level of the graph costs one statement however many rows it has. The planned read
path (``schema.planner``) reads the same declarations and skips these objects altogether."""

from __future__ import annotations

import datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Annotated, Any, Self

import strawberry
from sqlalchemy import Row
from strawberry.types import Info

from gateway.ids import encode
from gateway.settlement.money import from_minor
from resolvers.permissions import creator
from resolvers.relations import charge, ctx, many, one, paged
from schema.connection import Connection
from schema.enums import (
    ApplicationKind,
    ApplicationRule,
    CreditMemoSource,
    DocumentStatus,
    ItemKind,
    JobOperation,
    JobStatus,
    TransferredToAccounting,
)
from schema.errors import UserError
from schema.inputs import CreditMemoFilter, CreditMemoSort, DocumentFilter
from schema.memo_files import CreditMemoEmail, CreditMemoFile, CreditMemoPdf
from schema.model import MODEL, Many, One, type_of
from schema.model import utc as _utc

BUILDERS: dict[str, Any] = {}  # type name -> class, filled as the classes are defined


class RowView:
    """``from_row`` from the type's scalars in ``schema.model.MODEL``; the row is kept for relations."""

    @classmethod
    def from_row(cls, r: Row[Any]) -> Self:
        scalars = MODEL[cls.__name__].scalars
        return cls(**{name: s.py(r) for name, s in scalars.items()}, _row=r)  # type: ignore[call-arg]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        BUILDERS[cls.__name__] = cls


async def follow(info: Info, source: Any, name: str, **args: Any) -> Any:
    """The value of relation ``name`` of ``source``, as ``schema.model`` declares it."""
    relation = MODEL[type(source).__name__].relations[name]
    loaders = ctx(info).loaders
    row = source._row

    def build(r: Row[Any]) -> Any:
        return BUILDERS[type_of(relation, r)].from_row(r)

    if isinstance(relation, One):
        return await one(getattr(loaders, relation.loader), getattr(row, relation.key), build)
    if isinstance(relation, Many):
        rows = await getattr(loaders, relation.loader).load(row.id)
        keep = relation.keep
        kept = [build(r) for r in rows if keep is None or keep(r)]
        charge(info, len(kept))  # a plain list's real size, against the cost limit
        return kept
    where, order, descending = await relation.resolve(info, args)
    return await paged(
        info,
        getattr(loaders, relation.pages),
        getattr(loaders, relation.counts),
        row.id,
        args.get("first"),
        args.get("after"),
        build,
        where=where,
        order=order,
        descending=descending,
        last=args.get("last"),
        before=args.get("before"),
    )


@strawberry.interface
class Node:
    id: strawberry.ID


@strawberry.type
class Account(Node, RowView):
    number: str
    name: str
    currency: str
    bill_to_email: str | None = strawberry.field(description="Where emailed documents go by default.")
    _row: strawberry.Private[Row[Any]]

    @strawberry.field
    async def credit_memos(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: CreditMemoFilter | None = None,
        sort: CreditMemoSort | None = None,
    ) -> Connection[CreditMemo]:
        return await follow(
            info,
            self,
            "credit_memos",
            first=first,
            after=after,
            last=last,
            before=before,
            filter=filter,
            sort=sort,
        )

    @strawberry.field
    async def debit_memos(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: DocumentFilter | None = None,
    ) -> Connection[DebitMemo]:
        return await follow(
            info, self, "debit_memos", first=first, after=after, last=last, before=before, filter=filter
        )

    @strawberry.field
    async def invoices(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: DocumentFilter | None = None,
    ) -> Connection[Invoice]:
        return await follow(
            info, self, "invoices", first=first, after=after, last=last, before=before, filter=filter
        )

    @strawberry.field
    async def payments(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Payment]:
        return await follow(info, self, "payments", first=first, after=after, last=last, before=before)


@strawberry.type
class Invoice(Node, RowView):
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

    @strawberry.field
    async def account(self, info: Info) -> Account:
        return await follow(info, self, "account")

    @strawberry.field
    async def items(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[InvoiceItem]:
        return await follow(info, self, "items", first=first, after=after, last=last, before=before)

    @strawberry.field(
        description="Every credit memo part and payment part currently applied to this invoice."
    )
    async def application_parts(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[ApplicationPart]:
        return await follow(
            info, self, "application_parts", first=first, after=after, last=last, before=before
        )

    @strawberry.field(description="Credit memos that refer to this invoice.")
    async def credit_memos(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[CreditMemo]:
        return await follow(info, self, "credit_memos", first=first, after=after, last=last, before=before)


@strawberry.type
class InvoiceItem(Node, RowView):
    kind: ItemKind
    sku: str | None
    description: str | None
    amount: Decimal
    balance: Decimal
    _row: strawberry.Private[Row[Any]]

    @strawberry.field
    async def invoice(self, info: Info) -> Invoice:
        return await follow(info, self, "invoice")

    @strawberry.field(description="The charge a TAX or DISCOUNT item belongs to.")
    async def parent_item(self, info: Info) -> InvoiceItem | None:
        return await follow(info, self, "parent_item")

    @strawberry.field(description="TAX items whose parent is this item.")
    async def taxation_items(self, info: Info) -> list[InvoiceItem]:
        return await follow(info, self, "taxation_items")


@strawberry.type
class DebitMemo(Node, RowView):
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

    @strawberry.field
    async def account(self, info: Info) -> Account:
        return await follow(info, self, "account")

    @strawberry.field(description="Set when created by reversing or writing off a credit memo.")
    async def referred_credit_memo(self, info: Info) -> CreditMemo | None:
        return await follow(info, self, "referred_credit_memo")

    @strawberry.field
    async def items(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[DebitMemoItem]:
        return await follow(info, self, "items", first=first, after=after, last=last, before=before)

    @strawberry.field
    async def application_parts(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[ApplicationPart]:
        return await follow(
            info, self, "application_parts", first=first, after=after, last=last, before=before
        )


@strawberry.type
class DebitMemoItem(Node, RowView):
    kind: ItemKind
    sku: str | None
    description: str | None
    amount: Decimal
    balance: Decimal
    _row: strawberry.Private[Row[Any]]

    @strawberry.field
    async def debit_memo(self, info: Info) -> DebitMemo:
        return await follow(info, self, "debit_memo")

    @strawberry.field
    async def parent_item(self, info: Info) -> DebitMemoItem | None:
        return await follow(info, self, "parent_item")

    @strawberry.field
    async def taxation_items(self, info: Info) -> list[DebitMemoItem]:
        return await follow(info, self, "taxation_items")


SettlementTarget = Annotated[Invoice | DebitMemo, strawberry.union("SettlementTarget")]
SettlementTargetItem = Annotated[InvoiceItem | DebitMemoItem, strawberry.union("SettlementTargetItem")]


@strawberry.type
class CreditMemo(Node, RowView):
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
    transferred_to_accounting: TransferredToAccounting
    exclude_from_auto_apply_rules: bool
    created_at: datetime.datetime
    posted_at: datetime.datetime | None
    _row: strawberry.Private[Row[Any]]

    @strawberry.field
    async def account(self, info: Info) -> Account:
        return await follow(info, self, "account")

    # Files, the PDF and emails (issue 14) are answered here, not by schema.model: the planner
    # falls back for queries that select them (schema.model.FALLBACK).
    @strawberry.field(description="Uploaded files and generated PDFs, oldest first.")
    async def files(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[CreditMemoFile]:
        lo = ctx(info).loaders
        return await paged(
            info,
            lo.file_pages_by_credit_memo,
            lo.file_counts_by_credit_memo,
            self._row.id,
            first,
            after,
            CreditMemoFile.from_row,
            last=last,
            before=before,
        )

    @strawberry.field(description="The PDF's state (status NONE until one is asked for).")
    async def pdf(self, info: Info) -> CreditMemoPdf:
        rows = await ctx(info).loaders.pdfs_by_credit_memo.load(self._row.id)
        return CreditMemoPdf.from_row(rows[0]) if rows else CreditMemoPdf.none(self._row.id)

    @strawberry.field(description="Every emailing of this memo, oldest first.")
    async def emails(self, info: Info) -> list[CreditMemoEmail]:
        return await many(
            info, ctx(info).loaders.emails_by_credit_memo, self._row.id, CreditMemoEmail.from_row
        )

    @strawberry.field
    async def referred_invoice(self, info: Info) -> Invoice | None:
        return await follow(info, self, "referred_invoice")

    @strawberry.field
    async def items(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[CreditMemoItem]:
        return await follow(info, self, "items", first=first, after=after, last=last, before=before)

    @strawberry.field(description="The unapplied part and one part per target; zero parts are not listed.")
    async def parts(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[CreditMemoPart]:
        return await follow(info, self, "parts", first=first, after=after, last=last, before=before)

    @strawberry.field(description="Every settlement action on this memo, oldest first.")
    async def applications(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Application]:
        return await follow(info, self, "applications", first=first, after=after, last=last, before=before)


@strawberry.type
class CreditMemoItem(Node, RowView):
    kind: ItemKind
    sku: str | None
    description: str | None
    amount: Decimal
    applied_amount: Decimal
    unapplied_amount: Decimal
    refund_amount: Decimal
    _row: strawberry.Private[Row[Any]]

    @strawberry.field
    async def credit_memo(self, info: Info) -> CreditMemo:
        return await follow(info, self, "credit_memo")

    @strawberry.field
    async def parent_item(self, info: Info) -> CreditMemoItem | None:
        return await follow(info, self, "parent_item")

    @strawberry.field
    async def taxation_items(self, info: Info) -> list[CreditMemoItem]:
        return await follow(info, self, "taxation_items")

    @strawberry.field(description="The invoice item it credits, when created from an invoice.")
    async def source_item(self, info: Info) -> InvoiceItem | None:
        return await follow(info, self, "source_item")

    @strawberry.field
    async def item_parts(self, info: Info) -> list[CreditMemoItemPart]:
        return await follow(info, self, "item_parts")


@strawberry.type
class CreditMemoPart(Node, RowView):
    amount: Decimal
    _row: strawberry.Private[Row[Any]]

    @strawberry.field
    async def credit_memo(self, info: Info) -> CreditMemo:
        return await follow(info, self, "credit_memo")

    @strawberry.field(description="Null for the unapplied part.")
    async def target(self, info: Info) -> SettlementTarget | None:
        return await follow(info, self, "target")

    @strawberry.field
    async def item_parts(self, info: Info) -> list[CreditMemoItemPart]:
        return await follow(info, self, "item_parts")


@strawberry.type
class CreditMemoItemPart(Node, RowView):
    amount: Decimal
    _row: strawberry.Private[Row[Any]]

    @strawberry.field
    async def part(self, info: Info) -> CreditMemoPart:
        return await follow(info, self, "part")

    @strawberry.field
    async def credit_memo_item(self, info: Info) -> CreditMemoItem:
        return await follow(info, self, "credit_memo_item")

    @strawberry.field
    async def target_item(self, info: Info) -> SettlementTargetItem:
        return await follow(info, self, "target_item")


@strawberry.type
class Payment(Node, RowView):
    number: str
    currency: str
    effective_date: datetime.date
    amount: Decimal
    applied_amount: Decimal
    unapplied_amount: Decimal
    _row: strawberry.Private[Row[Any]]

    @strawberry.field
    async def account(self, info: Info) -> Account:
        return await follow(info, self, "account")

    @strawberry.field
    async def parts(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[PaymentPart]:
        return await follow(info, self, "parts", first=first, after=after, last=last, before=before)

    @strawberry.field
    async def applications(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Application]:
        return await follow(info, self, "applications", first=first, after=after, last=last, before=before)


@strawberry.type
class PaymentPart(Node, RowView):
    amount: Decimal
    _row: strawberry.Private[Row[Any]]

    @strawberry.field
    async def payment(self, info: Info) -> Payment:
        return await follow(info, self, "payment")

    @strawberry.field(description="Null for the unapplied part.")
    async def target(self, info: Info) -> SettlementTarget | None:
        return await follow(info, self, "target")

    @strawberry.field
    async def item_parts(self, info: Info) -> list[PaymentItemPart]:
        return await follow(info, self, "item_parts")


@strawberry.type
class PaymentItemPart(Node, RowView):
    amount: Decimal
    _row: strawberry.Private[Row[Any]]

    @strawberry.field
    async def part(self, info: Info) -> PaymentPart:
        return await follow(info, self, "part")

    @strawberry.field
    async def target_item(self, info: Info) -> SettlementTargetItem:
        return await follow(info, self, "target_item")


ApplicationPart = Annotated[CreditMemoPart | PaymentPart, strawberry.union("ApplicationPart")]


@strawberry.type(description="One settlement action, immutable once written.")
class Application(Node, RowView):
    kind: ApplicationKind
    effective_date: datetime.date
    amount: Decimal
    rule: ApplicationRule | None = strawberry.field(description="The rule actually used to allocate items.")
    created_at: datetime.datetime
    _row: strawberry.Private[Row[Any]]

    @strawberry.field(
        description="The name of the token that asked for it (an account-scoped token sees only its own)."
    )
    def created_by(self, info: Info) -> str | None:
        return creator(info, self._row.created_by)

    @strawberry.field
    async def credit_memo(self, info: Info) -> CreditMemo | None:
        return await follow(info, self, "credit_memo")

    @strawberry.field
    async def payment(self, info: Info) -> Payment | None:
        return await follow(info, self, "payment")

    @strawberry.field(description="Created by REVERSE or WRITE_OFF.")
    async def debit_memo(self, info: Info) -> DebitMemo | None:
        return await follow(info, self, "debit_memo")

    @strawberry.field(description="Movements between items; a refund's lines are in refundLines.")
    async def lines(self, info: Info) -> list[ApplicationLine]:
        return await follow(info, self, "lines")


@strawberry.type
class ApplicationLine(RowView):
    amount: Decimal
    _row: strawberry.Private[Row[Any]]

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
        return await follow(info, self, "source_item")

    @strawberry.field
    async def target(self, info: Info) -> SettlementTarget:
        return await follow(info, self, "target")

    @strawberry.field
    async def target_item(self, info: Info) -> SettlementTargetItem:
        return await follow(info, self, "target_item")


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
            id=strawberry.ID(encode("Job", r.id)),
            operation=r.operation,
            status=r.status,
            created_at=_utc(r.created_at),
            started_at=_utc(r.started_at),
            finished_at=_utc(r.finished_at),
            progress=JobProgress(total_items=total, processed_items=done, percent=round(percent, 2)),
            errors=user_errors_from_json(r.errors),
            _row=r,
        )

    @strawberry.field
    async def credit_memo(self, info: Info) -> CreditMemo:
        return await one(ctx(info).loaders.credit_memos_by_id, self._row.credit_memo_id, CreditMemo.from_row)

    @strawberry.field(description="Set when COMPLETED.")
    async def application(self, info: Info) -> Application | None:
        return await one(ctx(info).loaders.applications_by_id, self._row.application_id, Application.from_row)
