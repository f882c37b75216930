"""``scripts/bench read``: one nested read (memos → items → item parts → target items) through
GraphQL in process and over HTTP, against the floor: the same JSON from the fewest plain SQL
queries, serialized with orjson."""

from __future__ import annotations

import argparse
from collections import defaultdict
from typing import Any

import httpx
import orjson
from sqlalchemy import select

from benchmarks.common import database, label, median_ms, server
from gateway import store as s
from gateway.config import Settings
from gateway.context import ANONYMOUS_ADMIN, Context
from gateway.db import Database
from gateway.ids import encode
from gateway.settlement.money import format_minor
from schema.build import build_schema

MEMOS, ITEMS = 100, 20
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


async def populate(db: Database) -> None:
    from benchmarks.data import memos_applied_to_invoices

    await memos_applied_to_invoices(db, memos=MEMOS, items=ITEMS)


async def floor(db: Database) -> bytes:
    """The same response with three plain queries and orjson: what no GraphQL layer can beat."""
    async with db.connect() as conn:
        memos = (await conn.execute(select(s.credit_memo_t).order_by(s.credit_memo_t.c.id).limit(100))).all()
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


async def run(args: argparse.Namespace) -> None:
    urls = [None] + ([args.database_url] if args.database_url else [])
    print(
        f"read benchmark: {MEMOS} memos x {ITEMS} items, nested query memos → items → item parts → "
        f"target items; median of {args.runs} runs"
    )
    for pg in urls:
        async with database(pg) as url:
            settings = Settings(database_url=url, workers=0)
            db = Database(settings)
            await populate(db)
            schema = build_schema()

            async def in_process(
                db: Database = db, settings: Settings = settings, schema: Any = schema
            ) -> bytes:
                ctx = Context(db=db, settings=settings, principal=ANONYMOUS_ADMIN)
                try:
                    result = await schema.execute(QUERY, context_value=ctx)
                finally:
                    await ctx.close()
                assert result.errors is None, result.errors
                return orjson.dumps({"data": result.data})

            graphql_body = orjson.loads(await in_process())
            floor_body = orjson.loads(await floor(db))
            assert graphql_body == floor_body, "the floor must answer exactly what GraphQL answers"
            fields = _count_fields(graphql_body)
            t_floor = await median_ms(lambda db=db: floor(db), args.runs)
            t_proc = await median_ms(in_process, args.runs)
            async with (
                server(url) as base,
                httpx.AsyncClient(base_url=base, timeout=60, headers=base.headers) as client,
            ):

                async def over_http() -> None:
                    r = await client.post("/graphql", json={"query": QUERY})
                    r.raise_for_status()

                t_http = await median_ms(over_http, args.runs)
            await db.dispose()
            print(f"\n{label(url)}: {fields:,} values in the response")
            print(f"  plain SQL + orjson (floor)   {t_floor:8.1f} ms")
            print(f"  GraphQL in process           {t_proc:8.1f} ms   {t_proc / t_floor:5.1f}x the floor")
            print(f"  GraphQL over HTTP (uvicorn)  {t_http:8.1f} ms   {t_http / t_floor:5.1f}x the floor")
            print(f"  per resolved value           {1000 * t_proc / fields:8.2f} µs in process")


def _count_fields(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_count_fields(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count_fields(v) for v in value)
    return 1
