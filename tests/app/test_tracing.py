"""OpenTelemetry (the optional ``otel`` extra): a span per request, per GraphQL operation and per SQL
statement, one trace, continued from the client's ``traceparent``; the trace id in the log lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest

from gateway import auth
from gateway.app import create_app
from gateway.config import Settings
from gateway.db import Database
from gateway.observability import logs

otel = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, otel.TracerProvider):  # once per process: OpenTelemetry's rule
        provider = otel.TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")  # "configured": the provider set above is kept
    try:
        yield exporter
    finally:
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        SQLAlchemyInstrumentor().uninstrument()  # later tests' engines untraced
        processor.shutdown()


def test_tracing_is_off_without_otel_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.observability import tracing

    assert tracing.wanted({}) is False
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}) is True
    assert tracing.wanted({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}) is False


async def test_a_request_is_one_trace_with_operation_and_sql_spans(
    spans: InMemorySpanExporter, settings: Settings
) -> None:
    db = Database(settings)
    token = await auth.create_token(db, name="tracer", permissions=["admin"])
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    logs.configure("INFO", "json", stream)
    try:
        app = create_app(settings, db=db)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://g") as client:
            r = await client.post(
                "/graphql",
                json={"query": "query CountAccounts { accounts { totalCount } }"},
                headers={
                    "Authorization": f"Bearer {token}",
                    "traceparent": f"00-{CLIENT_TRACE}-00f067aa0ba902b7-01",
                },
            )
    finally:
        await db.dispose()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
    assert r.json()["data"] == {"accounts": {"totalCount": 0}}
    finished = spans.get_finished_spans()
    (server,) = [s for s in finished if s.name == "POST /graphql"]
    assert format(server.context.trace_id, "032x") == CLIENT_TRACE
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["graphql.operation.name"] == "CountAccounts"
    in_trace = [s for s in finished if s.context.trace_id == server.context.trace_id]
    operation = [s for s in in_trace if s.parent is not None and s.parent.span_id == server.context.span_id]
    assert any("CountAccounts" in s.name for s in operation), [s.name for s in operation]
    sql = [
        s
        for s in in_trace
        if (s.attributes or {}).get("db.statement") or (s.attributes or {}).get("db.query.text")
    ]
    assert len(sql) >= 2  # the token lookup and the count, each a child span of this request's trace
    access = [json.loads(line) for line in stream.getvalue().splitlines() if '"gateway.access"' in line]
    assert [line["trace_id"] for line in access] == [CLIENT_TRACE]
