"""``scripts/bench settlement``: single-item applies per second through the HTTP app with 1 and 16
concurrent clients (all on one memo, then each on its own), as a ratio of the same server's
``{ __typename }`` rate, with p99; the statements
of one apply and the floor (those statements replayed with the plain driver); and a synchronous
apply at the TOTAL_ITEMS limit (a 1,000-item memo to 14 invoices of 1,000 items), each the first
apply of a fresh process, three times: the median wall time and the peak memory."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import statistics
import subprocess
import sys
import time
import tracemalloc
from decimal import Decimal
from typing import Any, NamedTuple

import httpx
from sqlalchemy import event

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
TYPENAME = "{ __typename }"
SECONDS = 5.0
LIMIT_RUNS = 3
# One token drives every client: the default rate limit (50/s, burst 100 per token) would answer
# 429 long before the server is saturated, so the bench's server runs with a limit out of reach.
SERVER_ENV = {
    "GATEWAY_WORKERS": "0",
    "GATEWAY_RATE_LIMIT_PER_SECOND": "1000000",
    "GATEWAY_RATE_LIMIT_BURST": "1000000",
}


async def _drive(
    base: Base, query: str, variables: dict[str, str] | list[dict[str, str]], clients: int, seconds: float
) -> tuple[int, float, list[float]]:
    """``clients`` concurrent clients for ``seconds``: requests answered, elapsed, latencies (s).
    ``variables``: the same for every client, or one per client.

    Each client is created and its connection opened (an untimed ``{ __typename }``) before the
    clock starts, as a frontend's client lives longer than one request: otherwise the first
    request of each of 16 clients created at once (httpx's client set-up, 16 TCP connects) took
    ~0.2 s, 16 of ~2,000 requests, most of the p99."""
    latencies: list[float] = []
    each = variables if isinstance(variables, list) else [variables] * clients
    async with contextlib.AsyncExitStack() as stack:
        opened = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=base, timeout=60, headers=base.headers)
            )
            for _ in each[:clients]
        ]
        await asyncio.gather(*(c.post("/graphql", json={"query": TYPENAME}) for c in opened))
        deadline = time.perf_counter() + seconds

        async def client(c: httpx.AsyncClient, variables: dict[str, str]) -> None:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                r = await c.post("/graphql", json={"query": query, "variables": variables})
                latencies.append(time.perf_counter() - start)
                body = r.json()
                assert r.status_code == 200 and "errors" not in body, body
                if query is APPLY:
                    assert body["data"]["applyCreditMemo"]["application"], body

        start = time.perf_counter()
        await asyncio.gather(*(client(c, v) for c, v in zip(opened, each[:clients], strict=True)))
        return len(latencies), time.perf_counter() - start, latencies


def _p99_ms(latencies: list[float]) -> float:
    latencies = sorted(latencies)
    return 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]


async def rate(
    base: Base, query: str, variables: dict[str, str] | list[dict[str, str]], clients: int
) -> tuple[float, float]:
    """Requests per second and p99 latency (ms) of ``clients`` concurrent clients for SECONDS."""
    done, elapsed, latencies = await _drive(base, query, variables, clients, SECONDS)
    return done / elapsed, _p99_ms(latencies)


# The 1-client rates of ``{ __typename }`` and of the apply are measured in turn, a slice of each at a
# time, so that a neighbour that slows the machine for a while slows both alike: their ratio is the
# number that matters, and measured one after the other it moved by ±30% between runs.
SLICES = 5


class Measured(NamedTuple):
    rate: float  # requests per second
    p99_ms: float
    cpu_ms: float  # the server's CPU per request


async def one_client_rates(base: Base, queries: dict[str, tuple[str, dict[str, str]]]) -> dict[str, Measured]:
    """Each of ``queries`` (name: query, variables) by 1 client for SECONDS in all, in SLICES turns."""
    done = dict.fromkeys(queries, 0)
    elapsed = dict.fromkeys(queries, 0.0)
    cpu = dict.fromkeys(queries, 0.0)
    latencies: dict[str, list[float]] = {name: [] for name in queries}
    for _ in range(SLICES):
        for name, (query, variables) in queries.items():
            before = base.cpu_seconds()
            n, seconds, each = await _drive(base, query, variables, 1, SECONDS / SLICES)
            cpu[name] += base.cpu_seconds() - before
            done[name] += n
            elapsed[name] += seconds
            latencies[name].extend(each)
    return {
        name: Measured(done[name] / elapsed[name], _p99_ms(latencies[name]), 1000 * cpu[name] / done[name])
        for name in queries
    }


INF = float("inf")


async def served_within(base: Base) -> dict[float, float]:
    """The server's own histogram of mutation latencies (``/metrics``): requests answered within
    each bucket's bound, in seconds, so far. The client's p99 also holds the bench client's own
    queueing (16 clients in one process, on the same two cores as the server and the database)."""
    async with httpx.AsyncClient(base_url=base, timeout=60, headers=base.headers) as c:
        text = (await c.get("/metrics")).text
    counts: dict[float, float] = {}
    for line in text.splitlines():
        if (
            line.startswith("gateway_request_duration_seconds_bucket{")
            and 'operation_type="mutation"' in line
        ):
            labels, value = line.rsplit(" ", 1)
            le = labels.split('le="', 1)[1].split('"', 1)[0]
            bound = INF if le == "+Inf" else float(le)
            counts[bound] = counts.get(bound, 0.0) + float(value)
    return counts


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
        f"settlement benchmark: {SECONDS:.0f} s per rate (the 1-client rates of __typename and the apply"
        f" in {SLICES} alternating slices), one server process (rate limit lifted for its one token),"
        " then applies at TOTAL_ITEMS; numbers are noisy on a shared machine"
    )
    for pg in [None] + ([args.database_url] if args.database_url else []):
        async with database(pg) as url:
            db = Database(Settings(database_url=url))
            variables = await single_item_setup(db)
            apart = [await single_item_setup(db) for _ in range(16)]  # a memo and an invoice per client
            statements, captured = await statements_per_apply(db, variables)
            await db.dispose()
            async with server(url, **SERVER_ENV) as base:
                await rate(base, TYPENAME, {}, 1)  # warm up
                measured = await one_client_rates(base, {"t": (TYPENAME, {}), "a": (APPLY, variables)})
                (t1, _, cpu_t1), (one, p99_one, cpu_one) = measured["t"], measured["a"]
                t16, _ = await rate(base, TYPENAME, {}, 16)
                before = await served_within(base)
                sixteen, p99_sixteen = await rate(base, APPLY, variables, 16)
                between = await served_within(base)
                sixteen_apart, p99_apart = await rate(base, APPLY, apart, 16)
                after = await served_within(base)
                served = {le: n - before.get(le, 0) for le, n in between.items()}
                served_apart = {le: n - between.get(le, 0) for le, n in after.items()}
            floor_rate = await floor(url, captured)
            # each in a fresh process (its first apply: nothing compiled or cached yet); the median
            # of LIMIT_RUNS, since one run on a shared machine moves by ±30%
            runs = [await asyncio.to_thread(_limit_apply_in_a_process, url) for _ in range(LIMIT_RUNS)]
            wall, peak = statistics.median(w for w, _ in runs), max(p for _, p in runs)
            print(f"\n{label(url)}")
            print(f"  {{ __typename }}, 1 / 16 clients        {t1:8.1f} /s {t16:8.1f} /s")
            print(
                f"  single-item applies, 1 client         {one:8.1f} /s  = {one / t1:5.1%} of __typename"
                f"  p99 {p99_one:7.1f} ms"
            )
            print(
                f"  single-item applies, 16 clients       {sixteen:8.1f} /s  = {sixteen / t16:5.1%} of __typename"
                f"  p99 {p99_sixteen:7.1f} ms  ({sixteen / one:4.2f}x 1 client)"
            )
            print(
                f"  the same 16 clients, server-side        {served[0.1] / served[INF]:6.1%} answered within 100 ms,"
                f" {served[0.05] / served[INF]:6.1%} within 50 ms  (its own latency histogram, /metrics)"
            )
            print(
                f"  16 clients, each its own memo         {sixteen_apart:8.1f} /s  = {sixteen_apart / t16:5.1%} of __typename"
                f"  p99 {p99_apart:7.1f} ms  ({sixteen_apart / one:4.2f}x 1 client);"
                f" server-side {served_apart[0.1] / served_apart[INF]:6.1%} within 100 ms"
            )
            print(
                f"  the server's CPU per request, 1 client  {cpu_t1:6.2f} ms __typename,"
                f" {cpu_one:6.2f} ms apply  (busy {cpu_t1 * t1 / 1000:.0%} / {cpu_one * one / 1000:.0%}"
                " of a core: the rest of each request is the client's and the database's)"
            )
            print(f"  statements per single-item apply      {statements:8d}")
            print(
                f"  floor: the same transaction replayed  {floor_rate:8.1f} /s"
                f"  (plain {'asyncpg' if pg else 'sqlite3'}, one connection)"
            )
            print(
                f"  apply at TOTAL_ITEMS (15,000)         {wall:8.2f} s wall, {peak:6.1f} MiB peak Python allocation"
                f"  (median of {LIMIT_RUNS} fresh processes: {', '.join(f'{w:.2f}' for w, _ in runs)} s)"
            )


Captured = list[tuple[str, Any, bool]]


async def statements_per_apply(db: Database, variables: dict[str, str]) -> tuple[int, Captured]:
    """The statements of one single-item apply (after a first one), with their parameters."""
    data = st.SettleInput(
        "CREDIT_MEMO",
        ref(variables["m"], "CreditMemo"),
        (st.TargetInput("INVOICE", ref(variables["i"], "Invoice"), "0.01", None, ("invoices", "0")),),
        None,
        "FIFO",
    )
    await st.settle(db, db.settings, data, unapply=False)
    captured: Captured = []

    def record(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "PRAGMA")):
            captured.append((statement, parameters, executemany))

    event.listen(db.write_engine.sync_engine, "before_cursor_execute", record)
    try:
        await st.settle(db, db.settings, data, unapply=False)
    finally:
        event.remove(db.write_engine.sync_engine, "before_cursor_execute", record)
    return len(captured), captured


async def floor(url: str, captured: Captured) -> float:
    """The apply's own SQL, replayed as one transaction at a time for SECONDS with the plain driver
    in one connection: what the database costs, without our code."""
    if url.startswith("postgresql"):
        import asyncpg

        conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            done, deadline = 0, time.perf_counter() + SECONDS
            start = time.perf_counter()
            while time.perf_counter() < deadline:
                async with conn.transaction():
                    for statement, parameters, many in captured:
                        if many:
                            await conn.executemany(statement, parameters)
                        else:
                            await conn.fetch(statement, *parameters)
                done += 1
            return done / (time.perf_counter() - start)
        finally:
            await conn.close()
    return await asyncio.to_thread(_sqlite_floor, url.split("///", 1)[1], captured)


def _sqlite_floor(path: str, captured: Captured) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    try:
        done, deadline = 0, time.perf_counter() + SECONDS
        start = time.perf_counter()
        while time.perf_counter() < deadline:
            conn.execute("BEGIN IMMEDIATE")
            for statement, parameters, many in captured:
                if many:
                    conn.executemany(statement, parameters)
                else:
                    conn.execute(statement, parameters).fetchall()
            conn.execute("COMMIT")
            done += 1
        return done / (time.perf_counter() - start)
    finally:
        conn.close()


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
    from gateway.cli import tune_collector

    tune_collector()  # the collector as in a served process, where such an apply runs
    w, p = asyncio.run(_limit_apply(sys.argv[1]))
    print(f"{w:.3f} {p:.1f}")
