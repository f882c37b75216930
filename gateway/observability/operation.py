"""The GraphQL side of a request: its operation's name and type, the caller's token name and the
cost for the access log and metrics; a lost database turned into ``SERVICE_UNAVAILABLE`` (the HTTP
layer answers 503) instead of an "internal error" with a traceback; ``extensions.requestId`` on
every error. Listed after ``MaskUnexpectedErrors`` so that it sees the errors first."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult

from gateway.observability import metrics
from gateway.observability.requests import current, request_id
from gateway.outage import is_unavailable


class ObserveOperation(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        context: Any = self.execution_context.context
        self._subscription = False
        try:
            yield  # a subscription's operation lasts as long as the subscription
        finally:
            if self._subscription:
                metrics.SUBSCRIPTIONS.dec()
        info = current()
        if info is not None:
            info.operation_name = self.execution_context.operation_name
            with contextlib.suppress(Exception):
                info.operation_type = self.execution_context.operation_type.value
            principal = getattr(context, "principal", None)
            info.token = getattr(principal, "name", None)
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if not errors:
            return
        if info is not None:
            info.errors = len(errors)
        rid = getattr(context, "request_id", None) or request_id()
        result.errors = [self._observe(error, rid, context) for error in errors]  # type: ignore[union-attr]

    def on_stream_result(self, result: Any) -> Iterator[None]:
        """A WebSocket's results, before each is sent (after ``MaskUnexpectedErrors``'s, which runs
        first here): a lost database as SERVICE_UNAVAILABLE, the request id on every error."""
        errors = getattr(result, "errors", None)
        if errors:
            context: Any = self.execution_context.context
            rid = getattr(context, "request_id", None) or request_id()
            result.errors = [self._observe(error, rid, context) for error in errors]
        yield

    def on_parse(self) -> Iterator[None]:
        yield
        with contextlib.suppress(Exception):  # no document: the error is reported elsewhere
            if self.execution_context.operation_type.value == "subscription" and not self._subscription:
                self._subscription = True
                metrics.SUBSCRIPTIONS.inc()

    @staticmethod
    def _observe(error: GraphQLError, rid: str, context: Any) -> GraphQLError:
        original = error.original_error
        if original is not None and is_unavailable(original):
            db = getattr(context, "db", None)
            if db is not None:
                db.availability.lost(original)
            info = current()
            if info is not None:
                info.outage = original
            return GraphQLError(
                "the database is unavailable: try again later",
                nodes=error.nodes,
                path=error.path,
                extensions={"code": "SERVICE_UNAVAILABLE", "requestId": rid},
            )
        return with_request_id(error, rid)


def with_request_id(error: GraphQLError, rid: str) -> GraphQLError:
    """``error`` with the request's id in its extensions (one it already has is kept), as a new
    error: the error itself may be shared between requests (strawberry's ``ValidationCache`` keeps a
    document's validation errors), so writing the id on it would answer a later request with the
    first one's id."""
    if (error.extensions or {}).get("requestId"):
        return error
    return GraphQLError(
        error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions={**(error.extensions or {}), "requestId": rid},
    )


def note_result(result: ExecutionResult, principal: object = None) -> None:
    """The final HTTP result (errors raised before execution included): the cost the hardening
    extension reported and the error count for the access log, the request id on every error."""
    info = current()
    if info is not None and info.token is None:
        info.token = getattr(principal, "name", None)
    cost = (result.extensions or {}).get("cost")
    if info is not None and isinstance(cost, dict):
        info.cost = cost.get("requestedNodes")
    if result.errors:
        if info is not None:
            info.errors = len(result.errors)
        rid = request_id()
        result.errors = [with_request_id(error, rid) for error in result.errors]
