"""A worker process killed with SIGKILL in the middle of a large job: a new worker completes the
job exactly once and every invariant holds."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from benchmarks.data import DAY, items
from benchmarks.processes import running, wait_until
from gateway import store as s
from gateway.config import Settings
from gateway.db import Database
from gateway.ids import encode, ref
from gateway.services import documents as docs
from gateway.services import settlement as st
from tests.invariants import assert_invariants


def worker_env(url: str, **more: str) -> dict[str, str]:
    return {
        "GATEWAY_DATABASE_URL": url,
        "GATEWAY_JOB_LEASE_SECONDS": "2",
        "GATEWAY_JOB_POLL_SECONDS": "0.1",
        "GATEWAY_LOG_LEVEL": "WARNING",
        **more,
    }


async def status(db: Database, job_id: int) -> str:
    async with db.connect() as conn:
        return str(await conn.scalar(select(s.job_t.c.status).where(s.job_t.c.id == job_id)))


async def completed(db: Database, job_id: int) -> bool:
    return await status(db, job_id) == "COMPLETED"


async def test_sigkill_in_the_middle_of_a_job_then_a_new_worker_completes_it_once(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    acct = ref(encode("Account", await docs.create_account(db, name="Big", currency="USD")), "Account")
    invoices = [
        await docs.create_receivable(
            db,
            kind="INVOICE",
            account=acct,
            doc_date=DAY,
            due_date=None,
            items=items(1000, "1.00"),
            post=True,
        )
        for _ in range(12)
    ]
    memo = await docs.create_credit_memo(
        db, account=acct, memo_date=DAY, items=items(1000, "20.00"), post=True
    )
    data = st.SettleInput(
        "CREDIT_MEMO",
        ref(encode("CreditMemo", memo), "CreditMemo"),
        tuple(
            st.TargetInput(
                "INVOICE", ref(encode("Invoice", pk), "Invoice"), "800.00", None, ("invoices", str(n))
            )
            for n, pk in enumerate(invoices)
        ),
        DAY,
        "PRORATION",
    )
    job_id = await st.submit(db, settings, data, unapply=False)

    hold = tmp_path / "inside-the-transaction"
    with running(
        ["worker"], worker_env(settings.database_url, GATEWAY_TEST_JOB_HOLD_FILE=str(hold))
    ) as first:
        # The worker creates the file once it has written rows inside the job's transaction, then holds.
        await wait_until(hold.exists, "the first worker inside the job's transaction", process=first)
        assert await status(db, job_id) == "PROCESSING"
        first.kill()
    assert await status(db, job_id) == "PROCESSING"  # claimed, never completed
    async with db.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(s.application_t)) == 0
        assert await conn.scalar(select(func.sum(s.receivable_t.c.credit_memo_amount))) == 0
        assert await conn.scalar(select(func.count()).select_from(s.item_part_t)) == 0

    with running(["worker"], worker_env(settings.database_url)) as second:
        await wait_until(
            lambda: completed(db, job_id),
            "the second worker completing the job",
            deadline=180,
            process=second,
        )
    async with db.connect() as conn:
        job = (await conn.execute(select(s.job_t).where(s.job_t.c.id == job_id))).one()
        applications = await conn.scalar(select(func.count()).select_from(s.application_t))
        applied = await conn.scalar(
            select(s.credit_memo_t.c.applied_amount).where(s.credit_memo_t.c.id == memo)
        )
    assert (job.attempts, applications, applied) == (2, 1, 12 * 80000)
    await assert_invariants(db)
