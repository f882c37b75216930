"""``scripts/bench jobs``: one asynchronous apply of 300,000 items — a 1,000-item memo applied to
299 invoices of 1,000 items — run by a fresh worker process: wall time and peak memory (the
process's maximum resident set size over its size before the job)."""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time

from benchmarks.common import database, label
from benchmarks.data import DAY, items
from gateway.config import Settings
from gateway.db import Database
from gateway.ids import encode, ref
from gateway.services import documents as docs
from gateway.services import settlement as st

INVOICES, ITEMS = 299, 1000


async def build(db: Database, invoices: int = INVOICES) -> int:
    """The documents and the PENDING job; returns the job id."""

    acct = ref(encode("Account", await docs.create_account(db, name="Large job", currency="USD")), "Account")
    pks = [
        await docs.create_receivable(
            db,
            kind="INVOICE",
            account=acct,
            doc_date=DAY,
            due_date=None,
            items=items(ITEMS, "1.00"),
            post=True,
        )
        for _ in range(invoices)
    ]
    # 500 charges of 597.00 with a 1.00 tax each: 299,000.00, exactly what 299 invoices of 1,000.00 need
    memo = await docs.create_credit_memo(
        db, account=acct, memo_date=DAY, items=items(ITEMS, f"{invoices * 2 - 1}.00"), post=True
    )
    data = st.SettleInput(
        "CREDIT_MEMO",
        ref(encode("CreditMemo", memo), "CreditMemo"),
        tuple(
            st.TargetInput(
                "INVOICE", ref(encode("Invoice", pk), "Invoice"), "1000.00", None, ("invoices", str(n))
            )
            for n, pk in enumerate(pks)
        ),
        DAY,
        "FIFO",
    )
    return await st.submit(db, db.settings, data, unapply=False)


def run_worker_once(url: str) -> tuple[float, float, str]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.jobs", url],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "GATEWAY_LOG_LEVEL": "WARNING"},
    )
    wall, peak, status = out.stdout.strip().splitlines()[-1].split()
    return float(wall), float(peak), status


async def _work(url: str) -> tuple[float, float, str]:
    from sqlalchemy import select

    from gateway import jobs
    from gateway import store as s
    from gateway.cli import tune_collector

    db = Database(Settings(database_url=url))
    tune_collector()  # as `settlement-gateway worker` does
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    await jobs.Worker(db, db.settings).run_once()
    wall = time.perf_counter() - start
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    async with db.connect() as conn:
        status = await conn.scalar(select(s.job_t.c.status).order_by(s.job_t.c.id.desc()).limit(1))
    await db.dispose()
    return wall, peak, str(status)


async def run(args: argparse.Namespace) -> None:
    print(
        f"jobs benchmark: a {ITEMS:,}-item memo applied to {INVOICES} invoices of {ITEMS:,} items "
        f"({ITEMS * (INVOICES + 1):,} items) by one worker process"
    )
    for pg in [None] + ([args.database_url] if args.database_url else []):
        async with database(pg) as url:
            db = Database(Settings(database_url=url))
            start = time.perf_counter()
            await build(db)
            built = time.perf_counter() - start
            await db.dispose()
            wall, peak, status = await asyncio.to_thread(run_worker_once, url)
            print(f"\n{label(url)}: documents built in {built:.1f} s")
            print(f"  job {status}: {wall:.1f} s wall, {peak:.0f} MiB peak RSS growth")


if __name__ == "__main__":
    w, p, st_ = asyncio.run(_work(sys.argv[1]))
    print(f"{w:.3f} {p:.1f} {st_}")
