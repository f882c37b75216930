"""The npm ``graphql-ws`` client under Node, against a real server: one connection with the token in
``connectionParams`` follows an async apply through ``jobUpdated`` and ``settlementEvents``."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import httpx

from benchmarks.common import server
from gateway.config import Settings
from gateway.db import Database
from gateway.jobs import Worker
from tests.app.real_clients import CLIENTS, NODE_MODULES, need_node
from tests.app.test_subscriptions import APPLY_ASYNC, EVENTS, JOB, documents, post

LATEST = "query($a: ID) { settlementEvents(last: 1, accountId: $a) { pageInfo { endCursor } } }"


async def read_until(
    stdout: asyncio.StreamReader, lines: list[dict[str, Any]], done: Any, timeout: float = 30
) -> None:
    """Read the client's JSON lines into ``lines`` until ``done(line)``; fail after ``timeout``."""
    async with asyncio.timeout(timeout):
        while True:
            raw = await stdout.readline()
            assert raw, f"the node client ended early: {lines}"
            lines.append(json.loads(raw))
            assert "error" not in lines[-1] and "errors" not in lines[-1], lines
            if done(lines[-1]):
                return


async def test_graphql_ws_from_npm_follows_an_async_apply(db: Database, settings: Settings) -> None:
    node = need_node()
    ids = await documents(db)
    async with (
        server(settings.database_url, GATEWAY_WORKERS="0") as base,
        httpx.AsyncClient(timeout=30) as client,
    ):
        # the newest event's cursor: the subscription starts right after it, whatever the timing
        cursor = (await post(client, base, LATEST, a=ids["a"]))["settlementEvents"]["pageInfo"]["endCursor"]
        job = (await post(client, base, APPLY_ASYNC, m=ids["m"], i=ids["i"], amount="5.00"))[
            "applyCreditMemoAsync"
        ]["job"]
        assert job["status"] == "PENDING"
        specs = [
            {"name": "job", "query": JOB, "variables": {"id": job["id"]}},
            {"name": "events", "query": EVENTS, "variables": {"a": ids["a"], "after": cursor}, "count": 1},
        ]
        proc = await asyncio.create_subprocess_exec(
            node,
            str(CLIENTS / "subscribe.cjs"),
            base.replace("http", "ws") + "/graphql",
            base.token,
            json.dumps(specs),
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
        )
        try:
            assert proc.stdout is not None
            lines: list[dict[str, Any]] = []
            await read_until(proc.stdout, lines, lambda line: line.get("name") == "job")
            await Worker(db, settings).run_once()  # the job runs only once the client watches it
            await read_until(proc.stdout, lines, lambda line: line.get("done"))
            assert await asyncio.wait_for(proc.wait(), 10) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert lines[0] == {"connected": True}
    states = [line["data"]["jobUpdated"] for line in lines if line.get("name") == "job" and "data" in line]
    assert states[0]["status"] == "PENDING" and states[-1]["status"] == "COMPLETED"
    assert states[-1]["application"] == {"amount": "5.00"}
    assert states[-1]["progress"] == {"processedItems": 2, "totalItems": 2, "percent": 100.0}
    assert {"name": "job", "complete": True} in lines  # the server ended the job's subscription
    # unsubscribing after the expected event may make graphql-ws print a completion line too
    events = [
        line["data"]["settlementEvents"] for line in lines if line.get("name") == "events" and "data" in line
    ]
    assert [(e["kind"], e["application"]["amount"], e["account"]["number"]) for e in events] == [
        ("APPLIED", "5.00", "A00000001")
    ]
