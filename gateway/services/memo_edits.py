"""Editing a credit memo: its header and items (updateCreditMemo) and taxation items added to a
DRAFT memo's charges (createTaxationItems). One transaction each, the memo locked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import store as s
from gateway.db import Database
from gateway.ids import Ref
from gateway.settlement import errors as e
from gateway.settlement import memo_edits as rules
from gateway.settlement.memo_edits import ExistingItem, ItemChange, NewTax


@dataclass(frozen=True, slots=True)
class MemoUpdate:
    """What an update names; a None field is left as it is."""

    comment: str | None = None
    reason_code: str | None = None
    memo_date: date | None = None
    transferred_to_accounting: str | None = None
    exclude_from_auto_apply_rules: bool | None = None
    items: Sequence[ItemChange] = field(default_factory=tuple)

    def changed(self) -> list[str]:
        named = {
            "comment": self.comment,
            "reasonCode": self.reason_code,
            "memoDate": self.memo_date,
            "transferredToAccounting": self.transferred_to_accounting,
            "excludeFromAutoApplyRules": self.exclude_from_auto_apply_rules,
        }
        return [k for k, v in named.items() if v is not None] + (["items"] if self.items else [])


def _existing(rows: Sequence[Row[Any]]) -> list[ExistingItem]:
    return [ExistingItem(r.id, r.seq, r.kind, r.parent_item_id, r.amount, r.source_item_id) for r in rows]


async def update_credit_memo(db: Database, *, ref: Ref, changes: MemoUpdate) -> int:
    rules.check_transfer_state(changes.transferred_to_accounting)
    if not changes.changed():
        raise e.Rejected([e.InvalidValue("name at least one field to change", field=())])

    async def run(conn: AsyncConnection) -> int:
        memo = await s.find(conn, s.credit_memo_t, ref, "credit memo", lock=True)
        rules.check_update(memo.number, memo.status, changes.changed())
        header: dict[str, Any] = {
            "comment": changes.comment or None if changes.comment is not None else memo.comment,
            "reason_code": changes.reason_code or None
            if changes.reason_code is not None
            else memo.reason_code,
            "memo_date": changes.memo_date or memo.memo_date,
            "transferred_to_accounting": changes.transferred_to_accounting or memo.transferred_to_accounting,
        }
        if changes.exclude_from_auto_apply_rules is not None:
            header["exclude_from_auto_apply_rules"] = changes.exclude_from_auto_apply_rules
        await s.set_values(conn, s.credit_memo_t, memo.id, **header)
        if changes.items:
            await _change_items(conn, memo, changes.items)
        return int(memo.id)

    return await db.write(run)


async def _change_items(conn: AsyncConnection, memo: Row[Any], changes: Sequence[ItemChange]) -> None:
    existing = {i.id: i for i in _existing(await s.memo_items(conn, memo.id))}
    amounts = rules.plan_item_changes(existing, changes, memo.currency)
    problems: list[e.RuleViolation] = []
    for n, change in enumerate(changes):
        assert change.item_id is not None  # plan_item_changes refused unknown items
        item = existing[change.item_id]
        values: dict[str, Any] = {}
        if change.sku is not None:
            values["sku"] = change.sku or None
        if change.description is not None:
            values["description"] = change.description or None
        if change.item_id in amounts:
            new = amounts[change.item_id]
            values.update(amount=new, unapplied_amount=new)  # DRAFT: nothing applied yet
            if item.source_item_id is not None and new != item.amount:
                problem = await _recredit(
                    conn, item.source_item_id, new - item.amount, ("items", str(n), "amount")
                )
                problems.extend(problem)
        if values:
            await s.set_values(conn, s.credit_memo_item_t, item.id, **values)
    if problems:
        raise e.Rejected(problems)  # the transaction rolls back every change above
    await s.refresh_draft_totals(conn, memo.id)


async def _recredit(
    conn: AsyncConnection, invoice_item_id: int, delta: int, at: tuple[str, ...]
) -> list[e.RuleViolation]:
    """Move an invoice item's credited amount by ``delta``, within what it can still be credited."""
    t = s.receivable_item_t
    # The invoice first, as creating a memo from it locks it: whoever credits one invoice's items
    # waits for the one before, and reads what that one credited (not a stale amount to add to).
    invoice_id = (await conn.execute(select(t.c.receivable_id).where(t.c.id == invoice_item_id))).scalar_one()
    await s.lock_row(conn, s.receivable_t, invoice_id)
    row = await s.lock_row(conn, t, invoice_item_id)
    if row.credited_amount + delta > row.amount:
        room = row.amount - row.credited_amount
        return [
            e.ItemExceedsCreditable(
                f"the invoice item can be credited {room} more minor units, not {delta}",
                field=at,
                creditable=room,
            )
        ]
    await conn.execute(
        update(t).where(t.c.id == invoice_item_id).values(credited_amount=row.credited_amount + delta)
    )
    return []


async def create_taxation_items(db: Database, *, ref: Ref, taxes: Sequence[NewTax]) -> int:
    async def run(conn: AsyncConnection) -> int:
        memo = await s.find(conn, s.credit_memo_t, ref, "credit memo", field=("creditMemoId",), lock=True)
        if memo.status != "DRAFT":
            raise e.Rejected(
                [
                    e.InvalidStatus(
                        f"credit memo {memo.number} is {memo.status}; taxation items are added while DRAFT",
                        field=("creditMemoId",),
                    )
                ]
            )
        existing = _existing(await s.memo_items(conn, memo.id))
        amounts, order = rules.plan_taxation(existing, taxes, memo.currency)
        base = len(existing) + 1  # temporary seqs below every renumbered one (see resequence)
        new_ids = [
            await s.insert_row(
                conn,
                s.credit_memo_item_t,
                credit_memo_id=memo.id,
                seq=-(base + n),
                kind="TAX",
                parent_item_id=tax.parent_id,
                sku=tax.sku,
                description=tax.description,
                currency=memo.currency,
                amount=amounts[n],
                unapplied_amount=amounts[n],
            )
            for n, tax in enumerate(taxes)
        ]
        ids = [new_ids[int(x.split(":")[1])] if isinstance(x, str) else x for x in order]
        await s.resequence(conn, memo.id, ids)
        await s.refresh_draft_totals(conn, memo.id)
        return int(memo.id)

    return await db.write(run)
