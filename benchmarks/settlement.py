"""``scripts/bench settlement``: single-item applies per second through the HTTP app with 1 and 16
concurrent clients, and one synchronous apply at the TOTAL_ITEMS limit (a 1,000-item memo to 14
invoices of 1,000 items): its wall time and peak memory."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import tracemalloc
from decimal import Decimal

import httpx

from benchmarks.common import Base, database, label, server
from benchmarks.data import DAY, items
from gateway.config import Settings
from gateway.db import Database
from gateway.ids import encode, ref
from gateway.services import documents as svc
from gateway.services import settlement as st
from gateway.settlement.limits import Limits

APPLY = """mutation($m: ID!, $i: ID!) { applyCreditMemo(input: {creditMemoId: $m, applicationRule: FIFO,
  invoices: [{id: $i, amount: "0.01"}]}) { application { id } userErrors { code } } }"""
SECONDS = 5.0


async def rate(base: Base, variables: dict[str, str], clients: int) -> float:
    done = 0
    deadline = time.perf_counter() + SECONDS

    async def client() -> None:
        nonlocal done
        async with httpx.AsyncClient(base_url=base, timeout=60, headers=base.headers) as c:
            while time.perf_counter() < deadline:
                body = (await c.post("/graphql", json={"query": APPLY, "variables": variables})).json()
                assert body["data"]["applyCreditMemo"]["application"], body
                done += 1

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return done / (time.perf_counter() - start)


async def single_item_setup(db: Database) -> dict[str, str]:
    acct = ref(encode("Account", await svc.create_account(db, name="Bench", currency="USD")), "Account")
    inv = await svc.create_receivable(
        db, kind="INVOICE", account=acct, doc_date=DAY, due_date=None, items=items(1, "900000.00"), post=True
    )
    memo = await svc.create_credit_memo(
        db, account=acct, memo_date=DAY, items=items(1, "900000.00"), post=True
    )
    return {"m": encode("CreditMemo", memo), "i": encode("Invoice", inv)}


async def run(args: argparse.Namespace) -> None:
    print(
        f"settlement benchmark: single-item applies for {SECONDS:.0f} s per line, then one apply at TOTAL_ITEMS"
    )
    for pg in [None] + ([args.database_url] if args.database_url else []):
        async with database(pg) as url:
            db = Database(Settings(database_url=url))
            variables = await single_item_setup(db)
            await db.dispose()
            async with server(url, GATEWAY_WORKERS="0") as base:
                one = await rate(base, variables, 1)
                sixteen = await rate(base, variables, 16)
            wall, peak = await asyncio.to_thread(_limit_apply_in_a_process, url)
            print(f"\n{label(url)}")
            print(f"  single-item applies, 1 client      {one:8.1f} /s")
            print(f"  single-item applies, 16 clients    {sixteen:8.1f} /s")
            print(
                f"  apply at TOTAL_ITEMS (15,000)      {wall:8.2f} s wall, {peak:6.1f} MiB peak Python allocation"
            )


def _limit_apply_in_a_process(url: str) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.settlement", url],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ},
    )
    wall, peak = out.stdout.strip().splitlines()[-1].split()
    return float(wall), float(peak)


async def _limit_apply(url: str) -> tuple[float, float]:
    """One apply of a 1,000-item memo to 14 invoices of 1,000 items (1,000 + 14,000 = 15,000)."""
    db = Database(Settings(database_url=url))
    acct = ref(encode("Account", await svc.create_account(db, name="Limit", currency="USD")), "Account")
    invoices = [
        await svc.create_receivable(
            db,
            kind="INVOICE",
            account=acct,
            doc_date=DAY,
            due_date=None,
            items=items(1000, "1.00"),
            post=True,
        )
        for _ in range(14)
    ]
    memo = await svc.create_credit_memo(
        db, account=acct, memo_date=DAY, items=items(1000, "20.00"), post=True
    )
    # each invoice: 500 charges of 1.00 + 500 taxes of 1.00 = 1,000.00; the memo has 10,500.00
    targets = tuple(
        st.TargetInput(
            "INVOICE", ref(encode("Invoice", pk), "Invoice"), Decimal("700.00"), None, ("invoices", str(n))
        )
        for n, pk in enumerate(invoices)
    )
    data = st.SettleInput(
        "CREDIT_MEMO", ref(encode("CreditMemo", memo), "CreditMemo"), targets, DAY, "PRORATION"
    )
    start = time.perf_counter()
    await st.settle(db, db.settings, data, unapply=False)
    wall = time.perf_counter() - start
    # Memory is measured on a second, identical apply (tracemalloc slows the first one down):
    # give everything back, then apply again under tracemalloc and take its peak.
    everything = st.SettleInput("CREDIT_MEMO", data.source, (), DAY, None)
    # (9,800 item parts: over ITEM_PARTS_PER_UNAPPLY, which a synchronous unapply refuses by default)
    unlimited = db.settings.replace(limits=Limits(item_parts_per_unapply=10**6, total_items=10**6))
    await st.settle(db, unlimited, everything, unapply=True)
    tracemalloc.start()
    await st.settle(db, db.settings, data, unapply=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    await db.dispose()
    return wall, peak / 2**20


if __name__ == "__main__":
    w, p = asyncio.run(_limit_apply(sys.argv[1]))
    print(f"{w:.3f} {p:.1f}")
