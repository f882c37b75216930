"""Credit memo PDFs as jobs: ``submit`` records a GENERATE_CREDIT_MEMO_PDFS job and marks each memo's
PDF PENDING; a worker runs ``run_job``: per memo, read it, render it (gateway.pdf), store the file
and mark the PDF GENERATED (or FAILED, the other memos going on)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import store as s
from gateway.config import Settings
from gateway.db import Database
from gateway.files import FileStore, file_store
from gateway.ids import Ref
from gateway.pdf import Line, MemoDocument, Movement, render
from gateway.services import files
from gateway.services.documents import SYSTEM, Actor
from gateway.settlement import errors as e
from gateway.settlement.errors import Limit
from gateway.settlement.limits import exceeded

log = logging.getLogger(__name__)
OPERATION = "GENERATE_CREDIT_MEMO_PDFS"
FIELD = "creditMemoIds"


async def find_memos(conn: AsyncConnection, refs: Sequence[Ref]) -> list[Row[Any]]:
    """The memos named (each once, in the order given), or every NOT_FOUND at its index."""
    rows: dict[int, Row[Any]] = {}
    problems: list[e.RuleViolation] = []
    for n, r in enumerate(refs):
        try:
            row = await s.find(conn, s.credit_memo_t, r, "credit memo", field=(FIELD, str(n)))
            rows.setdefault(row.id, row)
        except e.Rejected as rejected:
            problems.extend(rejected.errors)
    if problems:
        raise e.Rejected(problems)
    return list(rows.values())


async def submit(db: Database, settings: Settings, *, memos: Sequence[Ref], actor: Actor = SYSTEM) -> int:
    if not memos:
        raise e.Rejected([e.NoItems("name at least one credit memo", field=(FIELD,))])
    if too_many := exceeded(
        Limit.DOCUMENTS_PER_REQUEST, settings.limits.documents_per_request, len(memos), field=(FIELD,)
    ):
        raise e.Rejected(too_many)

    async def run(conn: AsyncConnection) -> int:
        rows = await find_memos(conn, memos)
        request = {"memo_ids": [r.id for r in rows], "actor": actor.name}
        job_id = await s.insert_job(
            conn,
            operation=OPERATION,
            memo=rows[0],
            request=orjson.dumps(request).decode(),
            total=len(rows),
            created_by=actor.name,
        )
        now = datetime.now(UTC)
        for row in rows:
            await s.set_pdf_state(conn, row.id, status="PENDING", job_id=job_id, error=None, updated_at=now)
        return job_id

    return await db.write(run)


async def load_document(conn: AsyncConnection, memo_id: int) -> MemoDocument:
    memo = (await conn.execute(select(s.credit_memo_t).where(s.credit_memo_t.c.id == memo_id))).one()
    acct = (await conn.execute(select(s.account_t).where(s.account_t.c.id == memo.account_id))).one()
    items = await s.memo_items(conn, memo_id)
    p, r, a = s.part_t, s.receivable_t, s.application_t
    parts = (
        await conn.execute(
            select(p.c.amount, r.c.number)
            .select_from(p.outerjoin(r, r.c.id == p.c.target_id))
            .where(p.c.credit_memo_id == memo_id, p.c.amount > 0)
            .order_by(p.c.id)
        )
    ).all()
    applications = (
        await conn.execute(
            select(a.c.kind, a.c.effective_date, a.c.amount)
            .where(a.c.credit_memo_id == memo_id)
            .order_by(a.c.id)
        )
    ).all()
    return MemoDocument(
        number=memo.number,
        status=memo.status,
        memo_date=s.as_date(memo.memo_date),
        currency=memo.currency,
        account_number=acct.number,
        account_name=acct.name,
        amount=memo.amount,
        tax_amount=memo.tax_amount,
        applied_amount=memo.applied_amount,
        unapplied_amount=memo.unapplied_amount,
        refund_amount=memo.refund_amount,
        reason_code=memo.reason_code,
        comment=memo.comment,
        lines=[Line(i.kind, i.sku, i.description, i.amount, i.parent_item_id is not None) for i in items],
        parts=[Movement(number or "Unapplied", None, amount) for amount, number in parts],
        applications=[Movement(kind, s.as_date(day), amount) for kind, day, amount in applications],
    )


async def render_memo(db: Database, memo_id: int) -> tuple[MemoDocument, bytes]:
    async with db.connect() as conn:
        doc = await load_document(conn, memo_id)
    return doc, render(doc)


async def run_job(
    db: Database, settings: Settings, job: Row[Any], progress: Callable[[float], Awaitable[None]]
) -> list[e.RuleViolation]:
    request = orjson.loads(job.request)
    memo_ids: list[int] = request["memo_ids"]
    actor = Actor(request.get("actor"))
    store = file_store(settings)
    problems: list[e.RuleViolation] = []
    for n, memo_id in enumerate(memo_ids):
        try:
            await _generate(db, store, job.id, memo_id, actor)
        except Exception as exc:  # noqa: BLE001 - one memo's failure is recorded; the others go on
            log.exception("PDF of credit memo %s failed in job %s", memo_id, job.id)
            message = f"the PDF of credit memo {memo_id} could not be generated: {type(exc).__name__}"
            await db.write(_failed(memo_id, job.id, message))
            problems.append(e.InvalidValue(message, field=(FIELD, str(n))))
        await progress((n + 1) / len(memo_ids))
    return problems


async def _generate(db: Database, store: FileStore, job_id: int, memo_id: int, actor: Actor) -> int:
    doc, data = await render_memo(db, memo_id)

    async def save(conn: AsyncConnection, key: str) -> int:
        memo = (await conn.execute(select(s.credit_memo_t).where(s.credit_memo_t.c.id == memo_id))).one()
        file_id = await files.insert_file(
            conn,
            memo,
            kind="PDF",
            name=f"{doc.number}.pdf",
            content_type="application/pdf",
            data=data,
            key=key,
            actor=actor,
        )
        await _mark(conn, memo_id, job_id, status="GENERATED", file_id=file_id, error=None)
        return file_id

    return await files.stored(db, store, data, save)


def _failed(memo_id: int, job_id: int, message: str) -> Callable[[AsyncConnection], Awaitable[None]]:
    return lambda conn: _mark(conn, memo_id, job_id, status="FAILED", error=message)


async def _mark(conn: AsyncConnection, memo_id: int, job_id: int, **values: Any) -> None:
    """Record the outcome unless a later request took the memo's PDF over meanwhile."""
    t = s.pdf_t
    await conn.execute(
        update(t)
        .where(t.c.credit_memo_id == memo_id, t.c.job_id == job_id)
        .values(updated_at=datetime.now(UTC), **values)
    )
