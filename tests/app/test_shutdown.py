"""SIGTERM to a real server: it stops accepting, closes WebSockets with 1001, hands its running job
back (lease released, nothing applied), and still answers the request that was in flight."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from benchmarks.jobs import build
from benchmarks.processes import wait_until
from gateway import auth
from gateway import store as s
from gateway.db import Database
from gateway.jobs import Worker
from tests.outage import free_port


async def job_row(db: Database, job_id: int):  # type: ignore[no-untyped-def]
    async with db.connect() as conn:
        return (await conn.execute(select(s.job_t).where(s.job_t.c.id == job_id))).one()


async def test_sigterm_is_graceful(db: Database, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    token = await auth.create_token(db, name="ops", permissions=["admin"])
    hold = tmp_path / "inside-the-job"  # the worker holds its job there, rows written (test setting)
    port = free_port()
    log = tmp_path / "gateway.log"
    env = {
        **os.environ,
        "GATEWAY_DATABASE_URL": db.settings.database_url,
        "GATEWAY_WORKERS": "1",
        "GATEWAY_JOB_POLL_SECONDS": "0.02",
        "GATEWAY_LOG_FORMAT": "json",
        "GATEWAY_TEST_JOB_HOLD_FILE": str(hold),
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    ws = None
    reader = writer = None
    try:
        deadline = time.monotonic() + 30
        while reader is None:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
                await asyncio.sleep(0.05)
        assert writer is not None
        # this connection is surely accepted once it has had an answer
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: g\r\n\r\n")
        assert (await reader.readuntil(b'{"status":"ok"}')).startswith(b"HTTP/1.1 200")
        ws = await connect(f"ws://127.0.0.1:{port}/graphql", subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": "subscription { settlementEvents { cursor } }"},
                }
            )
        )
        # a request in flight: its headers and half its body sent
        body = json.dumps({"query": "query InFlight { accounts { totalCount } }"}).encode()
        writer.write(
            b"POST /graphql HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[:10]
        )
        await writer.drain()
        # a 61,000-item job, claimed by the server's worker
        job_id = await build(db, invoices=60)
        await wait_until(hold.exists, "the server's worker inside the job's transaction")
        stopping = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 20)
        assert ws.close_code == 1001
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)  # no longer accepting
        writer.write(body[10:])
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 20)  # the server closes after answering
        assert answer.startswith(b"HTTP/1.1 200")
        assert answer.endswith(
            b'{"data":{"accounts":{"totalCount":1}},"extensions":{"cost":{"requestedNodes":50,"maxCost":50000}}}'
        )
        assert await asyncio.to_thread(proc.wait, 30) == -signal.SIGTERM  # uvicorn re-raises it once done
        stopped = time.monotonic() - stopping
    finally:
        if writer is not None:
            writer.close()
        if ws is not None:
            await ws.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert stopped < 10
    job = await job_row(db, job_id)
    assert (job.status, job.lease_owner, job.application_id) == ("PENDING", None, None)
    async with db.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(s.application_t)) == 0
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert "handed 1 running job(s) back" in [line["event"] for line in lines]
    assert not [line for line in lines if line["level"] in ("error", "critical")], lines
    assert await Worker(db, db.settings).run_once() is True  # handed back: another worker takes it
    assert (await job_row(db, job_id)).status == "COMPLETED"


async def test_sigterm_to_a_worker_hands_its_job_back(db: Database, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    log = tmp_path / "worker.log"
    hold = tmp_path / "inside-the-job"  # the worker holds its job there, rows written (test setting)
    env = {
        **os.environ,
        "GATEWAY_DATABASE_URL": db.settings.database_url,
        "GATEWAY_JOB_POLL_SECONDS": "0.02",
        "GATEWAY_TEST_JOB_HOLD_FILE": str(hold),
    }
    job_id = await build(db, invoices=60)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "worker"],
            env={**env, "GATEWAY_LOG_FORMAT": "json"},
            stderr=out,
        )
    try:
        await wait_until(hold.exists, "the worker inside the job's transaction")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    job = await job_row(db, job_id)
    assert (job.status, job.lease_owner, job.application_id) == ("PENDING", None, None)
    events = [json.loads(line)["event"] for line in log.read_text().splitlines() if line.startswith("{")]
    assert "handed 1 running job(s) back" in events
