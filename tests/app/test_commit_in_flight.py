"""PostgreSQL: a money move hands its result back once its ``COMMIT`` is on its way, and the payload
is built while the server commits (``Database.write(…, commits=…)``). Nothing is answered, and
nothing read, before that commit is done: a commit that fails answers an error and no data, with
nothing written; a later mutation of the same operation, and a payload field that reads, see the
move committed."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import func, select

from benchmarks.common import server
from gateway import auth
from gateway import store as s
from gateway.db import Commits, Database
from gateway.ids import encode
from gateway.settlement import errors as e
from tests import factories as f
from tests import postgres
from tests.app.test_sockets import socket
from tests.conftest import app_client
from tests.invariants import assert_invariants

APPLY = """mutation($m: ID!, $i: ID!, $key: String) {
  applyCreditMemo(input: {creditMemoId: $m, invoices: [{id: $i, amount: "1.00"}], idempotencyKey: $key}) {
    creditMemo { unappliedAmount } application { id } userErrors { code }
  }
}"""

TWICE = """mutation($m: ID!, $other: ID!, $i: ID!) {
  first: applyCreditMemo(input: {creditMemoId: $m, invoices: [{id: $i, amount: "1.00"}], idempotencyKey: "k"}) {
    application { id } userErrors { code }
  }
  second: applyCreditMemo(input: {creditMemoId: $other, invoices: [{id: $i, amount: "1.00"}], idempotencyKey: "k"}) {
    application { id } userErrors { code }
  }
}"""

REFUND = """mutation($m: ID!) {
  refundCreditMemo(input: {creditMemoId: $m, amount: "2.50"}) {
    creditMemo { unappliedAmount refundAmount } userErrors { code }
  }
}"""


def at_commit(body: str, *, deferred: bool = True) -> list[str]:
    """A constraint trigger that runs ``body`` at the COMMIT of a transaction that inserted an
    application: after the move's statements all succeeded, its payload built (``deferred=False``:
    at the end of the statement that inserted it, inside the resolver)."""
    when = "DEFERRABLE INITIALLY DEFERRED" if deferred else "NOT DEFERRABLE"
    return [
        f"""CREATE FUNCTION test_at_commit() RETURNS trigger LANGUAGE plpgsql
            AS $$ BEGIN {body} END $$""",
        f"""CREATE CONSTRAINT TRIGGER test_at_commit AFTER INSERT ON application
           {when} FOR EACH ROW EXECUTE FUNCTION test_at_commit()""",
    ]


REFUSE_AT_COMMIT = at_commit("RAISE EXCEPTION 'refused at commit';")
# A COMMIT that takes 0.3 s: ample time for a read or a write that does not wait for it to go first
SLOW_COMMIT = at_commit("PERFORM pg_sleep(0.3); RETURN NULL;")
NOTHING_AT_COMMIT = [
    "DROP TRIGGER IF EXISTS test_at_commit ON application",
    "DROP FUNCTION IF EXISTS test_at_commit()",
]


@pytest.fixture
async def admin(pg: Database) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(postgres.dsn(pg.settings.database_url))
    try:
        yield conn
    finally:
        for statement in NOTHING_AT_COMMIT:  # never left behind for the next test
            await conn.execute(statement)
        await conn.close()


@pytest.fixture
async def client(pg: Database) -> AsyncIterator[httpx.AsyncClient]:
    token = await auth.create_token(pg, name="test-admin", permissions=["admin"])
    async with app_client(pg, pg.settings, token) as http:
        yield http


async def _documents(pg: Database) -> dict[str, str]:
    """A credit memo of 10.00 and an invoice of 100.00 on one account."""
    acct = await f.account(pg)
    invoice = await f.invoice(pg, acct, f.item("100.00"))
    memo = await f.credit_memo(pg, acct, f.item("10.00"))
    return {"m": encode("CreditMemo", memo), "i": encode("Invoice", invoice)}


async def _name(pg: Database, acct: int) -> str:
    async with pg.connect() as conn:
        at = s.account_t
        return str((await conn.execute(select(at.c.name).where(at.c.id == acct))).scalar_one())


async def _applications(pg: Database) -> int:
    async with pg.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(s.application_t))).scalar_one())


async def test_a_write_given_commits_returns_before_its_commit_is_done(pg: Database) -> None:
    acct = await f.account(pg, name="Before")
    commits = Commits()

    async def rename(conn: Any) -> str:
        await s.set_values(conn, s.account_t, acct, name="After")
        return "renamed"

    assert await pg.write(rename, commits=commits) == "renamed"
    assert commits.pending  # its caller went on while the COMMIT is on its way
    await commits.wait()
    assert not commits.pending and commits.failures == []
    assert await _name(pg, acct) == "After"

    # without ``commits``, the write returns committed, as ever
    async def rename_back(conn: Any) -> None:
        await s.set_values(conn, s.account_t, acct, name="Before")

    await pg.write(rename_back)
    assert await _name(pg, acct) == "Before"


async def test_a_refused_write_given_commits_raises_and_leaves_nothing_to_wait_for(pg: Database) -> None:
    acct = await f.account(pg, name="Before")
    commits = Commits()

    async def refused(conn: Any) -> None:
        await s.set_values(conn, s.account_t, acct, name="After")
        raise e.Rejected([e.NotFound("credit memo", "CM-0", field=("creditMemoId",))])

    with pytest.raises(e.Rejected):
        await pg.write(refused, commits=commits)
    assert not commits.pending and commits.failures == []
    assert await _name(pg, acct) == "Before"  # rolled back


async def test_a_write_cancelled_before_its_commit_writes_nothing(pg: Database) -> None:
    acct = await f.account(pg, name="Before")
    commits = Commits()
    written = asyncio.Event()

    async def slow(conn: Any) -> None:
        await s.set_values(conn, s.account_t, acct, name="After")
        written.set()
        await asyncio.Event().wait()  # until cancelled

    caller = asyncio.create_task(pg.write(slow, commits=commits))
    await asyncio.wait_for(written.wait(), 30)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert not commits.pending
    in_flight = set(pg._committing)  # noqa: SLF001 - the write's own task, which must end
    if in_flight:
        _, still = await asyncio.wait(in_flight, timeout=30)
        assert not still, "the cancelled write's task never ended"
    assert await _name(pg, acct) == "Before"


async def test_a_commit_that_fails_after_the_payload_was_built_answers_an_error_and_no_data(
    pg: Database, client: httpx.AsyncClient, admin: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    variables = await _documents(pg)
    for statement in REFUSE_AT_COMMIT:
        await admin.execute(statement)
    caplog.set_level(logging.ERROR, logger="gateway.errors")

    r = await client.post("/graphql", json={"query": APPLY, "variables": variables})

    body = r.json()
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["path"] == ["applyCreditMemo"]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert error["extensions"]["requestId"] == r.headers["x-request-id"]
    assert "refused at commit" not in r.text  # masked to the client, logged with the request id
    assert any(
        r.headers["x-request-id"] in rec.getMessage() and "refused at commit" in str(rec.exc_info[1])
        for rec in caplog.records
        if rec.exc_info
    )
    assert await _applications(pg) == 0
    await assert_invariants(pg)

    # the database accepts applications again: the next one is answered, committed
    for statement in NOTHING_AT_COMMIT:
        await admin.execute(statement)
    again = (await client.post("/graphql", json={"query": APPLY, "variables": variables})).json()
    assert again["data"]["applyCreditMemo"]["creditMemo"] == {"unappliedAmount": "9.00"}
    assert await _applications(pg) == 1
    await assert_invariants(pg)


@pytest.mark.parametrize("deferred", [True, False], ids=["at-commit", "in-the-resolver"])
async def test_over_a_websocket_a_failed_write_answers_a_masked_error_and_no_data(
    pg: Database, admin: asyncpg.Connection, deferred: bool
) -> None:
    """On a served gateway's graphql-transport-ws socket: the ``next`` message of a commit that
    failed is its error, not the payload built while the commit was on its way. That error, as one
    raised inside the resolver, is masked before it is sent, with the request id (a socket's results
    are sent before the operation ends, where HTTP's are masked)."""
    variables = await _documents(pg)
    async with server(pg.settings.database_url, GATEWAY_WORKERS="0") as base, socket(base) as ws:
        for statement in at_commit("RAISE EXCEPTION 'refused at commit';", deferred=deferred):
            await admin.execute(statement)
        refused = await ws.run(APPLY, **variables)
        assert "refused" not in json.dumps(refused)
        assert refused["data"] is None
        (error,) = refused["errors"]
        assert error["path"] == ["applyCreditMemo"]
        assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
        assert error["message"] == f"Internal server error (request id {error['extensions']['requestId']})"
        assert await _applications(pg) == 0
        for statement in NOTHING_AT_COMMIT:
            await admin.execute(statement)
        again = await ws.run(APPLY, **variables)
        assert again["data"]["applyCreditMemo"]["creditMemo"] == {"unappliedAmount": "9.00"}
    assert await _applications(pg) == 1
    await assert_invariants(pg)


async def test_a_later_mutation_of_the_operation_sees_the_earlier_one_committed(
    pg: Database, client: httpx.AsyncClient, admin: asyncpg.Connection
) -> None:
    """One idempotency key for two different applies (two memos) in one operation: the second finds
    the key committed with another request (IDEMPOTENCY_KEY_REUSED). Run while the first's COMMIT
    were still on its way, it would find the key locked instead (IDEMPOTENCY_KEY_IN_PROGRESS)."""
    variables = await _documents(pg)
    variables["other"] = encode("CreditMemo", await f.credit_memo(pg, await f.account(pg), f.item("10.00")))
    for statement in SLOW_COMMIT:
        await admin.execute(statement)
    body = (await client.post("/graphql", json={"query": TWICE, "variables": variables})).json()
    assert "errors" not in body, body
    first, second = body["data"]["first"], body["data"]["second"]
    assert first["userErrors"] == [] and first["application"]["id"]
    assert second == {"application": None, "userErrors": [{"code": "IDEMPOTENCY_KEY_REUSED"}]}
    assert await _applications(pg) == 1  # the money moved once
    await assert_invariants(pg)


async def test_a_payload_field_that_reads_sees_the_move_committed(
    pg: Database, client: httpx.AsyncClient, admin: asyncpg.Connection
) -> None:
    """A refund's payload reads its credit memo again (its move returns no row of it): that read
    waits for the commit, or its snapshot would show the memo before the refund."""
    variables = await _documents(pg)
    for statement in SLOW_COMMIT:
        await admin.execute(statement)
    for _ in range(3):
        body = (
            await client.post("/graphql", json={"query": REFUND, "variables": {"m": variables["m"]}})
        ).json()
        assert body["data"]["refundCreditMemo"]["userErrors"] == []
    assert body["data"]["refundCreditMemo"]["creditMemo"] == {
        "unappliedAmount": "2.50",
        "refundAmount": "7.50",
    }
    await assert_invariants(pg)
