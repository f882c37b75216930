"""Two requests that would together over-apply never both succeed: one process, and two."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from gateway.config import Settings
from gateway.db import Database
from gateway.ids import encode
from tests import factories as f
from tests.invariants import assert_invariants

APPLY = """mutation($m: ID!, $i: ID!) {
  applyCreditMemo(input: {creditMemoId: $m, invoices: [{id: $i, amount: "1.00"}]}) {
    application { id } userErrors { code }
  }
}"""


async def ten_dollar_memo(db: Database) -> dict[str, str]:
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("100.00"))
    memo = await f.credit_memo(db, acct, f.item("10.00"))
    return {"m": encode("CreditMemo", memo), "i": encode("Invoice", inv)}


def outcome(body: dict) -> str:  # type: ignore[type-arg]
    payload = body["data"]["applyCreditMemo"]
    return "ok" if payload["application"] else payload["userErrors"][0]["code"]


async def test_fifty_concurrent_applies_of_one_dollar_at_ten_dollars(
    http: httpx.AsyncClient, db: Database
) -> None:
    variables = await ten_dollar_memo(db)
    responses = await asyncio.gather(
        *(http.post("/graphql", json={"query": APPLY, "variables": variables}) for _ in range(50))
    )
    counts = Counter(outcome(r.json()) for r in responses)
    assert counts == {"ok": 10, "AMOUNT_EXCEEDS_UNAPPLIED": 40}
    await assert_invariants(db)


async def test_two_server_processes_sharing_the_database(settings: Settings, db: Database) -> None:
    variables = await ten_dollar_memo(db)
    from benchmarks.common import server

    env = {"GATEWAY_WORKERS": "0"}
    async with (
        server(settings.database_url, **env) as one,
        server(settings.database_url, **env) as two,
        httpx.AsyncClient(timeout=120, headers=one.headers) as client,
    ):
        responses = await asyncio.gather(
            *(
                client.post(f"{base}/graphql", json={"query": APPLY, "variables": variables})
                for base in [one, two] * 25
            )
        )
    counts = Counter(outcome(r.json()) for r in responses)
    assert counts == {"ok": 10, "AMOUNT_EXCEEDS_UNAPPLIED": 40}
    await assert_invariants(db)
