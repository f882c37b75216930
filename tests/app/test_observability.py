"""What an operator sees: request ids, structured logs with an access line per request, /metrics."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families

from gateway import auth
from gateway.app import create_app
from gateway.config import Settings
from gateway.db import Database
from gateway.ids import encode
from gateway.observability import logs
from tests import factories as f

APPLY = """mutation Apply($m: ID!, $i: ID!) { applyCreditMemo(input: {creditMemoId: $m,
  invoices: [{id: $i, amount: "5.00"}]}) { userErrors { code } } }"""
APPLY_ASYNC = """mutation ApplyLater($m: ID!, $i: ID!) { applyCreditMemoAsync(input: {creditMemoId: $m,
  invoices: [{id: $i, amount: "1.00"}]}) { job { status } userErrors { code } } }"""
COUNT = {"query": "query CountAccounts { accounts { totalCount } }"}


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The process's logging configured as in production (JSON) into a buffer; restored after."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    logs.configure("INFO", "json", stream)
    try:
        yield stream
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        structlog.reset_defaults()


def parsed(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_text_on_a_terminal_json_elsewhere() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert logs.wants_json("auto", io.StringIO()) is True
    assert logs.wants_json("auto", Tty()) is False
    assert logs.wants_json("text", io.StringIO()) is False
    assert logs.wants_json("json", Tty()) is True
    with pytest.raises(ValueError, match="GATEWAY_LOG_FORMAT must be one of auto, json, text"):
        Settings(log_format="yaml")


async def test_each_request_s_errors_carry_its_own_id_though_the_document_s_errors_are_cached(
    http: httpx.AsyncClient,
) -> None:
    """A document's validation errors are cached (strawberry's ``ValidationCache``) and so shared
    between requests: the id must go on a copy, or every later request with the same invalid
    document answers with the first one's id (and concurrent requests write over one another's)."""
    invalid = {"query": "query($a: String!) { account(id: $a) { number } }", "variables": {"a": "x"}}
    answers = [
        await http.post("/graphql", json=invalid, headers={"X-Request-Id": f"req-{n}"}) for n in range(3)
    ]
    for n, answer in enumerate(answers):
        errors = answer.json()["errors"]
        assert errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", errors
        assert errors[0]["locations"] == answers[0].json()["errors"][0]["locations"] != []
        assert [e["extensions"]["requestId"] for e in errors] == [f"req-{n}"] * len(errors)
    # at once, the same: each answer carries its own request's id
    together = await asyncio.gather(
        *(http.post("/graphql", json=invalid, headers={"X-Request-Id": f"at-once-{n}"}) for n in range(4))
    )
    assert [r.json()["errors"][0]["extensions"]["requestId"] for r in together] == [
        f"at-once-{n}" for n in range(4)
    ]


async def test_every_request_has_an_id_and_one_access_line(
    http: httpx.AsyncClient, db: Database, log_lines: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    await f.account(db)
    mine = await http.post("/graphql", json=COUNT, headers={"X-Request-Id": "req-42"})
    generated = await http.post("/graphql", json=COUNT, headers={"X-Request-Id": "bad id\x7f"})
    refused = await http.post("/graphql", json=COUNT, headers={"Authorization": "Bearer nope"})
    from schema import types

    def explode(cls, row):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    monkeypatch.setattr(types.Account, "from_row", classmethod(explode))
    # `limits` is not planned (schema.model.FALLBACK): graphql-core resolves the accounts through from_row
    broken = await http.post(
        "/graphql", json={"query": "{ accounts { nodes { number } } limits { totalItems } }"}
    )
    assert mine.headers["x-request-id"] == "req-42"
    assert len(generated.headers["x-request-id"]) == 32
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["extensions"]["requestId"] == refused.headers["x-request-id"]
    assert broken.json()["errors"][0]["extensions"]["requestId"] == broken.headers["x-request-id"]
    lines = parsed(log_lines)
    access = [line for line in lines if line["logger"] == "gateway.access"]
    assert [line["request_id"] for line in access] == [
        r.headers["x-request-id"] for r in (mine, generated, refused, broken)
    ]
    first = access[0]
    assert {
        k: first[k] for k in ("method", "path", "status", "operation_name", "operation_type", "token", "cost")
    } == {
        "method": "POST",
        "path": "/graphql",
        "status": 200,
        "operation_name": "CountAccounts",
        "operation_type": "query",
        "token": "test-admin",
        "cost": 50,
    }
    assert isinstance(first["duration_ms"], float) and first["sql_statements"] >= 1
    (error,) = [line for line in lines if line["logger"] == "gateway.errors"]
    assert error["request_id"] == broken.headers["x-request-id"] and "boom" in str(error["exception"])
    assert error["level"] == "error"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(snapshot: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return snapshot.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_a_mix_of_requests(db: Database, settings: Settings) -> None:
    settings = settings.replace(rate_limit_burst=7, rate_limit_per_second=0.001)
    admin = await auth.create_token(db, name="metrics-admin", permissions=["admin"])
    reader = await auth.create_token(db, name="reader", permissions=["read"])
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("100.00"))
    memo = await f.credit_memo(db, acct, f.item("50.00"))
    ids = {"m": encode("CreditMemo", memo), "i": encode("Invoice", inv)}
    app = create_app(settings, db=db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://g") as client:
        bearer = {"Authorization": f"Bearer {admin}"}
        assert (await client.get("/metrics")).status_code == 403
        assert (
            await client.get("/metrics", headers={"Authorization": f"Bearer {reader}"})
        ).status_code == 403
        before = samples((await client.get("/metrics", headers=bearer)).text)
        answers = [
            await client.post("/graphql", json=COUNT, headers=bearer),
            await client.post("/graphql", json=COUNT, headers=bearer),
            await client.post(
                "/graphql",
                json={"query": APPLY, "variables": ids},
                headers={**bearer, "Idempotency-Key": "k-1"},
            ),
            await client.post(
                "/graphql",
                json={"query": APPLY, "variables": ids},
                headers={**bearer, "Idempotency-Key": "k-1"},
            ),
            await client.post("/graphql", json={"query": "{ accounts { "}, headers=bearer),
            await client.post("/graphql", json={"query": APPLY_ASYNC, "variables": ids}, headers=bearer),
            await client.post("/graphql", json=COUNT, headers=bearer),
            await client.post("/graphql", json=COUNT, headers=bearer),  # the 8th: over the burst of 7
        ]
        scrape = await client.get("/metrics", headers=bearer)
    assert [r.status_code for r in answers] == [200] * 7 + [429]
    assert answers[5].json()["data"]["applyCreditMemoAsync"]["job"]["status"] == "PENDING"
    assert scrape.headers["content-type"].startswith("text/plain")
    after = samples(scrape.text)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    graphql = {"path": "/graphql"}
    assert (
        delta(
            "gateway_requests_total",
            **graphql,
            operation_type="query",
            operation_name="CountAccounts",
            outcome="ok",
        )
        == 3
    )
    assert (
        delta(
            "gateway_requests_total",
            **graphql,
            operation_type="mutation",
            operation_name="Apply",
            outcome="ok",
        )
        == 2
    )
    assert (
        delta(
            "gateway_requests_total",
            **graphql,
            operation_type="mutation",
            operation_name="ApplyLater",
            outcome="ok",
        )
        == 1
    )
    assert (
        delta("gateway_requests_total", **graphql, operation_type="-", operation_name="-", outcome="error")
        == 1
    )
    assert (
        delta(
            "gateway_requests_total", **graphql, operation_type="-", operation_name="-", outcome="throttled"
        )
        == 1
    )
    assert (
        delta(
            "gateway_request_duration_seconds_count",
            **graphql,
            operation_type="query",
            operation_name="CountAccounts",
        )
        == 3
    )
    assert delta("gateway_request_sql_seconds_count", operation_type="query") == 3
    assert delta("gateway_rate_limited_total") == 1
    assert delta("gateway_idempotent_replays_total") == 1
    assert value(after, "gateway_jobs", status="PENDING") == 1
    assert value(after, "gateway_job_queue_depth") == 1
    assert value(after, "gateway_job_oldest_pending_age_seconds") >= 0
    assert value(after, "gateway_dependency_up", dependency="database") == 1
    assert value(after, "gateway_db_pool_checked_out") >= 0 and value(after, "gateway_db_pool_size") >= 1
    assert ("gateway_open_websockets", ()) in after and ("gateway_open_subscriptions", ()) in after


async def test_metrics_can_be_public_or_off(db: Database, settings: Settings) -> None:
    for setting, status in (("public", 200), ("off", 404)):
        app = create_app(settings.replace(metrics=setting), db=db)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://g") as client:
            assert (await client.get("/metrics")).status_code == status


async def test_websockets_and_subscriptions_are_counted_and_a_vanishing_subscriber_is_no_error(
    database_url: str, tmp_path: Path
) -> None:
    from websockets.asyncio.client import connect

    from tests.outage import gateway

    db = Database(Settings(database_url=database_url))
    token = await auth.create_token(db, name="ops", permissions=["admin"])
    await db.dispose()
    headers = {"Authorization": f"Bearer {token}"}
    log = tmp_path / "gateway.log"
    env = {"GATEWAY_LOG_FORMAT": "json", "GATEWAY_LOG_LEVEL": "INFO"}
    create = {
        "query": 'mutation { createAccount(input: {name: "a", currency: "USD"}) { userErrors { code } } }'
    }

    async def gauges(client: httpx.AsyncClient) -> tuple[float, float]:
        now = samples((await client.get("/metrics")).text)
        return value(now, "gateway_open_websockets"), value(now, "gateway_open_subscriptions")

    async with (
        gateway(database_url, log, **env) as base,
        httpx.AsyncClient(base_url=base, headers=headers) as client,
    ):
        assert await gauges(client) == (0, 0)
        ws = await connect(base.replace("http", "ws") + "/graphql", subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        query = "subscription { settlementEvents { kind } }"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
        deadline = time.monotonic() + 20
        while await gauges(client) != (1, 1):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        ws.transport.abort()  # the subscriber vanishes without a close frame
        for _ in range(3):  # events for nobody
            assert (await client.post("/graphql", json=create)).json()["data"] == {
                "createAccount": {"userErrors": []}
            }
        deadline = time.monotonic() + 20
        while await gauges(client) != (0, 0):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert not [line for line in lines if line["level"] in ("warning", "error", "critical")], lines
