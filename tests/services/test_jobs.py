"""Durable async jobs: validated up front, all or nothing, exactly once, taken over after a lease."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from gateway import jobs
from gateway import store as s
from gateway.config import Settings
from gateway.db import Database
from gateway.ids import encode, ref
from gateway.services import settlement as st
from gateway.settlement import errors as e
from gateway.settlement.limits import Limits
from tests import factories as f
from tests.invariants import assert_invariants, balances


def request(memo: int, targets: list[tuple[int, str]], key: str | None = None) -> st.SettleInput:
    return st.SettleInput(
        "CREDIT_MEMO",
        ref(encode("CreditMemo", memo), "CreditMemo"),
        tuple(
            st.TargetInput("INVOICE", ref(encode("Invoice", pk), "Invoice"), a, None, ("invoices", str(n)))
            for n, (pk, a) in enumerate(targets)
        ),
        f.DAY,
        "FIFO",
        key,
    )


async def job_row(db: Database, job_id: int):  # type: ignore[no-untyped-def]
    async with db.connect() as conn:
        return (await conn.execute(select(s.job_t).where(s.job_t.c.id == job_id))).one()


async def setup(db: Database) -> tuple[int, int, int]:
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("10.00", tax="1.00"), f.item("5.00"))
    memo = await f.credit_memo(db, acct, f.item("8.00"), f.item("2.00"))
    return acct, inv, memo


async def test_a_job_is_pending_then_completed_with_its_application(db: Database, settings: Settings) -> None:
    _, inv, memo = await setup(db)
    job_id = await st.submit(db, settings, request(memo, [(inv, "9.00")]), unapply=False)
    pending = await job_row(db, job_id)
    assert (pending.status, pending.total_items, pending.operation) == ("PENDING", 5, "APPLY_CREDIT_MEMO")
    assert await jobs.Worker(db, settings).run_once() is True
    done = await job_row(db, job_id)
    assert (done.status, done.processed_items, done.application_id is not None) == ("COMPLETED", 5, True)
    assert done.finished_at is not None and done.started_at is not None
    async with db.connect() as conn:
        memo_row = (await conn.execute(select(s.credit_memo_t).where(s.credit_memo_t.c.id == memo))).one()
    assert memo_row.applied_amount == 900
    assert await jobs.Worker(db, settings).run_once() is False  # nothing left: never applied twice
    await assert_invariants(db)


async def test_a_job_that_breaks_a_rule_fails_with_its_errors_and_writes_nothing(
    db: Database, settings: Settings
) -> None:
    acct, inv, memo = await setup(db)
    job_id = await st.submit(db, settings, request(memo, [(inv, "9.00")]), unapply=False)
    other = await f.invoice(db, acct, f.item("50.00"))
    await f.settle(db, settings, memo, [(other, "5.00")])  # meanwhile, the memo is half used elsewhere
    before = await balances(db)
    await jobs.Worker(db, settings).run_once()
    failed = await job_row(db, job_id)
    assert failed.status == "FAILED" and failed.application_id is None
    assert '"AMOUNT_EXCEEDS_UNAPPLIED"' in failed.errors
    assert await balances(db) == before
    await assert_invariants(db)


async def test_what_can_be_checked_up_front_is_refused_at_once(db: Database, settings: Settings) -> None:
    acct, inv, memo = await setup(db)
    draft = await f.invoice(db, acct, post=False)
    tiny = settings.replace(limits=Limits(async_total_items=4, async_invoices_per_request=1))
    with pytest.raises(e.Rejected) as caught:
        await st.submit(db, tiny, request(memo, [(inv, "1.001"), (draft, "1.00")]), unapply=False)
    codes = sorted((v.code.value, v.field) for v in caught.value.errors)
    assert ("AMOUNT_PRECISION", ("invoices", "0", "amount")) in codes
    assert ("INVALID_STATUS", ("invoices", "1")) in codes
    limits = {(v.name.value, v.max, v.actual) for v in caught.value.errors if isinstance(v, e.LimitExceeded)}
    assert limits == {("ASYNC_INVOICES_PER_REQUEST", 1, 2), ("ASYNC_TOTAL_ITEMS", 4, 6)}
    async with db.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(s.job_t)) == 0


async def test_an_idempotency_key_is_in_progress_until_the_job_ends_then_replays(
    db: Database, settings: Settings
) -> None:
    _, inv, memo = await setup(db)
    job_id = await st.submit(db, settings, request(memo, [(inv, "1.00")], key="job-1"), unapply=False)
    with pytest.raises(e.Rejected) as caught:
        await st.submit(db, settings, request(memo, [(inv, "1.00")], key="job-1"), unapply=False)
    assert [v.code.value for v in caught.value.errors] == ["IDEMPOTENCY_KEY_IN_PROGRESS"]
    await jobs.Worker(db, settings).run_once()
    assert await st.submit(db, settings, request(memo, [(inv, "1.00")], key="job-1"), unapply=False) == job_id


async def test_a_job_whose_lease_expired_is_taken_over_and_runs_once(
    db: Database, settings: Settings
) -> None:
    _, inv, memo = await setup(db)
    job_id = await st.submit(db, settings, request(memo, [(inv, "2.00")]), unapply=False)
    dead = jobs.Worker(db, settings, name="dead")
    claimed = await dead.claim()
    assert claimed is not None and claimed.lease_owner == "dead"
    assert await jobs.Worker(db, settings).claim() is None  # the lease holds
    async with db.connect(write=True) as conn:
        await conn.execute(update(s.job_t).values(lease_expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert await jobs.Worker(db, settings, name="alive").run_once() is True
    row = await job_row(db, job_id)
    assert (row.status, row.lease_owner, row.attempts) == ("COMPLETED", "alive", 2)
    await dead._run(claimed)  # the old worker wakes up: its lease is gone, its work rolls back
    async with db.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(s.application_t)) == 1
    await assert_invariants(db)


async def test_a_running_jobs_progress_row_is_written_at_most_every_quarter_second(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every step is published to subscribers; the row (for readers in other processes) is written
    at most every PROGRESS_WRITE_SECONDS, and the job's end writes the final count."""
    from sqlalchemy import event

    if db.is_sqlite:
        pytest.skip("PostgreSQL only: on SQLite the progress lives in the worker's process")
    _, inv, memo = await setup(db)
    job_id = await st.submit(db, settings, request(memo, [(inv, "9.00")]), unapply=False)
    worker = jobs.Worker(db, settings)
    worker.name = "progress-test"
    job = await job_row(db, job_id)
    async with db.engine.begin() as conn:
        await conn.execute(update(s.job_t).where(s.job_t.c.id == job_id).values(lease_owner=worker.name))
    writes: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.startswith("UPDATE job SET processed_items"):
            writes.append(statement)

    clock = [100.0]
    monkeypatch.setattr(jobs.time, "monotonic", lambda: clock[0])
    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        for step in range(1, 6):  # five steps within a quarter of a second: one write
            await worker._progress(job, step / 10)
        assert len(writes) == 1
        assert jobs.live_progress(job_id) == 2  # int(5 items × 0.5): every step is live
        clock[0] += jobs.PROGRESS_WRITE_SECONDS
        await worker._progress(job, 0.8)
        assert len(writes) == 2
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)
        jobs.LIVE.pop(job_id, None)
    assert (await job_row(db, job_id)).processed_items == 4
