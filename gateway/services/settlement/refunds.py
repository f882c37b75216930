"""Refund a credit memo: its unapplied amount leaves the memo, item by item (FIFO)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import idempotency, ledger, postings
from gateway.config import Settings
from gateway.db import Commits, Database
from gateway.ids import Ref
from gateway.services.documents import SYSTEM, Actor, today
from gateway.services.settlement.inputs import Outcome, memo_move_once
from gateway.settlement import engine
from gateway.settlement.model import CREDIT_MEMO


async def refund(
    db: Database,
    settings: Settings,
    *,
    memo: Ref,
    amount: Decimal | str,
    refund_date: date | None,
    method: str | None = None,
    idempotency_key: str | None = None,
    actor: Actor = SYSTEM,
    commits: Commits | None = None,
) -> Outcome:
    claim = idempotency.claim(
        idempotency_key,
        caller=actor.name or "",
        operation="refund",
        request=[memo.raw, str(amount), str(refund_date), method],
    )

    async def move(conn: AsyncConnection) -> Outcome:
        source = await ledger.find_source(conn, CREDIT_MEMO, memo, ("creditMemoId",), lock=True)
        result = engine.refund(source, amount, limits=settings.limits, today=today(), refund_date=refund_date)  # type: ignore[arg-type]
        application_id = await postings.save_refund(conn, source, result, created_by=actor.name)
        return Outcome(source.id, application_id)

    return await memo_move_once(db, claim, memo, move, commits)
