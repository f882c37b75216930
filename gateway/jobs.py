"""Durable asynchronous apply / unapply jobs.

A job is a row, inserted PENDING by ``services.settlement.submission`` once what can be checked
up front passed.
Workers (in the gateway process, ``GATEWAY_WORKERS``, or ``settlement-gateway worker``) claim one with
a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's single writer serializes claims), renew
it by heartbeat, and run it in ONE transaction that also marks it COMPLETED: all or nothing, and a
job whose worker died (its lease expired) is claimed again. The completing transaction re-checks
that the lease is still this worker's, so a job is never applied twice.

Progress: on PostgreSQL it is written to the job row from a separate connection while the job's
transaction runs; on SQLite the writer lock forbids that, so progress is kept in this process and
published on the bus (subscribers on every instance see it; the row shows it when the job ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Row, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import idempotency
from gateway import store as s
from gateway.config import Settings
from gateway.db import Database
from gateway.events import job_channel
from gateway.observability import metrics
from gateway.outage import Backoff, is_unavailable
from gateway.services import settlement as st
from gateway.services.documents import Actor
from gateway.settlement import errors as e

log = logging.getLogger(__name__)
HAND_BACK_SECONDS = 5.0  # how long a stopping worker waits for its job to reach a progress step
# job id -> (processed, total) while this process runs it (SQLite cannot persist it mid-transaction)
LIVE: dict[int, tuple[int, int]] = {}
# The settlement service reports 0.6 once the job is loaded and computed; past it, rows are written.
WRITING_STARTS = 0.6
# How often a running job's processed_items is written to its row (PostgreSQL; readers in other
# processes see progress that is at most this old; subscribers get every step from the bus).
PROGRESS_WRITE_SECONDS = 0.25


def live_progress(job_id: int) -> int | None:
    """Items processed so far by a job this process is running, else None."""
    running = LIVE.get(job_id)
    return None if running is None else running[0]


def now() -> datetime:
    return datetime.now(UTC)


class Worker:
    def __init__(self, db: Database, settings: Settings, name: str | None = None) -> None:
        self.db = db
        self.settings = settings
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease = timedelta(seconds=settings.job_lease_seconds)
        self.stopping: asyncio.Event | None = None  # set: the running job gives up at its next step
        self._progress_written: dict[int, float] = {}  # job id → when its progress row was last written

    async def run_forever(self, stop: asyncio.Event) -> None:
        self.stopping = stop
        backoff = Backoff(cap=self.settings.worker_backoff_max_seconds)
        while not stop.is_set():
            try:
                ran = await self.run_once()
            except Exception as exc:  # noqa: BLE001 - a worker survives any one job
                if not is_unavailable(exc):
                    log.exception("worker %s: job run failed", self.name)
                    ran = False
                else:  # one line when the database goes, one when it is back; no traceback per poll
                    self.db.availability.lost(exc)
                    await backoff.wait(stop)
                    continue
            backoff.reset()
            self.db.availability.ok()
            if not ran:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.settings.job_poll_seconds)

    async def claim(self) -> Row[Any] | None:
        async def run(conn: AsyncConnection) -> Row[Any] | None:
            j = s.job_t
            claimable = or_(
                j.c.status == "PENDING", (j.c.status == "PROCESSING") & (j.c.lease_expires_at < now())
            )
            pick = select(j.c.id).where(claimable).order_by(j.c.id).limit(1)
            if conn.dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            job_id = await conn.scalar(pick)
            if job_id is None:
                return None
            stmt = (
                update(j)
                .where(j.c.id == job_id, claimable)
                .values(
                    status="PROCESSING",
                    lease_owner=self.name,
                    lease_expires_at=now() + self.lease,
                    started_at=now(),
                    attempts=j.c.attempts + 1,
                )
                .returning(*j.c)
            )
            return (await conn.execute(stmt)).first()

        return await self.db.write(run)

    async def run_once(self) -> bool:
        job = await self.claim()
        if job is None:
            return False
        log.info("worker %s runs job %s (attempt %s)", self.name, job.id, job.attempts)
        heartbeat = asyncio.create_task(self._heartbeat(job.id))
        try:
            await self._run(job)
        finally:
            heartbeat.cancel()
            LIVE.pop(job.id, None)
            self._progress_written.pop(job.id, None)
        return True

    async def _heartbeat(self, job_id: int) -> None:
        if self.db.is_sqlite:
            return  # the job's transaction holds the only write lock: nobody can claim meanwhile
        j = s.job_t
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            async with self.db.engine.begin() as conn:
                await conn.execute(
                    update(j)
                    .where(j.c.id == job_id, j.c.lease_owner == self.name)
                    .values(lease_expires_at=now() + self.lease)
                )

    async def _progress(self, job: Row[Any], fraction: float) -> None:
        if self.settings.test_job_hold_file and fraction > WRITING_STARTS:
            await _hold(Path(self.settings.test_job_hold_file), self.stopping)
        if self.stopping is not None and self.stopping.is_set():
            raise HandedBack(job.id)  # out through the transaction: rolled back like any failure
        done = min(job.total_items, int(job.total_items * fraction))
        metrics.JOB_ITEMS.inc(max(0, done - LIVE.get(job.id, (0, 0))[0]))
        LIVE[job.id] = (done, job.total_items)
        await self.db.bus.publish(job_channel(job.id), {"processed": done, "total": job.total_items})
        # The row's count is for readers in other processes (this one answers from LIVE): written at
        # most every PROGRESS_WRITE_SECONDS, not at every chunk (a transaction each: ~470 for a
        # 300,000-item job, about a second of it on PostgreSQL).
        clock = time.monotonic()
        if (
            not self.db.is_sqlite
            and clock - self._progress_written.get(job.id, -math.inf) >= PROGRESS_WRITE_SECONDS
        ):
            self._progress_written[job.id] = clock
            j = s.job_t
            async with self.db.engine.begin() as conn:
                await conn.execute(
                    update(j)
                    .where(j.c.id == job.id, j.c.lease_owner == self.name)
                    .values(processed_items=done)
                )

    async def _run(self, job: Row[Any]) -> None:
        # a settlement job never loads the PDF and e-mail machinery (a second of imports)
        settling = job.operation in st.OPERATIONS.values()
        if not settling and (handler := document_job_kinds().get(job.operation)) is not None:
            await self._run_document_job(job, handler)
            return
        request = orjson.loads(job.request)
        data = st.from_json(request["input"])
        actor = Actor(request.get("actor"))
        unapply = job.operation == "UNAPPLY_CREDIT_MEMO"
        j = s.job_t

        async def run(conn: AsyncConnection) -> None:
            outcome = await st.settle_in_job(
                conn,
                self.settings,
                data,
                unapply=unapply,
                actor=actor,
                progress=lambda f: self._progress(job, f),
            )
            done = await conn.execute(
                update(j)
                .where(j.c.id == job.id, j.c.lease_owner == self.name, j.c.status == "PROCESSING")
                .values(
                    status="COMPLETED",
                    application_id=outcome.application_id,
                    processed_items=job.total_items,
                    finished_at=now(),
                )
            )
            if done.rowcount != 1:
                raise LeaseLost(job.id)
            await idempotency.finish(conn, request.get("key"), {"job_id": job.id})

        try:
            await self.db.write(run)
        except HandedBack:
            log.info("worker %s stops job %s; its work was rolled back", self.name, job.id)
            return
        except LeaseLost:
            log.warning("worker %s lost the lease of job %s; its work was rolled back", self.name, job.id)
            return
        except e.Rejected as rejected:
            await self._fail(job, request, rejected.errors)
            return
        except Exception as exc:
            if is_unavailable(exc):
                raise  # not the job's fault: its lease expires and it runs again once the database is back
            log.exception("job %s failed unexpectedly", job.id)
            await self._fail(
                job, request, [e.InvalidValue("the job failed unexpectedly; nothing was written")]
            )
            return
        metrics.JOB_ITEMS.inc(max(0, job.total_items - LIVE.get(job.id, (0, 0))[0]))
        metrics.JOBS_FINISHED.labels("COMPLETED").inc()
        await self.db.bus.publish(job_channel(job.id), {"status": "COMPLETED"})

    async def _run_document_job(self, job: Row[Any], handler: DocumentJob) -> None:
        """PDF and email jobs: the handler writes its own results, memo by memo, and answers the
        problems it met (the job is then FAILED with them, else COMPLETED)."""
        request = orjson.loads(job.request)
        try:
            problems = await handler(self.db, self.settings, job, lambda f: self._progress(job, f))
        except Exception:
            log.exception("job %s failed unexpectedly", job.id)
            problems = [e.InvalidValue("the job failed unexpectedly")]
        if problems:
            await self._fail(job, request, problems)
            return
        j = s.job_t

        async def run(conn: AsyncConnection) -> None:
            done = await conn.execute(
                update(j)
                .where(j.c.id == job.id, j.c.lease_owner == self.name, j.c.status == "PROCESSING")
                .values(status="COMPLETED", processed_items=job.total_items, finished_at=now())
            )
            if done.rowcount != 1:
                raise LeaseLost(job.id)
            await idempotency.finish(conn, request.get("key"), {"job_id": job.id})

        try:
            await self.db.write(run)
        except LeaseLost:
            log.warning("worker %s lost the lease of job %s", self.name, job.id)
            return
        await self.db.bus.publish(job_channel(job.id), {"status": "COMPLETED"})

    async def _fail(self, job: Row[Any], request: dict[str, Any], errors: list[e.RuleViolation]) -> None:
        async def run(conn: AsyncConnection) -> None:
            await conn.execute(
                update(s.job_t)
                .where(s.job_t.c.id == job.id, s.job_t.c.lease_owner == self.name)
                .values(
                    status="FAILED",
                    errors=orjson.dumps([violation_json(v) for v in errors]).decode(),
                    finished_at=now(),
                )
            )
            await idempotency.finish(conn, request.get("key"), {"job_id": job.id})

        await self.db.write(run)
        metrics.JOBS_FINISHED.labels("FAILED").inc()
        await self.db.bus.publish(job_channel(job.id), {"status": "FAILED"})


DocumentJob = Callable[
    [Database, Settings, Row[Any], Callable[[float], Awaitable[None]]], Awaitable[list[e.RuleViolation]]
]


def document_job_kinds() -> dict[str, DocumentJob]:
    """Job kinds besides apply / unapply, by operation."""
    from gateway.services import emails, pdfs

    return {pdfs.OPERATION: pdfs.run_job, emails.OPERATION: emails.run_job}


def violation_json(v: e.RuleViolation) -> dict[str, Any]:
    """A failed job's error as stored in its row (the API adds the category when it reads it)."""
    limit = None
    if isinstance(v, e.LimitExceeded):
        limit = {
            "name": v.name.value,
            "max": v.max,
            "actual": v.actual,
            "remedies": [r.value for r in v.remedies],
        }
    return {"code": v.code.value, "message": v.message, "field": list(v.field) or None, "limit": limit}


class LeaseLost(Exception):
    pass


async def _hold(marker: Path, stopping: asyncio.Event | None) -> None:
    """Tests only (``test_job_hold_file``): say that the job is inside its transaction with rows
    written, then wait there until the worker is told to stop (or the process is killed)."""
    marker.touch()
    await (stopping or asyncio.Event()).wait()


class HandedBack(Exception):
    """The worker is stopping: the job's transaction rolls back and the job goes back to PENDING."""


@contextlib.asynccontextmanager
async def workers(
    db: Database, settings: Settings, count: int
) -> AsyncIterator[Callable[[], Awaitable[int]]]:
    """Run ``count`` workers in the background for the duration of the block. Yields ``hand_back``:
    stop them now, cancelling the jobs they run (their transactions roll back) and releasing their
    leases so that another worker claims them at once; returns how many jobs it handed back. It
    runs again, as a no-op, when the block ends."""
    stop = asyncio.Event()
    pool = [Worker(db, settings) for _ in range(count)]
    tasks = [asyncio.create_task(w.run_forever(stop)) for w in pool]
    handed: list[int] = []

    async def hand_back() -> int:
        if stop.is_set():
            return sum(handed)
        stop.set()  # a running job stops at its next progress step (a clean rollback) …
        if tasks:
            await asyncio.wait(tasks, timeout=HAND_BACK_SECONDS)
        for task in tasks:
            task.cancel()  # … or is cancelled
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        handed.append(await release_leases(db, [w.name for w in pool]))
        return handed[0]

    try:
        yield hand_back
    finally:
        await hand_back()


async def release_leases(db: Database, owners: list[str]) -> int:
    """PROCESSING jobs of these workers back to PENDING, nobody's (their work was rolled back)."""
    if not owners:
        return 0
    j = s.job_t

    async def run(conn: AsyncConnection) -> int:
        done = await conn.execute(
            update(j)
            .where(j.c.lease_owner.in_(owners), j.c.status == "PROCESSING")
            .values(status="PENDING", lease_owner=None, lease_expires_at=None)
        )
        return int(done.rowcount or 0)

    try:
        released = await db.write(run)
    except Exception as exc:  # noqa: BLE001 - the leases then expire by themselves
        log.warning(
            "could not hand jobs back (%s); their leases expire in %s s", exc, db.settings.job_lease_seconds
        )
        return 0
    if released:
        log.info("handed %d running job(s) back", released)
    return released
