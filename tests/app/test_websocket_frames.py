"""Every WebSocket message of both protocols is a *text* frame: browsers' GraphiQL and the graphql-ws
npm client reject binary frames ("Message is missing the 'type' property"). websockets' ``recv``
returns ``str`` for a text frame and ``bytes`` for a binary one."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from benchmarks.common import Base, server
from gateway.config import Settings
from gateway.db import Database
from tests.app.test_subscriptions import APPLY_ASYNC, JOB, documents, post


async def receive(ws: ClientConnection, frames: list[str | bytes]) -> dict[str, Any]:
    frame = await asyncio.wait_for(ws.recv(), 20)
    frames.append(frame)
    return json.loads(frame)  # type: ignore[no-any-return]


async def finished_job(base: Base, ids: dict[str, str]) -> str:
    async with httpx.AsyncClient(timeout=30) as client:
        job = (await post(client, base, APPLY_ASYNC, m=ids["m"], i=ids["i"], amount="5.00"))[
            "applyCreditMemoAsync"
        ]["job"]
        for _ in range(400):
            state = await post(client, base, "query($id: ID!) { job(id: $id) { status } }", id=job["id"])
            if state["job"]["status"] == "COMPLETED":
                return str(job["id"])
            await asyncio.sleep(0.05)
    raise AssertionError("the job did not complete")


TRANSPORT_WS = [
    ({"type": "connection_init", "payload": "TOKEN"}, ["connection_ack"]),
    ({"type": "ping"}, ["pong"]),
    ({"id": "bad", "type": "subscribe", "payload": {"query": "subscription { nope }"}}, ["error"]),
    ({"id": "1", "type": "subscribe", "payload": {"query": JOB, "variables": "JOB"}}, ["next", "complete"]),
]
LEGACY_WS = [
    ({"type": "connection_init", "payload": "TOKEN"}, ["connection_ack"]),
    ({"id": "bad", "type": "start", "payload": {"query": "subscription { nope }"}}, ["error"]),
    ({"id": "1", "type": "start", "payload": {"query": JOB, "variables": "JOB"}}, ["data", "complete"]),
]


@pytest.mark.parametrize(
    ("protocol", "script"), [("graphql-transport-ws", TRANSPORT_WS), ("graphql-ws", LEGACY_WS)]
)
async def test_every_message_is_a_text_frame(
    db: Database, settings: Settings, protocol: str, script: list[tuple[dict[str, Any], list[str]]]
) -> None:
    ids = await documents(db)
    async with server(settings.database_url, GATEWAY_WORKERS="1") as base:
        job = await finished_job(base, ids)
        frames: list[str | bytes] = []
        seen: list[str] = []
        async with connect(base.replace("http", "ws") + "/graphql", subprotocols=[protocol]) as ws:  # type: ignore[list-item]
            for message, expected in script:
                if message.get("payload") == "TOKEN":
                    message = {**message, "payload": {"Authorization": f"Bearer {base.token}"}}
                if isinstance(message.get("payload"), dict) and message["payload"].get("variables") == "JOB":
                    message = {**message, "payload": {"query": JOB, "variables": {"id": job}}}
                await ws.send(json.dumps(message))
                got = [(await receive(ws, frames))["type"] for _ in expected]
                assert got == expected
                seen += got
    assert frames and all(isinstance(frame, str) for frame in frames), [type(f) for f in frames]
    assert len(frames) == len(seen)


async def test_a_refused_legacy_connection_says_so_in_a_text_frame(db: Database, settings: Settings) -> None:
    async with (
        server(settings.database_url, GATEWAY_WORKERS="0") as base,
        connect(base.replace("http", "ws") + "/graphql", subprotocols=["graphql-ws"]) as ws,  # type: ignore[list-item]
    ):
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": "Bearer nope"}}))
        frame = await asyncio.wait_for(ws.recv(), 20)
    assert isinstance(frame, str)
    assert json.loads(frame)["type"] == "connection_error"
