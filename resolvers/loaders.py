"""Per-request DataLoaders, one per relation, named ``<things>_by_<key>``.

Each batch is one SQL statement (``gateway.reads``) and returns results in key order. Paged and
counted relations take ``(parent_id, PageSpec)`` / ``(parent_id, where)`` keys and group them by
spec, so siblings asking for the same page shape share one statement.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import Row, Table
from strawberry.dataloader import DataLoader

from gateway import reads
from gateway import store as s
from gateway.reads import Cond, PageSpec

if TYPE_CHECKING:
    from gateway.context import Context

PageKey = tuple[int, PageSpec]
CountKey = tuple[int, tuple[Cond, ...]]
POSITIVE: tuple[Cond, ...] = (("amount", ">", 0),)
L = TypeVar("L", bound=DataLoader[Any, Any])


def _visible(ctx: Context, table: Table) -> Any:
    """Whether a row of ``table`` is in the caller's account scope (rows of unowned tables: yes;
    items and parts are only reachable through documents, checked in resolvers.lookup)."""
    accounts = ctx.principal.accounts
    if accounts is None:
        return lambda row: True
    if table is s.account_t:
        return lambda row: row.id in accounts
    if "account_id" in table.c:
        return lambda row: row.account_id in accounts
    return lambda row: True


def _by_id(ctx: Context, table: Table) -> DataLoader[int, Row[Any] | None]:
    visible = _visible(ctx, table)

    async def load(ids: list[int]) -> list[Row[Any] | None]:
        found = await ctx.read(lambda conn: reads.rows_by_ids(conn, table, ids))
        return [row if (row := found.get(i)) is not None and visible(row) else None for i in ids]

    return DataLoader(load_fn=load)


def _lists(
    ctx: Context, table: Table, parent: str, where: Sequence[Cond] = (), order: Sequence[str] = ("id",)
) -> DataLoader[int, list[Row[Any]]]:
    async def load(ids: list[int]) -> list[list[Row[Any]]]:
        found = await ctx.read(
            lambda conn: reads.lists_by_parent(conn, table, parent, ids, where=where, order=order)
        )
        return [found.get(i, []) for i in ids]

    return DataLoader(load_fn=load)


def _pages(ctx: Context, table: Table, parent: str) -> DataLoader[PageKey, list[Row[Any]]]:
    async def load(keys: list[PageKey]) -> list[list[Row[Any]]]:
        groups: dict[PageSpec, list[int]] = defaultdict(list)
        for pid, spec in keys:
            groups[spec].append(pid)
        found: dict[PageKey, list[Row[Any]]] = {}
        for spec, ids in groups.items():
            rows = await ctx.read(
                partial(reads.pages_by_parent, table=table, parent=parent, parent_ids=ids, spec=spec)
            )
            found.update({(pid, spec): rows.get(pid, []) for pid in ids})
        return [found[k] for k in keys]

    return DataLoader(load_fn=load)


def _counts(ctx: Context, table: Table, parent: str) -> DataLoader[CountKey, int]:
    async def load(keys: list[CountKey]) -> list[int]:
        groups: dict[tuple[Cond, ...], list[int]] = defaultdict(list)
        for pid, where in keys:
            groups[where].append(pid)
        found: dict[CountKey, int] = {}
        for where, ids in groups.items():
            counts = await ctx.read(
                partial(reads.counts_by_parent, table=table, parent=parent, parent_ids=ids, where=where)
            )
            found.update({(pid, where): counts.get(pid, 0) for pid in ids})
        return [found[k] for k in keys]

    return DataLoader(load_fn=load)


def _by_number(ctx: Context, table: Table) -> DataLoader[str, Row[Any] | None]:
    visible = _visible(ctx, table)

    async def load(numbers: list[str]) -> list[Row[Any] | None]:
        found = await ctx.read(lambda conn: reads.rows_by_column(conn, table, "number", numbers))
        return [row if (row := found.get(n)) is not None and visible(row) else None for n in numbers]

    return DataLoader(load_fn=load)


class _Lazy(Generic[L]):
    """A loader made on its first use in a request: a request uses a few of the ~50 relations."""

    def __init__(self, make: Callable[[Context], L]) -> None:
        self.make = make

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, loaders: Loaders, owner: type | None = None) -> L:
        loader = self.make(loaders.ctx)
        loaders.__dict__[self.name] = loader  # later reads find the attribute, not the descriptor
        for key, value in loaders.waiting.pop(self.name, ()):
            loader.prime(key, value)
        return loader


TAX: tuple[Cond, ...] = (("kind", "=", "TAX"),)


class Loaders:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        # loader name -> (key, value) pairs it answers without loading, given before it was made
        self.waiting: dict[str, list[tuple[Any, Any]]] = {}

    def prime(self, name: str, key: Any, value: Any) -> None:
        """Loader ``name`` answers ``value`` for ``key`` without loading it: at once if the request
        made it already, else when it is made (a mutation's payload rarely reads its rows again)."""
        made = self.__dict__.get(name)
        if made is not None:
            made.prime(key, value)
        else:
            self.waiting.setdefault(name, []).append((key, value))

    accounts_by_id = _Lazy(lambda c: _by_id(c, s.account_t))
    receivables_by_id = _Lazy(lambda c: _by_id(c, s.receivable_t))
    receivable_items_by_id = _Lazy(lambda c: _by_id(c, s.receivable_item_t))
    credit_memos_by_id = _Lazy(lambda c: _by_id(c, s.credit_memo_t))
    credit_memo_items_by_id = _Lazy(lambda c: _by_id(c, s.credit_memo_item_t))
    payments_by_id = _Lazy(lambda c: _by_id(c, s.payment_t))
    parts_by_id = _Lazy(lambda c: _by_id(c, s.part_t))
    item_parts_by_id = _Lazy(lambda c: _by_id(c, s.item_part_t))
    applications_by_id = _Lazy(lambda c: _by_id(c, s.application_t))
    jobs_by_id = _Lazy(lambda c: _by_id(c, s.job_t))
    files_by_id = _Lazy(lambda c: _by_id(c, s.file_t))
    accounts_by_number = _Lazy(lambda c: _by_number(c, s.account_t))
    receivables_by_number = _Lazy(lambda c: _by_number(c, s.receivable_t))
    credit_memos_by_number = _Lazy(lambda c: _by_number(c, s.credit_memo_t))
    payments_by_number = _Lazy(lambda c: _by_number(c, s.payment_t))

    taxation_items_by_receivable_item = _Lazy(lambda c: _lists(c, s.receivable_item_t, "parent_item_id", TAX))
    taxation_items_by_credit_memo_item = _Lazy(
        lambda c: _lists(c, s.credit_memo_item_t, "parent_item_id", TAX)
    )
    item_parts_by_part = _Lazy(lambda c: _lists(c, s.item_part_t, "part_id", POSITIVE))
    item_parts_by_credit_memo_item = _Lazy(
        lambda c: _lists(c, s.item_part_t, "credit_memo_item_id", POSITIVE)
    )
    pdfs_by_credit_memo = _Lazy(lambda c: _lists(c, s.pdf_t, "credit_memo_id", (), ("credit_memo_id",)))
    emails_by_credit_memo = _Lazy(lambda c: _lists(c, s.email_t, "credit_memo_id"))
    lines_by_application = _Lazy(lambda c: _lists(c, s.application_line_t, "application_id", (), ("seq",)))

    receivable_item_pages_by_receivable = _Lazy(lambda c: _pages(c, s.receivable_item_t, "receivable_id"))
    receivable_item_counts_by_receivable = _Lazy(lambda c: _counts(c, s.receivable_item_t, "receivable_id"))
    credit_memo_item_pages_by_memo = _Lazy(lambda c: _pages(c, s.credit_memo_item_t, "credit_memo_id"))
    credit_memo_item_counts_by_memo = _Lazy(lambda c: _counts(c, s.credit_memo_item_t, "credit_memo_id"))
    file_pages_by_credit_memo = _Lazy(lambda c: _pages(c, s.file_t, "credit_memo_id"))
    file_counts_by_credit_memo = _Lazy(lambda c: _counts(c, s.file_t, "credit_memo_id"))
    part_pages_by_credit_memo = _Lazy(lambda c: _pages(c, s.part_t, "credit_memo_id"))
    part_counts_by_credit_memo = _Lazy(lambda c: _counts(c, s.part_t, "credit_memo_id"))
    part_pages_by_payment = _Lazy(lambda c: _pages(c, s.part_t, "payment_id"))
    part_counts_by_payment = _Lazy(lambda c: _counts(c, s.part_t, "payment_id"))
    part_pages_by_target = _Lazy(lambda c: _pages(c, s.part_t, "target_id"))
    part_counts_by_target = _Lazy(lambda c: _counts(c, s.part_t, "target_id"))
    application_pages_by_credit_memo = _Lazy(lambda c: _pages(c, s.application_t, "credit_memo_id"))
    application_counts_by_credit_memo = _Lazy(lambda c: _counts(c, s.application_t, "credit_memo_id"))
    application_pages_by_payment = _Lazy(lambda c: _pages(c, s.application_t, "payment_id"))
    application_counts_by_payment = _Lazy(lambda c: _counts(c, s.application_t, "payment_id"))
    credit_memo_pages_by_account = _Lazy(lambda c: _pages(c, s.credit_memo_t, "account_id"))
    credit_memo_counts_by_account = _Lazy(lambda c: _counts(c, s.credit_memo_t, "account_id"))
    credit_memo_pages_by_referred_invoice = _Lazy(lambda c: _pages(c, s.credit_memo_t, "referred_invoice_id"))
    credit_memo_counts_by_referred_invoice = _Lazy(
        lambda c: _counts(c, s.credit_memo_t, "referred_invoice_id")
    )
    receivable_pages_by_account = _Lazy(lambda c: _pages(c, s.receivable_t, "account_id"))
    receivable_counts_by_account = _Lazy(lambda c: _counts(c, s.receivable_t, "account_id"))
    payment_pages_by_account = _Lazy(lambda c: _pages(c, s.payment_t, "account_id"))
    payment_counts_by_account = _Lazy(lambda c: _counts(c, s.payment_t, "account_id"))
