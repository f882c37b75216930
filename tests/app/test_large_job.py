"""The 300,000-item job of the issue: a 1,000-item memo applied to 299 invoices of 1,000 items
completes, with its progress moving forward in small steps, and every invariant holds."""

from __future__ import annotations

from sqlalchemy import select

from benchmarks.jobs import INVOICES, ITEMS, build
from gateway import jobs
from gateway import store as s
from gateway.config import Settings
from gateway.db import Database
from gateway.events import job_channel
from tests.invariants import assert_invariants


async def test_a_300000_item_job_completes_with_progress(db: Database, settings: Settings) -> None:
    job_id = await build(db)
    async with db.connect() as conn:
        job = (await conn.execute(select(s.job_t).where(s.job_t.c.id == job_id))).one()
    assert (job.status, job.total_items) == ("PENDING", ITEMS * (INVOICES + 1))
    async with db.bus.listen(job_channel(job_id)) as queue:
        assert await jobs.Worker(db, settings).run_once() is True
        steps = [queue.get_nowait() for _ in range(queue.qsize())]
    async with db.connect() as conn:
        job = (await conn.execute(select(s.job_t).where(s.job_t.c.id == job_id))).one()
        applied = await conn.scalar(
            select(s.credit_memo_t.c.applied_amount).where(s.credit_memo_t.c.id == job.credit_memo_id)
        )
    assert (job.status, job.processed_items, applied) == ("COMPLETED", 300_000, 299_000_00)
    processed = [m["processed"] for m in steps if "processed" in m]
    assert processed == sorted(processed) and processed[-1] == 300_000
    assert len(set(processed)) >= 100  # at least every 1%: loading, then writing, advance chunk by chunk
    await assert_invariants(db)
