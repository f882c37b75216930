"""Subscriptions over real WebSockets against real uvicorn servers: graphql-transport-ws and the
older graphql-ws; durable settlement events resumed by cursor; job progress; two instances."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from websockets.asyncio.client import ClientConnection, connect

from benchmarks.common import Base, server
from benchmarks.data import DAY, items
from benchmarks.processes import wait_until
from gateway import store
from gateway.config import Settings
from gateway.db import Database
from gateway.ids import encode, ref
from gateway.services import documents as docs
from resolvers.subscriptions import event_cursor
from tests import factories as f

REDIS_URL = os.environ.get("GATEWAY_TEST_REDIS_URL")
EVENTS = """subscription($a: ID, $after: String) { settlementEvents(accountId: $a, after: $after) {
  cursor kind createdBy account { number } creditMemo { number } application { kind amount } } }"""
JOB = """subscription($id: ID!) { jobUpdated(id: $id) { status progress { processedItems totalItems percent }
  application { amount } } }"""
APPLY = """mutation($m: ID!, $i: ID!, $amount: Decimal!) { applyCreditMemo(input: {creditMemoId: $m,
  invoices: [{id: $i, amount: $amount}]}) { userErrors { code } } }"""
APPLY_ASYNC = """mutation($m: ID!, $i: ID!, $amount: Decimal!) { applyCreditMemoAsync(input: {creditMemoId: $m,
  invoices: [{id: $i, amount: $amount}]}) { job { id status } userErrors { code } } }"""


class Subscription:
    """One operation over one WebSocket, either protocol."""

    def __init__(self, ws: ClientConnection, protocol: str) -> None:
        self.ws, self.protocol = ws, protocol

    async def start(self, query: str, token: str, **variables: Any) -> None:
        await self.ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        while json.loads(await self.ws.recv())["type"] != "connection_ack":
            pass
        kind = "subscribe" if self.protocol == "graphql-transport-ws" else "start"
        await self.ws.send(
            json.dumps({"id": "1", "type": kind, "payload": {"query": query, "variables": variables}})
        )

    async def next(self, timeout: float = 20) -> dict[str, Any] | None:
        """The next result's data, or None when the server completed the operation."""
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if message["type"] in ("next", "data"):
                assert "errors" not in message["payload"], message
                return message["payload"]["data"]  # type: ignore[no-any-return]
            if message["type"] == "complete":
                return None
            assert message["type"] in ("ka", "ping", "pong"), message


@contextlib.asynccontextmanager
async def subscribe(base: Base, protocol: str, query: str, **variables: Any) -> AsyncIterator[Subscription]:
    async with connect(base.replace("http", "ws") + "/graphql", subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        sub = Subscription(ws, protocol)
        await sub.start(query, base.token, **variables)
        yield sub


async def documents(db: Database) -> dict[str, str]:
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("100.00"))
    memo = await f.credit_memo(db, acct, f.item("10.00"))
    return {"a": encode("Account", acct), "m": encode("CreditMemo", memo), "i": encode("Invoice", inv)}


async def now_cursor(db: Database) -> str:
    """The cursor of the newest event: a subscription from it sees exactly what happens next."""
    async with db.connect() as conn:
        return event_cursor(await conn.scalar(select(func.coalesce(func.max(store.event_t.c.id), 0))))


async def post(client: httpx.AsyncClient, base: Base, query: str, **variables: Any) -> dict[str, Any]:
    body = (
        await client.post(
            f"{base}/graphql", json={"query": query, "variables": variables}, headers=base.headers
        )
    ).json()
    assert "errors" not in body, body
    return body["data"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_live_settlement_events_then_resume_from_a_cursor(
    db: Database, settings: Settings, protocol: str
) -> None:
    ids = await documents(db)
    async with (
        server(settings.database_url, GATEWAY_WORKERS="0") as base,
        httpx.AsyncClient(timeout=30) as client,
    ):
        # From the cursor of the last event so far: every later event is delivered whether the
        # subscription is already waiting when it is written (live) or reads it when it starts.
        async with subscribe(base, protocol, EVENTS, a=ids["a"], after=await now_cursor(db)) as sub:
            for amount in ("1.00", "2.00", "3.00"):
                await post(client, base, APPLY, m=ids["m"], i=ids["i"], amount=amount)
            live = [(await sub.next())["settlementEvents"] for _ in range(3)]  # type: ignore[index]
        assert [(e["kind"], e["application"]["amount"]) for e in live] == [
            ("APPLIED", "1.00"),
            ("APPLIED", "2.00"),
            ("APPLIED", "3.00"),
        ]
        assert live[0]["account"] == {"number": "A00000001"} and live[0]["creditMemo"] == {
            "number": "CM00000001"
        }
        # a client that saw only the first event resumes from its cursor: the missed ones, in order,
        # then the live ones, no duplicate and no gap
        async with subscribe(base, protocol, EVENTS, a=ids["a"], after=live[0]["cursor"]) as resumed:
            missed = [(await resumed.next())["settlementEvents"] for _ in range(2)]  # type: ignore[index]
            await post(client, base, APPLY, m=ids["m"], i=ids["i"], amount="4.00")
            fresh = (await resumed.next())["settlementEvents"]  # type: ignore[index]
        assert [e["cursor"] for e in missed] == [e["cursor"] for e in live[1:]]
        assert fresh["application"]["amount"] == "4.00"


async def test_job_updates_until_completed_and_then_the_subscription_ends(
    db: Database, settings: Settings
) -> None:
    acct = ref(encode("Account", await docs.create_account(db, name="Jobs", currency="USD")), "Account")
    inv = await docs.create_receivable(
        db, kind="INVOICE", account=acct, doc_date=DAY, due_date=None, items=items(1000, "1.00"), post=True
    )
    memo = await docs.create_credit_memo(
        db, account=acct, memo_date=DAY, items=items(1000, "2.00"), post=True
    )
    async with (
        server(settings.database_url, GATEWAY_WORKERS="0") as base,
        httpx.AsyncClient(timeout=30) as client,
    ):
        job = (
            await post(
                client,
                base,
                APPLY_ASYNC,
                m=encode("CreditMemo", memo),
                i=encode("Invoice", inv),
                amount="900.00",
            )
        )["applyCreditMemoAsync"]
        assert job["userErrors"] == [] and job["job"]["status"] == "PENDING"
        async with subscribe(base, "graphql-transport-ws", JOB, id=job["job"]["id"]) as sub:
            first = (await sub.next())["jobUpdated"]  # type: ignore[index]
            assert first["status"] == "PENDING" and first["progress"]["totalItems"] == 2000
            from gateway.jobs import Worker

            runner = asyncio.create_task(Worker(db, settings).run_once())
            states = [first]
            while (data := await sub.next()) is not None:
                states.append(data["jobUpdated"])
            await runner
    assert states[-1]["status"] == "COMPLETED" and states[-1]["application"] == {"amount": "900.00"}
    assert states[-1]["progress"] == {"processedItems": 2000, "totalItems": 2000, "percent": 100.0}
    done = [s["progress"]["processedItems"] for s in states]
    assert done == sorted(done)  # progress only moves forward


async def test_a_finished_job_emits_once_and_ends(db: Database, settings: Settings) -> None:
    ids = await documents(db)
    async with (
        server(settings.database_url, GATEWAY_WORKERS="1") as base,
        httpx.AsyncClient(timeout=30) as client,
    ):
        job = (await post(client, base, APPLY_ASYNC, m=ids["m"], i=ids["i"], amount="5.00"))[
            "applyCreditMemoAsync"
        ]["job"]

        async def completed() -> bool:
            query = "query($id: ID!) { job(id: $id) { status } }"
            return (await post(client, base, query, id=job["id"]))["job"]["status"] == "COMPLETED"

        await wait_until(completed, "the job completing")
        async with subscribe(base, "graphql-ws", JOB, id=job["id"]) as sub:
            only = await sub.next()
            assert only is not None and only["jobUpdated"]["status"] == "COMPLETED"
            assert await sub.next() is None


async def test_two_instances_share_events_and_job_progress_through_redis(
    db: Database, settings: Settings
) -> None:
    if not REDIS_URL:
        pytest.skip("GATEWAY_TEST_REDIS_URL is not set: the fan-out between instances needs Redis")
    ids = await documents(db)
    async with (
        server(settings.database_url, GATEWAY_WORKERS="0", GATEWAY_REDIS_URL=REDIS_URL) as watcher,
        server(settings.database_url, GATEWAY_WORKERS="1", GATEWAY_REDIS_URL=REDIS_URL) as actor,
        httpx.AsyncClient(timeout=30) as client,
        subscribe(watcher, "graphql-transport-ws", EVENTS, a=ids["a"], after=await now_cursor(db)) as events,
    ):
        await post(client, actor, APPLY, m=ids["m"], i=ids["i"], amount="1.00")
        job = (await post(client, actor, APPLY_ASYNC, m=ids["m"], i=ids["i"], amount="2.00"))[
            "applyCreditMemoAsync"
        ]["job"]
        async with subscribe(watcher, "graphql-transport-ws", JOB, id=job["id"]) as progress:
            states = []
            while (data := await progress.next()) is not None:
                states.append(data["jobUpdated"]["status"])
        seen = [(await events.next(timeout=5))["settlementEvents"] for _ in range(2)]  # type: ignore[index]
    assert states[-1] == "COMPLETED"
    assert [(e["kind"], e["application"]["amount"]) for e in seen] == [
        ("APPLIED", "1.00"),
        ("APPLIED", "2.00"),
    ]


async def test_a_subscription_cancelled_as_a_bus_message_arrives_is_cancelled() -> None:
    """A client that vanishes while events are being published: the WebSocket handler cancels the
    subscription's task in the same turn as a message reaches its queue, and the task must end (on
    Python 3.11 ``asyncio.wait_for`` returned the message instead, and the subscription read on for
    nobody, its WebSocket's task never finishing)."""
    from resolvers.subscriptions import _next

    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    waiting = asyncio.create_task(_next(queue))
    for _ in range(100):  # loop turns until the task waits on the queue
        if queue._getters:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0)
    assert queue._getters, "the subscription's wait never reached the queue"  # type: ignore[attr-defined]
    queue.put_nowait({"kind": "APPLIED"})
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
