"""Reverse or write off a credit memo: a debit memo mirroring it, to which it is fully applied."""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import idempotency, ledger, postings
from gateway import store as s
from gateway.config import Settings
from gateway.db import Commits, Database
from gateway.ids import Ref
from gateway.services.documents import SYSTEM, Actor, today
from gateway.services.settlement.inputs import Outcome, memo_move_once
from gateway.settlement import engine
from gateway.settlement import errors as e
from gateway.settlement.documents import PlannedItem
from gateway.settlement.limits import check_reversal_counts
from gateway.settlement.model import CREDIT_MEMO, Movement, Settlement


async def reverse_or_write_off(
    db: Database,
    settings: Settings,
    *,
    memo: Ref,
    write_off: bool,
    memo_date: date | None,
    apply_date: date | None = None,
    reason_code: str | None = None,
    comment: str | None = None,
    idempotency_key: str | None = None,
    actor: Actor = SYSTEM,
    commits: Commits | None = None,
) -> Outcome:
    claim = idempotency.claim(
        idempotency_key,
        caller=actor.name or "",
        operation="write_off" if write_off else "reverse",
        request=[memo.raw, str(memo_date), str(apply_date), reason_code, comment],
    )

    async def move(conn: AsyncConnection) -> Outcome:
        source = await ledger.find_source(conn, CREDIT_MEMO, memo, ("creditMemoId",), lock=True)
        if not write_off and len(source.items) > settings.limits.reversal_items:
            raise e.Rejected(check_reversal_counts(limits=settings.limits, items=len(source.items)))
        if write_off:
            plan = engine.plan_write_off(source, today=today(), memo_date=memo_date, reason_code=reason_code)
        else:
            plan = engine.plan_reverse(
                source,
                limits=settings.limits,
                today=today(),
                memo_date=memo_date,
                apply_date=apply_date,
                reason_code=reason_code,
            )
        items = [
            PlannedItem(
                seq=n, kind=i.kind, parent_seq=i.parent_index, amount=i.amount, sku=None, description=None
            )
            for n, i in enumerate(plan.items)
        ]
        dm, item_ids = await s.insert_receivable(
            conn,
            kind="DEBIT_MEMO",
            account_id=source.account_id,
            currency=source.currency,
            doc_date=plan.memo_date,
            items=items,
            post=True,
            reason_code=plan.reason_code,
            comment=comment,
            referred_credit_memo_id=source.id,
        )
        moves = engine.merge(
            Movement(m.source_item_id, dm, item_ids[m.item_index], m.amount) for m in plan.movements
        )
        saved = await postings.save_settlement(
            conn,
            source=source,
            settlement=Settlement(None, moves, plan.amount, plan.apply_date),
            kind="WRITE_OFF" if write_off else "REVERSE",
            sign=1,
            created_by=actor.name,
            debit_memo_id=dm,
        )
        if not write_off:
            await s.set_values(conn, s.credit_memo_t, source.id, reversed=True)
        return Outcome(source.id, saved.application.id, dm)

    return await memo_move_once(db, claim, memo, move, commits)
