"""updateCreditMemo, bulkCreateCreditMemos, bulkUpdateCreditMemos, createTaxationItems."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from strawberry.types import Info

from gateway.ids import ref
from gateway.services import bulk
from gateway.services import documents as svc
from gateway.services import memo_edits as edits
from gateway.settlement.errors import Rejected
from gateway.settlement.memo_edits import ItemChange, NewTax
from resolvers.documents import account_ref, actor, mutate, new_items
from resolvers.relations import ctx
from schema import inputs as i
from schema import payloads as p
from schema.errors import user_error, user_errors


def _pk(raw: str, type_name: str) -> int | None:
    r = ref(raw, type_name)
    return r.pk if r.pk is not None and r.pk > 0 else None


def _changes(input: i.UpdateCreditMemoInput) -> edits.MemoUpdate:
    tta = input.transferred_to_accounting
    return edits.MemoUpdate(
        comment=input.comment,
        reason_code=input.reason_code,
        memo_date=input.memo_date,
        transferred_to_accounting=None if tta is None else tta.value,
        exclude_from_auto_apply_rules=input.exclude_from_auto_apply_rules,
        items=tuple(
            ItemChange(_pk(it.id, "CreditMemoItem"), it.id, it.amount, it.sku, it.description)
            for it in input.items or ()
        ),
    )


def _update(info: Info, input: i.UpdateCreditMemoInput) -> Awaitable[int]:
    return edits.update_credit_memo(ctx(info).db, ref=ref(input.id, "CreditMemo"), changes=_changes(input))


def create_memo(info: Info, input: i.CreateCreditMemoInput) -> Awaitable[int]:
    """createCreditMemo, and one entry of bulkCreateCreditMemos."""
    return svc.create_credit_memo(
        ctx(info).db,
        account=account_ref(input.account_id),
        memo_date=input.memo_date,
        items=new_items(input.items),
        post=input.post,
        reason_code=input.reason_code,
        comment=input.comment,
        actor=actor(info),
    )


async def memo_payload(info: Info, pk: int) -> p.CreditMemoPayload:
    from schema.mutation import by_ref_payload

    return await by_ref_payload(info, "CreditMemo", pk, p.CreditMemoPayload, "credit_memo")


async def update_credit_memo(self: Any, info: Info, input: i.UpdateCreditMemoInput) -> p.CreditMemoPayload:
    return await mutate(
        info,
        lambda: _update(info, input),
        lambda pk: memo_payload(info, pk),
        lambda errors: p.CreditMemoPayload(user_errors=errors),
    )


async def create_taxation_items(
    self: Any, info: Info, input: i.CreateTaxationItemsInput
) -> p.CreditMemoPayload:
    taxes = [
        NewTax(
            _pk(t.credit_memo_item_id, "CreditMemoItem"),
            t.credit_memo_item_id,
            t.amount,
            t.sku,
            t.description,
        )
        for t in input.taxation_items
    ]
    return await mutate(
        info,
        lambda: edits.create_taxation_items(
            ctx(info).db, ref=ref(input.credit_memo_id, "CreditMemo"), taxes=taxes
        ),
        lambda pk: memo_payload(info, pk),
        lambda errors: p.CreditMemoPayload(user_errors=errors),
    )


async def _bulk(
    info: Info, entries: list[Any], call: Callable[[Any], Awaitable[int]]
) -> p.BulkCreditMemosPayload:
    try:
        outcomes = await bulk.each(entries, call, limit=ctx(info).settings.limits.memos_per_bulk_request)
    except Rejected as rejected:
        return p.BulkCreditMemosPayload(user_errors=user_errors(rejected))
    await ctx(info).after_write()

    async def result(outcome: bulk.Outcome) -> p.CreditMemoResult:
        if isinstance(outcome, list):
            return p.CreditMemoResult(user_errors=[user_error(v) for v in outcome])
        return p.CreditMemoResult(credit_memo=(await memo_payload(info, outcome)).credit_memo)

    return p.BulkCreditMemosPayload(results=list(await asyncio.gather(*(result(o) for o in outcomes))))


async def bulk_create_credit_memos(
    self: Any, info: Info, input: i.BulkCreateCreditMemosInput
) -> p.BulkCreditMemosPayload:
    return await _bulk(info, input.memos, lambda entry: create_memo(info, entry))


async def bulk_update_credit_memos(
    self: Any, info: Info, input: i.BulkUpdateCreditMemosInput
) -> p.BulkCreditMemosPayload:
    return await _bulk(info, input.memos, lambda entry: _update(info, entry))
