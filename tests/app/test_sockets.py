"""WebSockets against a real server, on both databases: a revoked token's sockets close and run
nothing more; every operation reads a fresh snapshot; subscriptions hold no database connection
while idle (50 of them, and HTTP still answers within a second) and are limited per token and per
process; the rate limit covers WebSocket operations."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from benchmarks.common import Base, server
from gateway import auth
from gateway.config import Settings
from gateway.db import Database
from gateway.ids import encode
from tests import factories as f
from tests.app.test_security import counts
from tests.app.test_subscriptions import now_cursor, post

EVENTS = "subscription { settlementEvents { cursor kind account { number } } }"
EVENTS_AFTER = (
    "subscription($after: String) { settlementEvents(after: $after) { cursor kind account { number } } }"
)
COUNT = "{ accounts { totalCount } }"
CREATE = 'mutation { createAccount(input: {name: "late", currency: "USD"}) { account { id } userErrors { code } } }'
APPLY = """mutation($m: ID!, $i: ID!) { applyCreditMemo(input: {creditMemoId: $m,
  invoices: [{id: $i, amount: "1.00"}]}) { userErrors { code } } }"""


class Socket:
    """One graphql-transport-ws connection; operations by id."""

    ids = itertools.count(1)

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.pending: dict[str, list[dict[str, Any]]] = {}

    async def init(self, token: str) -> None:
        await self.ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        while json.loads(await self.ws.recv())["type"] != "connection_ack":
            pass

    async def start(self, query: str, **variables: Any) -> str:
        op = str(next(self.ids))
        self.pending[op] = []
        await self.ws.send(
            json.dumps({"id": op, "type": "subscribe", "payload": {"query": query, "variables": variables}})
        )
        return op

    async def first(self, ops: list[str], timeout: float = 20) -> tuple[str, dict[str, Any]]:
        """The first message of any of ``ops`` (operations of one socket run concurrently)."""
        async with asyncio.timeout(timeout):
            while not any(self.pending[op] for op in ops):
                message = json.loads(await self.ws.recv())
                if message.get("id") in self.pending and message["type"] in ("next", "error"):
                    self.pending[message["id"]].append(message)
        op = next(op for op in ops if self.pending[op])
        return op, self.pending[op].pop(0)

    async def result(self, op: str, timeout: float = 20) -> dict[str, Any]:
        """The next `next` or `error` message of ``op``."""
        return (await self.first([op], timeout))[1]

    async def run(self, query: str, **variables: Any) -> dict[str, Any]:
        return (await self.result(await self.start(query, **variables)))["payload"]  # type: ignore[no-any-return]

    async def closed(self, timeout: float = 10) -> int:
        """The close code, once the server closed the socket (fails after ``timeout``)."""
        async with asyncio.timeout(timeout):
            try:
                while True:
                    await self.ws.recv()
            except ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else -1


@contextlib.asynccontextmanager
async def socket(base: Base, token: str | None = None) -> AsyncIterator[Socket]:
    async with connect(
        base.replace("http", "ws") + "/graphql", subprotocols=["graphql-transport-ws"], max_queue=None
    ) as ws:  # type: ignore[list-item]
        s = Socket(ws)
        await s.init(token or base.token)
        yield s


async def world(db: Database) -> dict[str, str]:
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("1000.00"))
    memo = await f.credit_memo(db, acct, f.item("500.00"))
    return {"m": encode("CreditMemo", memo), "i": encode("Invoice", inv)}


async def http_post(base: Base, query: str, **variables: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as client:
        return await post(client, base, query, **variables)


async def event(ws: Socket, op: str, base: Base, ids: dict[str, str]) -> dict[str, Any]:
    """The next message of subscription ``op`` once settlement events happen: an event is made, and
    made again while none arrives (a subscription only sees events after it has started)."""
    while True:
        await http_post(base, APPLY, **ids)
        with contextlib.suppress(TimeoutError):
            return await ws.result(op, timeout=2)


async def test_a_revoked_token_runs_nothing_more_and_its_sockets_close(
    db: Database, settings: Settings
) -> None:
    ids = await world(db)
    doomed = await auth.create_token(db, name="doomed", permissions=["admin"])
    # The periodic check is far away: the check before each operation is what refuses here.
    async with server(settings.database_url, GATEWAY_WORKERS="0", GATEWAY_TOKEN_CHECK_SECONDS="600") as base:
        async with socket(base, doomed) as ws:
            events = await ws.start(EVENTS)
            assert (await ws.run(COUNT))["data"] == {"accounts": {"totalCount": 1}}  # live, authorized
            assert (await event(ws, events, base, ids))["payload"]["data"]["settlementEvents"][
                "kind"
            ] == "APPLIED"
            before = await counts(db)
            assert await auth.revoke_token(db, "doomed")
            with contextlib.suppress(ConnectionClosed):  # the server may close before it answers
                refused = await ws.run(CREATE)
                assert refused["data"]["createAccount"] == {
                    "account": None,
                    "userErrors": [{"code": "PERMISSION_DENIED"}],
                }
            assert await ws.closed() == 4403
        assert await counts(db) == before


async def test_an_idle_socket_of_a_revoked_token_closes_within_seconds(
    db: Database, settings: Settings
) -> None:
    doomed = await auth.create_token(db, name="doomed", permissions=["read"])
    env = {"GATEWAY_WORKERS": "0", "GATEWAY_TOKEN_CHECK_SECONDS": "0.2"}
    async with server(settings.database_url, **env) as base, socket(base, doomed) as ws:
        await ws.start(EVENTS)
        assert (await ws.run(COUNT))["data"] == {"accounts": {"totalCount": 0}}
        assert await auth.revoke_token(db, "doomed")
        assert await ws.closed(timeout=10) == 4403


async def test_every_operation_over_one_socket_reads_a_fresh_snapshot(
    db: Database, settings: Settings
) -> None:
    await f.account(db)
    async with server(settings.database_url, GATEWAY_WORKERS="0") as base, socket(base) as ws:
        assert (await ws.run(COUNT))["data"] == {"accounts": {"totalCount": 1}}
        await http_post(base, CREATE)
        assert (await ws.run(COUNT))["data"] == {"accounts": {"totalCount": 2}}


async def test_fifty_idle_subscriptions_leave_http_answering_within_a_second(
    db: Database, settings: Settings
) -> None:
    ids = await world(db)
    env = {"GATEWAY_WORKERS": "0", "GATEWAY_MAX_SUBSCRIPTIONS_PER_TOKEN": "100"}
    async with server(settings.database_url, **env) as base, contextlib.AsyncExitStack() as stack:
        subs = [await stack.enter_async_context(socket(base)) for _ in range(50)]
        # From a cursor, not "from now on": graphql-transport-ws does not say when a subscription
        # has started, so one started without a cursor may begin after the apply and never see it.
        cursor = await now_cursor(db)
        ops = [await s.start(EVENTS_AFTER, after=cursor) for s in subs]
        await http_post(base, APPLY, **ids)
        # Every subscription is live and has resolved an event's fields (which read the database):
        # before, each then kept its connection while idle and the pool (30) ran dry.
        seen = await asyncio.gather(*(s.result(op, timeout=60) for s, op in zip(subs, ops, strict=True)))
        assert [m["payload"]["data"]["settlementEvents"]["account"] for m in seen] == [
            {"number": "A00000001"}
        ] * 50
        async with asyncio.timeout(1.0):  # a deadline on a state, not a measured sleep
            assert (await http_post(base, COUNT)) == {"accounts": {"totalCount": 1}}


def refusal(message: dict[str, Any]) -> dict[str, Any]:
    """The one error's extensions of a refused subscription (an `error`, or a `next` without data)."""
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    assert message["type"] == "error" or message["payload"]["data"] is None, message
    (error,) = errors
    extensions = dict(error["extensions"])
    assert extensions.pop("requestId"), error  # as on HTTP: every error carries the request id
    return extensions


async def test_subscriptions_are_limited_per_token_and_per_process(db: Database, settings: Settings) -> None:
    ids = await world(db)
    other = await auth.create_token(db, name="other", permissions=["read"])
    env = {
        "GATEWAY_WORKERS": "0",
        "GATEWAY_MAX_SUBSCRIPTIONS_PER_TOKEN": "2",
        "GATEWAY_MAX_SUBSCRIPTIONS": "3",
    }
    async with (
        server(settings.database_url, **env) as base,
        socket(base) as mine,
        socket(base, other) as theirs,
    ):
        # One socket's operations run concurrently: whichever comes third is refused.
        mine_ops = [await mine.start(EVENTS) for _ in range(3)]
        refused, message = await mine.first(mine_ops)
        assert refusal(message) == {
            "code": "TOO_MANY_SUBSCRIPTIONS",
            "category": "LIMIT_EXCEEDED",
            "limit": {"name": "SUBSCRIPTIONS_PER_TOKEN", "max": 2, "actual": 3},
        }
        live = [op for op in mine_ops if op != refused]
        _, message = await theirs.first([await theirs.start(EVENTS) for _ in range(2)])
        assert refusal(message)["limit"] == {"name": "SUBSCRIPTIONS", "max": 3, "actual": 4}
        # An ended subscription gives its slot back.
        await mine.ws.send(json.dumps({"id": live[0], "type": "complete"}))
        again = await mine.start(EVENTS)
        async with asyncio.timeout(30):
            while (message := await event(mine, again, base, ids))["payload"].get("data") is None:
                again = await mine.start(EVENTS)  # refused: the slot was not back yet
        assert message["payload"]["data"]["settlementEvents"]["kind"] == "APPLIED"


async def test_the_rate_limit_covers_websocket_operations(db: Database, settings: Settings) -> None:
    env = {"GATEWAY_WORKERS": "0", "GATEWAY_RATE_LIMIT_BURST": "3", "GATEWAY_RATE_LIMIT_PER_SECOND": "0.01"}
    async with server(settings.database_url, **env) as base, socket(base) as ws:
        answers = [await ws.run(COUNT) for _ in range(4)]
        assert [a.get("data") for a in answers[:3]] == [{"accounts": {"totalCount": 0}}] * 3
        (error,) = answers[3]["errors"]
        assert error["extensions"]["code"] == "THROTTLED" and answers[3].get("data") is None
