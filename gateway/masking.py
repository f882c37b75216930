"""Unexpected exceptions are bugs: the client gets "Internal server error" and a request id, the log
gets the trace under the same id. Expected failures (GraphQL syntax/validation errors and our own
``GraphQLError`` subclasses with a code) pass through unchanged."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import SchemaExtension

from gateway.outage import is_unavailable

log = logging.getLogger("gateway.errors")


def is_expected(error: GraphQLError) -> bool:
    original = error.original_error
    return original is None or isinstance(original, GraphQLError)


def coded(error: GraphQLError) -> GraphQLError:
    """Every refusal carries ``extensions.code``: graphql-core's own syntax, validation and variable
    errors get GRAPHQL_PARSE_FAILED or GRAPHQL_VALIDATION_FAILED (the names Apollo uses)."""
    if (error.extensions or {}).get("code"):
        return error
    code = "GRAPHQL_PARSE_FAILED" if isinstance(error, GraphQLSyntaxError) else "GRAPHQL_VALIDATION_FAILED"
    error.extensions = {**(error.extensions or {}), "code": code}
    return error


class MaskUnexpectedErrors(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        try:
            yield
        except GraphQLError as error:  # a parse error raised by ParserCache inside the hooks
            coded(error)
            raise
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if not errors:
            return
        request_id = getattr(self.execution_context.context, "request_id", "-")
        result.errors = [self._mask(e, request_id) for e in errors]  # type: ignore[union-attr]

    def on_stream_result(self, result: Any) -> Iterator[None]:
        """A WebSocket's results (its queries' and mutations' too) are sent as they are yielded,
        before ``on_operation`` ends: each is masked here, before it goes."""
        errors = getattr(result, "errors", None)
        if errors:
            request_id = getattr(self.execution_context.context, "request_id", "-")
            # a lost database is left to ObserveOperation (SERVICE_UNAVAILABLE), which runs next here
            result.errors = [self._mask(e, request_id, leave_unavailable=True) for e in errors]
        yield

    @staticmethod
    def _mask(error: GraphQLError, request_id: str, *, leave_unavailable: bool = False) -> GraphQLError:
        if is_expected(error):
            return coded(error)
        original: Any = error.original_error
        if leave_unavailable and is_unavailable(original):
            return error
        log.error(
            "unexpected error in %s (request %s)",
            ".".join(map(str, error.path or [])),
            request_id,
            exc_info=(type(original), original, original.__traceback__),
        )
        return GraphQLError(
            message=f"Internal server error (request id {request_id})",
            nodes=error.nodes,
            path=error.path,
            extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
        )
