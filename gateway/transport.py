"""What an HTTP request must be before GraphQL looks at it, and the JSON refusal when it is not.

A GraphQL request over HTTP is a JSON object (batching is not supported) in valid UTF-8, nested at
most ``MAX_JSON_DEPTH`` levels, and never a subscription (those need a WebSocket). Anything else is
a 4xx with a GraphQL-shaped body and ``extensions.code``: never a 500, never plain text.
"""

from __future__ import annotations

from typing import Any

import orjson
from graphql import GraphQLError, OperationType, get_operation_ast, parse
from starlette.responses import JSONResponse

# Our inputs are at most ~6 levels deep; 32 leaves room and keeps every recursive walk shallow.
MAX_JSON_DEPTH = 32
KINDS = {type(None): "null", bool: "a boolean", int: "a number", float: "a number", str: "a string"}


class BadRequest(Exception):
    def __init__(self, message: str, code: str = "BAD_REQUEST", status: int = 400) -> None:
        super().__init__(message)
        self.message, self.code, self.status = message, code, status


def json_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or BadRequest saying what it is instead."""
    try:
        data = orjson.loads(body)  # strict UTF-8; refuses nesting past 1024 without recursing
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"the body is not valid JSON in UTF-8: {error}") from None
    if not isinstance(data, dict):
        kind = KINDS.get(type(data), "a list (batching is not supported)")
        raise BadRequest(f"the body must be a JSON object with a query, got {kind}")
    check_depth(data)
    return data


def check_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> None:
    """BadRequest when ``value`` nests deeper than ``limit`` (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise BadRequest(f"the JSON is nested more than {limit} levels deep")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def json_param(raw: str | None) -> None:
    """A JSON query parameter (GET's ``variables``/``extensions``): parsed strictly, depth-checked."""
    if raw:
        try:
            check_depth(orjson.loads(raw))
        except orjson.JSONDecodeError as error:
            raise BadRequest(f"a query parameter is not valid JSON: {error}") from None


def refuse_subscription(query: Any, operation_name: Any, max_tokens: int) -> None:
    """BadRequest for a subscription sent over HTTP. Only a document mentioning "subscription" is
    parsed here (bounded by the token limit); the GraphQL layer reports any syntax error."""
    if not isinstance(query, str) or "subscription" not in query:
        return
    try:
        document = parse(query, max_tokens=max_tokens)
    except GraphQLError:
        return
    name = operation_name if isinstance(operation_name, str) else None
    operation = get_operation_ast(document, name)
    if operation is not None and operation.operation is OperationType.SUBSCRIPTION:
        raise BadRequest("subscriptions run over a WebSocket (graphql-transport-ws), not HTTP")


def refusal(message: str, code: str, status: int) -> JSONResponse:
    error = {"message": message, "extensions": {"code": code, "category": "BAD_REQUEST"}}
    return JSONResponse({"data": None, "errors": [error]}, status_code=status)
