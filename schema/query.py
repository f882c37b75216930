"""The Query root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import strawberry
from sqlalchemy import Row, Table
from strawberry.types import Info

from gateway import reads
from gateway import store as s
from gateway.context import Context
from gateway.reads import Cond, PageSpec
from resolvers import history, memo_files
from resolvers.lookup import find, find_node
from resolvers.permissions import Requires
from resolvers.relations import ctx
from schema import types as t
from schema.connection import Connection, build, page_spec
from schema.enums import JobStatus
from schema.inputs import ApplyCreditMemoInput, CreditMemoFilter, CreditMemoSort, DocumentFilter
from schema.model import LOOKUPS, ROOTS
from schema.payloads import ApplicationPreview, Limits
from schema.subscription import SettlementEvent

NODE_BUILDERS: dict[str, Callable[[Row[Any]], Any]] = {
    "Account": t.Account.from_row,
    "Invoice": t.Invoice.from_row,
    "DebitMemo": t.DebitMemo.from_row,
    "InvoiceItem": t.InvoiceItem.from_row,
    "DebitMemoItem": t.DebitMemoItem.from_row,
    "CreditMemo": t.CreditMemo.from_row,
    "CreditMemoItem": t.CreditMemoItem.from_row,
    "CreditMemoPart": t.CreditMemoPart.from_row,
    "PaymentPart": t.PaymentPart.from_row,
    "CreditMemoItemPart": t.CreditMemoItemPart.from_row,
    "PaymentItemPart": t.PaymentItemPart.from_row,
    "Payment": t.Payment.from_row,
    "Application": t.Application.from_row,
    "Job": t.Job.from_row,
}


async def node_of(info: Info, raw: str) -> Any:
    found = await find_node(info, raw)
    return None if found is None else NODE_BUILDERS[found[0]](found[1])


async def by_ref(info: Info, type_name: str, id: str | None, number: str | None) -> Any:
    row = await find(info, type_name, id if id is not None else number)
    return None if row is None else NODE_BUILDERS[type_name](row)


async def top_rows(
    c: Context,
    table: Table,
    first: int | None,
    after: str | None,
    *,
    where: tuple[Cond, ...] = (),
    order: tuple[str, ...] = ("id",),
    descending: bool = False,
    last: int | None = None,
    before: str | None = None,
) -> tuple[list[Row[Any]], PageSpec, Callable[[], Awaitable[int]]]:
    """A page of a top-level connection, its spec and its (lazy) total, in the caller's scope."""
    if c.principal.accounts is not None:  # a scoped token sees its accounts' rows, and counts only them
        column = "id" if table is s.account_t else "account_id"
        where = (*where, (column, "in", tuple(sorted(c.principal.accounts))))
    spec = page_spec(
        c.settings, first, after, last=last, before=before, where=where, order=order, descending=descending
    )
    rows = await c.read(lambda conn: reads.page(conn, table, spec))
    return rows, spec, lambda: c.read(lambda conn: reads.count(conn, table, where))


async def root(info: Info, name: str, **args: Any) -> Connection[Any]:
    """A top-level connection as ``schema.model.ROOTS`` declares it."""
    r = ROOTS[name]
    where, order, descending = await r.resolve(info, args)
    rows, spec, total = await top_rows(
        ctx(info),
        r.table,
        args.get("first"),
        args.get("after"),
        where=where,
        order=order,
        descending=descending,
        last=args.get("last"),
        before=args.get("before"),
    )
    return build(rows, spec, t.BUILDERS[r.to].from_row, total)


@strawberry.type
class Query:
    @strawberry.field(extensions=[Requires("read")])
    async def node(self, info: Info, id: strawberry.ID) -> t.Node | None:
        return await node_of(info, id)

    @strawberry.field(extensions=[Requires("read")])
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[t.Node | None]:
        return [await node_of(info, i) for i in ids]

    @strawberry.field(extensions=[Requires("read")])
    async def account(
        self, info: Info, id: strawberry.ID | None = None, number: str | None = None
    ) -> t.Account | None:
        return await by_ref(info, LOOKUPS["account"], id, number)

    @strawberry.field(extensions=[Requires("read")])
    async def accounts(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[t.Account]:
        return await root(info, "accounts", first=first, after=after, last=last, before=before)

    @strawberry.field(extensions=[Requires("read")])
    async def credit_memo(
        self, info: Info, id: strawberry.ID | None = None, number: str | None = None
    ) -> t.CreditMemo | None:
        return await by_ref(info, LOOKUPS["credit_memo"], id, number)

    @strawberry.field(extensions=[Requires("read")])
    async def credit_memos(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: CreditMemoFilter | None = None,
        sort: CreditMemoSort | None = None,
    ) -> Connection[t.CreditMemo]:
        return await root(
            info, "credit_memos", first=first, after=after, last=last, before=before, filter=filter, sort=sort
        )

    @strawberry.field(extensions=[Requires("read")])
    async def debit_memo(
        self, info: Info, id: strawberry.ID | None = None, number: str | None = None
    ) -> t.DebitMemo | None:
        return await by_ref(info, LOOKUPS["debit_memo"], id, number)

    @strawberry.field(extensions=[Requires("read")])
    async def debit_memos(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: DocumentFilter | None = None,
    ) -> Connection[t.DebitMemo]:
        return await root(
            info, "debit_memos", first=first, after=after, last=last, before=before, filter=filter
        )

    @strawberry.field(extensions=[Requires("read")])
    async def invoice(
        self, info: Info, id: strawberry.ID | None = None, number: str | None = None
    ) -> t.Invoice | None:
        return await by_ref(info, LOOKUPS["invoice"], id, number)

    @strawberry.field(extensions=[Requires("read")])
    async def invoices(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: DocumentFilter | None = None,
    ) -> Connection[t.Invoice]:
        return await root(info, "invoices", first=first, after=after, last=last, before=before, filter=filter)

    @strawberry.field(extensions=[Requires("read")])
    async def payment(
        self, info: Info, id: strawberry.ID | None = None, number: str | None = None
    ) -> t.Payment | None:
        return await by_ref(info, LOOKUPS["payment"], id, number)

    @strawberry.field(extensions=[Requires("read")])
    async def job(self, info: Info, id: strawberry.ID) -> t.Job | None:
        return await by_ref(info, "Job", id, None)

    @strawberry.field(extensions=[Requires("read")])
    async def jobs(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        status: JobStatus | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[t.Job]:
        where: tuple[Cond, ...] = () if status is None else (("status", "=", status.value),)
        rows, spec, total = await top_rows(
            ctx(info), s.job_t, first, after, where=where, last=last, before=before
        )
        return build(rows, spec, t.Job.from_row, total)

    @strawberry.field(extensions=[Requires("read")])
    async def payments(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[t.Payment]:
        return await root(info, "payments", first=first, after=after, last=last, before=before)

    @strawberry.field(
        description="Settlement events, oldest first, optionally of one account. The edge cursors are "
        "the `after` cursors of the settlementEvents subscription: backfill here, then subscribe "
        "from the last cursor without a gap or a duplicate.",
        extensions=[Requires("read")],
    )
    async def settlement_events(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        account_id: strawberry.ID | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[SettlementEvent]:
        return await history.settlement_events(
            info,
            SettlementEvent.from_row,
            account_id=account_id,
            first=first,
            after=after,
            last=last,
            before=before,
        )

    credit_memo_pdf_status = strawberry.field(
        memo_files.credit_memo_pdf_status,
        description="Per id, in order: the memo's PDF state, or null when no memo has that id.",
        extensions=[Requires("read")],
    )

    @strawberry.field(extensions=[Requires("read")])
    def limits(self, info: Info) -> Limits:
        return Limits(**{name: getattr(ctx(info).settings.limits, name) for name in Limits.__annotations__})

    @strawberry.field(
        description="What an apply would do, computed without writing anything.",
        extensions=[Requires("read")],
    )
    async def preview_credit_memo_application(
        self, info: Info, input: ApplyCreditMemoInput
    ) -> ApplicationPreview:
        from resolvers.settlement import preview

        return await preview(info, input)
