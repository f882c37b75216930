"""Asynchronous apply / unapply: what may be queued is checked at once (the rules of
``settlement.queueing`` and the async limits of ``settlement.counting``), then the job is inserted
PENDING in the same transaction; ``gateway.jobs`` runs it."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import idempotency, ledger
from gateway import store as s
from gateway.config import Settings
from gateway.db import Database
from gateway.services.documents import SYSTEM, Actor, today
from gateway.services.settlement.applying import check_apply_limits, check_unapply_limits
from gateway.services.settlement.inputs import SettleInput, apply_request, source_field, to_json
from gateway.settlement import counting
from gateway.settlement import errors as e
from gateway.settlement.queueing import check_queueable

OPERATIONS = {False: "APPLY_CREDIT_MEMO", True: "UNAPPLY_CREDIT_MEMO"}


async def submit(
    db: Database, settings: Settings, data: SettleInput, *, unapply: bool, actor: Actor = SYSTEM
) -> int:
    """Queue an apply or unapply of a credit memo; returns the job id."""
    operation = OPERATIONS[unapply]
    claim = idempotency.claim(
        data.idempotency_key, caller=actor.name or "", operation=operation, request=to_json(data)
    )

    async def queue(conn: AsyncConnection) -> int:
        memo_id, account_id, total = await validate(conn, settings, data, unapply=unapply)
        request = {"input": to_json(data), "actor": actor.name, "key": claim.key if claim else None}
        return await s.insert_row(
            conn,
            s.job_t,
            operation=operation,
            status="PENDING",
            account_id=account_id,
            credit_memo_id=memo_id,
            request=orjson.dumps(request).decode(),
            total_items=total,
            processed_items=0,
            created_by=actor.name,
            created_at=datetime.now(UTC),
        )

    return await idempotency.write_once(
        db,
        claim,
        queue,
        dump=lambda job_id: {"job_id": job_id},
        load=lambda remembered: int(remembered["job_id"]),
        status="IN_PROGRESS",
    )


async def validate(
    conn: AsyncConnection, settings: Settings, data: SettleInput, *, unapply: bool
) -> tuple[int, int, int]:
    """Every problem an async request can be refused for before it is queued, from headers and
    counts only. Returns (source id, account id, items the job will touch)."""
    field = source_field(data.source_kind)
    source = await ledger.find_source(conn, data.source_kind, data.source, field, lock=True, with_items=False)
    wanted = [(t.kind, t.ref, t.field) for t in data.targets]
    ids, problems, rows, _ = await ledger.resolve_targets(conn, wanted)
    request = apply_request(data, ids)
    if unapply and not data.targets:
        applied = await ledger.existing_item_parts(conn, data.source_kind, source.id, None)
        rows = await ledger.lock_targets(conn, {p.target_id for p in applied}, lock=False)
    targets = await ledger.load_targets(conn, rows, with_items=False)
    errors = problems + check_queueable(source, targets, request, today=today(), unapply=unapply)
    total = 0
    try:
        if unapply:
            total = await check_unapply_limits(
                conn, data, request, source.id, list(rows), settings, async_=True
            )
        else:
            memo_open, open_items = await check_apply_limits(
                conn, data, request, source, rows, settings, async_=True, exact=True
            )
            total = counting.apply_items_involved(request, memo_open_items=memo_open, open_items=open_items)
    except e.Rejected as rejected:
        errors += rejected.errors
    if errors:
        raise e.Rejected(errors)
    return source.id, source.account_id, total
