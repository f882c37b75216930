"""OpenTelemetry traces, when the optional extra is installed (``pip install
'settlement-gateway[otel]'``) and configured by the standard ``OTEL_*`` variables: a span per HTTP
request (here), a span per GraphQL operation (strawberry's ``OpenTelemetryExtension``) and a child
span per SQL statement (``opentelemetry-instrumentation-sqlalchemy``). Without the extra, or with
``OTEL_SDK_DISABLED=true``, or with no ``OTEL_TRACES_EXPORTER`` / ``OTEL_EXPORTER_OTLP_*``
endpoint, nothing is traced and nothing costs."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

try:  # the optional extra
    from opentelemetry import trace
except ImportError:  # pragma: no cover - exercised without the extra
    trace = None  # type: ignore[assignment]


def add_trace_ids(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """A structlog processor: the current span's trace and span ids (hex), when there is one."""
    if trace is None:
        return event
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    if trace is None or environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "")
    endpoint = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return (exporter not in ("", "none")) or bool(endpoint)


def configure_provider(environ: Mapping[str, str] = os.environ) -> None:
    """A TracerProvider with the exporter the ``OTEL_*`` variables name (otlp by default, console)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    resource = Resource.create({"service.name": environ.get("OTEL_SERVICE_NAME", "settlement-gateway")})
    provider = TracerProvider(resource=resource)
    exporter: SpanExporter
    if environ.get("OTEL_TRACES_EXPORTER", "otlp") == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()  # endpoint, headers, timeout: OTEL_EXPORTER_OTLP_*
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


def setup(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether to trace; configures the global provider unless one was set already (a test, or
    ``opentelemetry-instrument``)."""
    if not wanted(environ):
        return False
    from opentelemetry.sdk.trace import TracerProvider

    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        configure_provider(environ)
    return True


def instrument_engine(engine: Any) -> None:
    """A child span per SQL statement, under the request's span."""
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    sync_engine = engine.sync_engine
    if getattr(sync_engine, "_gateway_traced", False):
        return
    sync_engine._gateway_traced = True
    instrumentor = SQLAlchemyInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        # It declares SQLAlchemy < 2.1; the event API it uses is unchanged in 2.1 (the test proves it).
        instrumentor.instrument(engine=sync_engine, skip_dep_check=True)
    else:  # a second engine in this process (tests): instrument() would skip it
        instrumentor._instrument(engine=sync_engine)


def graphql_extensions(enabled: bool) -> list[Any]:
    if not enabled:
        return []
    from strawberry.extensions.tracing import OpenTelemetryExtension

    return [OpenTelemetryExtension]


@contextlib.contextmanager
def request_span(enabled: bool, scope: Mapping[str, Any]) -> Iterator[Any]:
    """The server span of one HTTP request (W3C ``traceparent`` from the client is continued)."""
    if not enabled or trace is None:
        yield None
        return
    from opentelemetry.propagate import extract

    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}
    method, path = scope.get("method", "WS"), scope.get("path", "")
    tracer = trace.get_tracer("gateway")
    with tracer.start_as_current_span(
        f"{method} {path}",
        context=extract(headers),
        kind=trace.SpanKind.SERVER,
        attributes={"http.request.method": method, "url.path": path},
    ) as span:
        yield span
