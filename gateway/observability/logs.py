"""One log format for the whole process (structlog over the standard ``logging``): JSON lines when
stderr is not a terminal (production, containers) or ``GATEWAY_LOG_FORMAT=json``; readable text on
a terminal or with ``text``. Every line written while a request runs carries its ``request_id``
(and, with OpenTelemetry, its ``trace_id`` and ``span_id``); fields given as ``extra=`` (the access
log's method, path, status …) become keys of the JSON object."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from asgi_correlation_id import correlation_id

from gateway.observability.tracing import add_trace_ids

FORMATS = ("auto", "json", "text")


def _add_request_id(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    rid = correlation_id.get()
    if rid is not None:
        event.setdefault("request_id", rid)
    return event


def _drop_color(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    event.pop("color_message", None)  # uvicorn's copy of the message with terminal colours
    return event


def wants_json(log_format: str, stream: Any = None) -> bool:
    if log_format not in FORMATS:
        raise ValueError(f"GATEWAY_LOG_FORMAT must be one of {', '.join(FORMATS)}, not {log_format!r}")
    if log_format != "auto":
        return log_format == "json"
    isatty = getattr(stream or sys.stderr, "isatty", None)
    return not (isatty is not None and isatty())


def configure(level: str = "INFO", log_format: str = "auto", stream: Any = None) -> None:
    """Route every logger (ours, uvicorn's, the libraries') through one formatter on stderr."""
    as_json = wants_json(log_format, stream)
    shared: list[Any] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        _add_request_id,
        add_trace_ids,
        _drop_color,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    last: list[Any] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if as_json
        else [structlog.dev.ConsoleRenderer(colors=False)]
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *last],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    structlog.configure(
        processors=[*shared[:-1], structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
