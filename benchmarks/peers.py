"""``scripts/bench peers --database-url postgresql+asyncpg://…``: the read bench query against
PostGraphile 5 serving the same PostgreSQL tables, one server process each, over HTTP.

PostGraphile 5 (and the Node 22 it needs, from the npm package ``node@22``) is installed on first
use with npm into ``$XDG_CACHE_HOME/settlement-gateway/peers``. The bench checks that both servers
answer the same rows and amounts, then prints sequential latency (medians, measured in turn) and
throughput with 8 requests in flight (best-of-3 rounds, in turn), and the ratios."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import database, free_port, interleaved_ms, server, wait_until_up
from benchmarks.read import ITEMS, MEMOS, QUERY, populate
from gateway.config import Settings
from gateway.db import Database
from gateway.ids import decode

CONCURRENCY = 8
POSTGRAPHILE_QUERY = """
query Bench {
  allCreditMemos(first: 100, orderBy: PRIMARY_KEY_ASC) {
    nodes {
      rowId number amount unappliedAmount
      creditMemoItemsByCreditMemoId(first: 50, orderBy: PRIMARY_KEY_ASC) {
        nodes {
          rowId kind amount unappliedAmount
          itemPartsByCreditMemoItemId(orderBy: PRIMARY_KEY_ASC) {
            nodes { amount receivableItemByTargetItemId { rowId amount balance } }
          }
        }
      }
    }
  }
}
"""


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "settlement-gateway" / "peers"


def install() -> Path:
    """PostGraphile 5 and Node 22 from npm, once; the folder whose ``.bin`` holds both."""
    folder = cache_dir()
    bin_dir = folder / "node_modules" / ".bin"
    if (bin_dir / "postgraphile").exists() and (bin_dir / "node").exists():
        return bin_dir
    folder.mkdir(parents=True, exist_ok=True)
    # npm 11 runs no install script unless allowed: node@22's fetches the Node binary.
    (folder / "package.json").write_text(json.dumps({"private": True, "allowScripts": {"node": True}}))
    print(f"installing PostGraphile 5 and Node 22 with npm into {folder} …", flush=True)
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "node@22", "postgraphile@5"],
        cwd=folder,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return bin_dir


@contextlib.asynccontextmanager
async def postgraphile(bin_dir: Path, database_url: str) -> AsyncIterator[str]:
    port = free_port()
    connection = database_url.replace("postgresql+asyncpg://", "postgres://")
    proc = subprocess.Popen(
        [str(bin_dir / "postgraphile"), "-c", connection, "-s", "public"]
        + ["-p", str(port), "-n", "127.0.0.1", "-P", "postgraphile/presets/amber"],
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}", "GRAPHILE_ENV": "production"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        await wait_until_up(
            lambda client: client.post(url, json={"query": "{ __typename }"}), "PostGraphile", 60
        )
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _minor(amount: str) -> int:
    return int(Decimal(amount).scaleb(2))  # the bench data is in USD


def ours(body: Any) -> list[Any]:
    """The gateway's answer as (memo pk, number, minor amounts, items …) tuples."""
    return [
        (
            decode(m["id"])[1],  # type: ignore[index]
            m["number"],
            _minor(m["amount"]),
            _minor(m["unappliedAmount"]),
            [
                (
                    decode(i["id"])[1],  # type: ignore[index]
                    i["kind"],
                    _minor(i["amount"]),
                    _minor(i["unappliedAmount"]),
                    [
                        (
                            _minor(p["amount"]),
                            decode(p["targetItem"]["id"])[1],  # type: ignore[index]
                            _minor(p["targetItem"]["amount"]),
                            _minor(p["targetItem"]["balance"]),
                        )
                        for p in i["itemParts"]
                    ],
                )
                for i in m["items"]["nodes"]
            ],
        )
        for m in body["data"]["creditMemos"]["nodes"]
    ]


def theirs(body: Any) -> list[Any]:
    """PostGraphile's answer in the same shape (its amounts are the columns' minor units)."""
    return [
        (
            m["rowId"],
            m["number"],
            int(m["amount"]),
            int(m["unappliedAmount"]),
            [
                (
                    i["rowId"],
                    i["kind"],
                    int(i["amount"]),
                    int(i["unappliedAmount"]),
                    [
                        (
                            int(p["amount"]),
                            p["receivableItemByTargetItemId"]["rowId"],
                            int(p["receivableItemByTargetItemId"]["amount"]),
                            int(p["receivableItemByTargetItemId"]["balance"]),
                        )
                        for p in i["itemPartsByCreditMemoItemId"]["nodes"]
                        if int(p["amount"]) > 0  # the gateway lists positive item parts only
                    ],
                )
                for i in m["creditMemoItemsByCreditMemoId"]["nodes"]
            ],
        )
        for m in body["data"]["allCreditMemos"]["nodes"]
    ]


async def throughput(send: Callable[[], Awaitable[None]], requests_per_client: int) -> float:
    """Requests per second with ``CONCURRENCY`` clients, each sending its requests in turn."""

    async def client() -> None:
        for _ in range(requests_per_client):
            await send()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    return CONCURRENCY * requests_per_client / (time.perf_counter() - start)


async def run(args: argparse.Namespace) -> None:
    if not args.database_url or not args.database_url.startswith("postgresql"):
        raise SystemExit("scripts/bench peers needs --database-url postgresql+asyncpg://…")
    bin_dir = await asyncio.to_thread(install)
    print(
        f"peers benchmark: {MEMOS} memos x {ITEMS} items, the read bench query, PostgreSQL, one server "
        f"process each, over HTTP (a shared machine: expect noise)"
    )
    async with database(args.database_url) as url:
        db = Database(Settings(database_url=url, workers=0))
        await populate(db)
        await db.dispose()
        unlimited = {"GATEWAY_RATE_LIMIT_PER_SECOND": "1000000", "GATEWAY_RATE_LIMIT_BURST": "1000000"}
        async with (
            server(url, **unlimited) as base,
            postgraphile(bin_dir, url) as graphile_url,
            httpx.AsyncClient(timeout=120) as client,
        ):

            async def gateway() -> Any:
                r = await client.post(f"{base}/graphql", json={"query": QUERY}, headers=base.headers)
                r.raise_for_status()
                return r.json()

            async def graphile() -> Any:
                r = await client.post(graphile_url, json={"query": POSTGRAPHILE_QUERY})
                r.raise_for_status()
                return r.json()

            # PostGraphile orders items by key (it offers no order by seq), the gateway by seq: compare
            # each memo's items as a set
            mine, other = _by_key(ours(await gateway())), _by_key(theirs(await graphile()))
            if mine != other:
                first = next((i for i, (a, b) in enumerate(zip(mine, other, strict=False)) if a != b), None)
                detail = (mine[first], other[first]) if first is not None else (len(mine), len(other))
                raise AssertionError(f"the servers answer different rows or amounts: {detail}")
            values = sum(4 + sum(4 + 4 * len(i[4]) for i in m[4]) for m in mine)
            print(f"\nsame rows and amounts from both ({len(mine)} memos, {values:,} values compared)")
            latency = await interleaved_ms({"gateway": gateway, "postgraphile": graphile}, args.runs)
            rates: dict[str, list[float]] = {"gateway": [], "postgraphile": []}
            for _ in range(3):
                rates["gateway"].append(await throughput(gateway, 4))
                rates["postgraphile"].append(await throughput(graphile, 4))
        best = {name: max(r) for name, r in rates.items()}
        g, p = latency["gateway"], latency["postgraphile"]
        print(
            f"  sequential latency (median of {args.runs})   gateway {g:7.1f} ms   PostGraphile {p:7.1f} ms"
        )
        print(f"    PostGraphile / gateway: {p / g:.2f}")
        print(
            f"  throughput, {CONCURRENCY} in flight (best of 3)  gateway {best['gateway']:7.1f} /s   "
            f"PostGraphile {best['postgraphile']:7.1f} /s"
        )
        print(f"    gateway / PostGraphile: {best['gateway'] / best['postgraphile']:.2f}")
        print(f"  (all rounds: gateway {_fmt(rates['gateway'])}; PostGraphile {_fmt(rates['postgraphile'])})")


def _by_key(memos: list[Any]) -> list[Any]:
    return [(*m[:4], sorted(m[4])) for m in memos]


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values) + f" /s, median {statistics.median(values):.1f}"
