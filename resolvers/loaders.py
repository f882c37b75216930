"""Per-request DataLoaders, one per relation, named ``<things>_by_<key>``.

Each batch is one SQL statement (``gateway.reads``) and returns results in key order. Paged and
counted relations take ``(parent_id, PageSpec)`` / ``(parent_id, where)`` keys and group them by
spec, so siblings asking for the same page shape share one statement.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

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


class Loaders:
    def __init__(self, ctx: Context) -> None:
        self.accounts_by_id = _by_id(ctx, s.account_t)
        self.receivables_by_id = _by_id(ctx, s.receivable_t)
        self.receivable_items_by_id = _by_id(ctx, s.receivable_item_t)
        self.credit_memos_by_id = _by_id(ctx, s.credit_memo_t)
        self.credit_memo_items_by_id = _by_id(ctx, s.credit_memo_item_t)
        self.payments_by_id = _by_id(ctx, s.payment_t)
        self.parts_by_id = _by_id(ctx, s.part_t)
        self.item_parts_by_id = _by_id(ctx, s.item_part_t)
        self.applications_by_id = _by_id(ctx, s.application_t)
        self.jobs_by_id = _by_id(ctx, s.job_t)
        self.files_by_id = _by_id(ctx, s.file_t)
        self.accounts_by_number = _by_number(ctx, s.account_t)
        self.receivables_by_number = _by_number(ctx, s.receivable_t)
        self.credit_memos_by_number = _by_number(ctx, s.credit_memo_t)
        self.payments_by_number = _by_number(ctx, s.payment_t)

        tax: tuple[Cond, ...] = (("kind", "=", "TAX"),)
        self.taxation_items_by_receivable_item = _lists(ctx, s.receivable_item_t, "parent_item_id", tax)
        self.taxation_items_by_credit_memo_item = _lists(ctx, s.credit_memo_item_t, "parent_item_id", tax)
        self.item_parts_by_part = _lists(ctx, s.item_part_t, "part_id", POSITIVE)
        self.item_parts_by_credit_memo_item = _lists(ctx, s.item_part_t, "credit_memo_item_id", POSITIVE)
        self.pdfs_by_credit_memo = _lists(ctx, s.pdf_t, "credit_memo_id", (), ("credit_memo_id",))
        self.emails_by_credit_memo = _lists(ctx, s.email_t, "credit_memo_id")
        self.lines_by_application = _lists(ctx, s.application_line_t, "application_id", (), ("seq",))

        self.receivable_item_pages_by_receivable = _pages(ctx, s.receivable_item_t, "receivable_id")
        self.receivable_item_counts_by_receivable = _counts(ctx, s.receivable_item_t, "receivable_id")
        self.credit_memo_item_pages_by_memo = _pages(ctx, s.credit_memo_item_t, "credit_memo_id")
        self.credit_memo_item_counts_by_memo = _counts(ctx, s.credit_memo_item_t, "credit_memo_id")
        self.file_pages_by_credit_memo = _pages(ctx, s.file_t, "credit_memo_id")
        self.file_counts_by_credit_memo = _counts(ctx, s.file_t, "credit_memo_id")
        self.part_pages_by_credit_memo = _pages(ctx, s.part_t, "credit_memo_id")
        self.part_counts_by_credit_memo = _counts(ctx, s.part_t, "credit_memo_id")
        self.part_pages_by_payment = _pages(ctx, s.part_t, "payment_id")
        self.part_counts_by_payment = _counts(ctx, s.part_t, "payment_id")
        self.part_pages_by_target = _pages(ctx, s.part_t, "target_id")
        self.part_counts_by_target = _counts(ctx, s.part_t, "target_id")
        self.application_pages_by_credit_memo = _pages(ctx, s.application_t, "credit_memo_id")
        self.application_counts_by_credit_memo = _counts(ctx, s.application_t, "credit_memo_id")
        self.application_pages_by_payment = _pages(ctx, s.application_t, "payment_id")
        self.application_counts_by_payment = _counts(ctx, s.application_t, "payment_id")
        self.credit_memo_pages_by_account = _pages(ctx, s.credit_memo_t, "account_id")
        self.credit_memo_counts_by_account = _counts(ctx, s.credit_memo_t, "account_id")
        self.credit_memo_pages_by_referred_invoice = _pages(ctx, s.credit_memo_t, "referred_invoice_id")
        self.credit_memo_counts_by_referred_invoice = _counts(ctx, s.credit_memo_t, "referred_invoice_id")
        self.receivable_pages_by_account = _pages(ctx, s.receivable_t, "account_id")
        self.receivable_counts_by_account = _counts(ctx, s.receivable_t, "account_id")
        self.payment_pages_by_account = _pages(ctx, s.payment_t, "account_id")
        self.payment_counts_by_account = _counts(ctx, s.payment_t, "account_id")
