"""``scripts/bench read``: one nested read (memos → items → item parts → target items) against its
floor (the same JSON from the fewest plain SQL queries, serialized with orjson), through the planned
read path in process and over HTTP, and through graphql-core's standard executor in process; then
how the planned path grows with the rows returned (10, 100, 1,000 memos) and whether a small request
still answers while a big read is in flight."""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections import defaultdict
from functools import partial
from typing import Any

import httpx
import orjson
from sqlalchemy import select
from strawberry.extensions import ParserCache, ValidationCache

from benchmarks.common import database, interleaved_ms, label, server
from gateway import store as s
from gateway.config import Settings
from gateway.context import ANONYMOUS_ADMIN, Context
from gateway.db import Database
from gateway.ids import encode
from gateway.settlement.money import format_minor
from schema.build import build_schema
from schema.planner import PlannedReads

MEMOS, ITEMS, GROWTH = 100, 20, (10, 100, 1_000)
QUERY = """
query Bench {
  creditMemos(first: 100) {
    nodes {
      id number amount unappliedAmount
      items(first: 50) {
        nodes {
          id kind amount unappliedAmount
          itemParts { amount targetItem { __typename ... on InvoiceItem { id amount balance } } }
        }
      }
    }
  }
}
"""


async def populate(db: Database, memos: int = MEMOS) -> None:
    from benchmarks.data import memos_applied_to_invoices

    await memos_applied_to_invoices(db, memos=memos, items=ITEMS)


async def floor(db: Database, limit: int = MEMOS) -> bytes:
    """The same response with three plain queries and orjson: what no GraphQL layer can beat."""
    async with db.connect() as conn:
        memos = (
            await conn.execute(select(s.credit_memo_t).order_by(s.credit_memo_t.c.id).limit(limit))
        ).all()
        items = (
            await conn.execute(
                select(s.credit_memo_item_t)
                .where(s.credit_memo_item_t.c.credit_memo_id.in_([m.id for m in memos]))
                .order_by(s.credit_memo_item_t.c.credit_memo_id, s.credit_memo_item_t.c.seq)
            )
        ).all()
        ip, ti = s.item_part_t, s.receivable_item_t
        parts = (
            await conn.execute(
                select(
                    ip.c.credit_memo_item_id, ip.c.amount, ip.c.currency, ti.c.id, ti.c.amount, ti.c.balance
                )
                .join(ti, ti.c.id == ip.c.target_item_id)
                .where(ip.c.credit_memo_item_id.in_([i.id for i in items]), ip.c.amount > 0)
                .order_by(ip.c.id)
            )
        ).all()
    parts_by_item: dict[int, list[Any]] = defaultdict(list)
    for item_id, amount, cur, target_id, target_amount, balance in parts:
        parts_by_item[item_id].append(
            {
                "amount": format_minor(amount, cur),
                "targetItem": {
                    "__typename": "InvoiceItem",
                    "id": encode("InvoiceItem", target_id),
                    "amount": format_minor(target_amount, cur),
                    "balance": format_minor(balance, cur),
                },
            }
        )
    items_by_memo: dict[int, list[Any]] = defaultdict(list)
    for i in items:
        items_by_memo[i.credit_memo_id].append(
            {
                "id": encode("CreditMemoItem", i.id),
                "kind": i.kind,
                "amount": format_minor(i.amount, i.currency),
                "unappliedAmount": format_minor(i.unapplied_amount, i.currency),
                "itemParts": parts_by_item[i.id],
            }
        )
    nodes = [
        {
            "id": encode("CreditMemo", m.id),
            "number": m.number,
            "amount": format_minor(m.amount, m.currency),
            "unappliedAmount": format_minor(m.unapplied_amount, m.currency),
            "items": {"nodes": items_by_memo[m.id]},
        }
        for m in memos
    ]
    return orjson.dumps({"data": {"creditMemos": {"nodes": nodes}}})


def executor(db: Database, settings: Settings, planned: bool) -> Any:
    """An in-process executor of a query: the planned path or graphql-core's standard one."""
    caches = [lambda: ParserCache(maxsize=64), lambda: ValidationCache(maxsize=64)]
    schema = build_schema([*caches, PlannedReads] if planned else caches)

    async def execute(query: str = QUERY) -> bytes:
        ctx = Context(db=db, settings=settings, principal=ANONYMOUS_ADMIN)
        try:
            result = await schema.execute(query, context_value=ctx)
        finally:
            await ctx.close()
        assert result.errors is None, result.errors
        assert ctx.planned == planned, "the bench query must take the path it measures"
        return orjson.dumps({"data": result.data})

    return execute


async def run(args: argparse.Namespace) -> None:
    urls = [None] + ([args.database_url] if args.database_url else [])
    print(
        f"read benchmark: {MEMOS} memos x {ITEMS} items, nested query memos → items → item parts → "
        f"target items; median of {args.runs} runs (a shared machine: expect noise)"
    )
    for pg in urls:
        async with database(pg) as url:
            settings = Settings(database_url=url, workers=0)
            db = Database(settings)
            await populate(db)
            planned, standard = executor(db, settings, True), executor(db, settings, False)
            body = orjson.loads(await planned())
            assert body == orjson.loads(await standard()), "both paths must answer alike"
            assert body == orjson.loads(await floor(db)), "the floor must answer exactly what GraphQL answers"
            fields = _count_fields(body)
            t = await interleaved_ms(
                {
                    "floor": partial(floor, db),
                    "planned": planned,
                    "standard": standard,
                    "planned, untuned collector": planned,
                    "standard, untuned collector": standard,
                },
                args.runs,
                between=_collector,
            )
            _collector("")
            async with (
                server(url) as base,
                httpx.AsyncClient(base_url=base, timeout=120, headers=base.headers) as client,
            ):

                async def over_http(query: str = QUERY) -> None:
                    r = await client.post("/graphql", json={"query": query})
                    r.raise_for_status()

                rss_before = base.rss_kib()
                t.update(await interleaved_ms({"http": over_http}, args.runs))
                small = await _small_during_big(over_http)
                rss_after = [base.rss_kib()]
                for _ in range(5):  # memory under load: 40 more requests, 4 in flight, per sample
                    await asyncio.gather(*(_repeat(over_http, 10) for _ in range(4)))
                    rss_after.append(base.rss_kib())
            await db.dispose()
            floor_ms = t["floor"]
            print(f"\n{label(url)}: {fields:,} values in the response")
            print(f"  plain SQL + orjson (floor)            {floor_ms:8.1f} ms")
            _line("planned, in process", t["planned"], floor_ms)
            _line("planned, over HTTP (uvicorn)", t["http"], floor_ms)
            _line("standard executor, in process", t["standard"], floor_ms)
            print(
                f"  planned is {t['standard'] / t['planned']:.1f}x faster than the standard executor in process"
            )
            print(
                "  collector as Python sets it (gen0 700, nothing frozen): "
                f"planned {t['planned, untuned collector']:.1f} ms, "
                f"standard {t['standard, untuned collector']:.1f} ms"
            )
            print(f"  per value, planned in process         {1000 * t['planned'] / fields:8.2f} µs")
            print(
                f"  {{ __typename }} during a big read      {small[0]:8.1f} ms median, {small[1]:.1f} ms worst of 9"
            )
            samples = " → ".join(f"{kib / 1024:.0f}" for kib in [rss_before, *rss_after])
            print(f"  server RSS, then after each 40 more requests: {samples} MiB")
    await growth(args)


def _collector(name: str) -> None:
    """Before each measurement: the collector as ``serve`` tunes it, or as Python sets it."""
    gc.unfreeze()
    if "untuned" in name:
        gc.set_threshold(700, 10, 10)
    else:
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)


async def _repeat(fn: Any, times: int) -> None:
    for _ in range(times):
        await fn()


def _line(name: str, ms: float, floor_ms: float) -> None:
    print(f"  {name:<37} {ms:8.1f} ms   {ms / floor_ms:5.1f}x the floor")


async def _small_during_big(over_http: Any) -> tuple[float, float]:
    """The latency of ``{ __typename }`` sent while the big read runs on the same server
    (median and worst of 9)."""
    samples = []
    for _ in range(9):
        big = asyncio.create_task(over_http())
        await asyncio.sleep(0.01)  # the big request is under way (its latency is ~10× this)
        start = time.perf_counter()
        await over_http("{ __typename }")
        samples.append((time.perf_counter() - start) * 1000)
        await big
    return statistics.median(samples), max(samples)


async def growth(args: argparse.Namespace) -> None:
    """Planned path, SQLite, in process: time per value at 10, 100 and 1,000 memos, beside the floor's
    own time at the same sizes (the floor has a fixed cost per request too: its round trips)."""
    print(f"\nlinear growth (SQLite, planned, in process; {GROWTH[-1]:,} memos populated once):")
    async with database(None) as url:
        settings = Settings(database_url=url, workers=0, page_size_max=GROWTH[-1])
        db = Database(settings)
        await populate(db, GROWTH[-1])
        planned = executor(db, settings, True)
        queries = {n: QUERY.replace("first: 100", f"first: {n}") for n in GROWTH}
        fields = {n: _count_fields(orjson.loads(await planned(q))) for n, q in queries.items()}
        _collector("")  # as served
        t = await interleaved_ms(
            {
                **{str(n): partial(planned, q) for n, q in queries.items()},
                **{f"floor {n}": partial(floor, db, n) for n in GROWTH},
            },
            max(3, args.runs // 2),
        )
        gc.unfreeze()
        per_value, over_floor = {}, {}
        for n in GROWTH:
            ms, floor_ms = t[str(n)], t[f"floor {n}"]
            per_value[n] = 1000 * ms / fields[n]
            over_floor[n] = 1000 * (ms - floor_ms) / fields[n]
            print(
                f"  {n:>6,} memos  {fields[n]:>9,} values  {ms:8.1f} ms  {per_value[n]:6.2f} µs per value"
                f"  (floor {floor_ms:7.1f} ms, {1000 * floor_ms / fields[n]:5.2f} µs; planned − floor "
                f"{over_floor[n]:5.2f} µs per value)"
            )
        for name, series in (("planned", per_value), ("planned − floor", over_floor)):
            middle = statistics.median(series.values())
            spread = max(abs(v / middle - 1) for v in series.values())
            print(f"  {name}: largest deviation from the median time per value {100 * spread:.0f}%")
        a, b, c = GROWTH
        low = 1000 * (t[str(b)] - t[str(a)]) / (fields[b] - fields[a])
        high = 1000 * (t[str(c)] - t[str(b)]) / (fields[c] - fields[b])
        print(
            f"  marginal cost per value: {low:.2f} µs ({a:,}→{b:,} memos), {high:.2f} µs ({b:,}→{c:,}): "
            f"{100 * abs(high / low - 1):.0f}% apart (the rest is a fixed cost per request)"
        )
        await db.dispose()


def _count_fields(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_count_fields(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count_fields(v) for v in value)
    return 1
