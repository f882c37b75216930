"""Hostile requests are refused before they cost anything, with the numbers.

Before execution, so nothing touches the database: the parser stops at ``max_query_tokens``; a
validation rule refuses a document nested deeper than ``max_query_depth`` or with more than
``max_aliases`` aliased fields (and, with introspection off, ``__schema``/``__type``); once the
document is valid and its variables known, one requesting more than ``max_query_cost`` nodes.
Each refusal is a GraphQL error without data: ``extensions {code, category: LIMIT_EXCEEDED,
limit: {name, max, actual}}``. Over HTTP: a token bucket per API token (429) and a body limit (413).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Source,
    TokenKind,
    ValidationRule,
    VariableNode,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    is_leaf_type,
    is_list_type,
)
from graphql.language import Lexer
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import AddValidationRules, SchemaExtension

from gateway.config import Settings

# Limit name: (error code, what is counted, what to do instead).
LIMITS = {
    "QUERY_DEPTH": ("QUERY_TOO_DEEP", "levels of nesting", "fetch the deeper data in a second query, by id"),
    "ALIASES": ("TOO_MANY_ALIASES", "aliased fields", "use fewer aliases (nodes(ids:) fetches many)"),
    "QUERY_TOKENS": ("TOO_MANY_TOKENS", "tokens", "send a shorter document (fewer fields and comments)"),
    "SUBSCRIPTIONS_PER_TOKEN": (
        "TOO_MANY_SUBSCRIPTIONS",
        "subscriptions open for this token",
        "end a subscription first (one settlementEvents without accountId sees every account)",
    ),
    "SUBSCRIPTIONS": ("TOO_MANY_SUBSCRIPTIONS", "subscriptions open on this instance", "try again later"),
    "QUERY_COST": (
        "QUERY_TOO_COSTLY",
        "nodes requested",
        "ask for fewer items per page (a smaller first); page with after",
    ),
}


def limit_exceeded(name: str, max: int, actual: int, nodes: Any = None) -> GraphQLError:
    code, counted, remedy = LIMITS[name]
    limit = {"name": name, "max": max, "actual": actual}
    message = f"this query has {actual:,} {counted}, more than the limit of {max:,}: {remedy}"
    return GraphQLError(
        message, nodes, extensions={"code": code, "category": "LIMIT_EXCEEDED", "limit": limit}
    )


def count_tokens(query: str, stop_after: int | None = None) -> int:
    """Lexical tokens as ``parse(max_tokens=)`` counts them: comments included, <SOF>/<EOF> not.
    Counting stops once past ``stop_after`` (a refusal must stay cheap on a 1 MB document)."""
    lexer = Lexer(Source(query))
    count, previous = 0, lexer.token
    try:
        while previous.kind is not TokenKind.EOF and (stop_after is None or count <= stop_after):
            current, token = lexer.advance(), previous.next
            while token is not None:  # the comments the lexer skipped, then the token itself
                count += token.kind is not TokenKind.EOF
                token = None if token is current else token.next
            previous = current
    except GraphQLSyntaxError:
        pass  # the parser reports it
    return count


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def query_shape(
    selection_set: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode]
) -> tuple[int, int]:
    """(depth, aliased fields) of a selection set, fragments expanded. ``{ a { b } }`` is 2 deep.
    ``ofType`` adds no level: it is the linear chain of introspection's wrapped types (GraphiQL asks
    for 9 of them), it cannot fan out. Each fragment is measured once, so a document that spreads
    fragments into fragments costs linear time, not exponential."""
    memo: dict[str, tuple[int, int]] = {}

    def measure(selections: SelectionSetNode) -> tuple[int, int]:
        depth = aliases = 0
        for s in selections.selections:
            if isinstance(s, FieldNode):
                d, a = measure(s.selection_set) if s.selection_set else (0, 0)
                d, a = d + (s.name.value != "ofType"), a + (s.alias is not None)
            elif isinstance(s, FragmentSpreadNode):
                name = s.name.value
                if name not in memo:
                    memo[name] = (0, 0)  # a cycle or an unknown fragment: other rules report it
                    if name in fragments:
                        memo[name] = measure(fragments[name].selection_set)
                d, a = memo[name]
            elif isinstance(s, InlineFragmentNode):
                d, a = measure(s.selection_set)
            depth, aliases = max(depth, d), aliases + a
        return depth, aliases

    return measure(selection_set)


def query_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: dict[str, Any] | None,
    page_size_default: int,
    operation_name: str | None = None,
) -> int:
    """Nodes requested, as GitHub's GraphQL API counts them: a field of a ``…Connection`` type with
    ``first: n`` or ``last: n`` (``page_size_default`` when absent, null or not an integer) costs n
    per instance of its parent and multiplies its subtree by n; the connection's own fields (nodes,
    edges, node, pageInfo) cost nothing more; any other object or list field costs 1 per parent instance, and
    ``nodes(ids:)`` costs len(ids) and multiplies its subtree by it; scalars and introspection 0.
    So ``creditMemos(first: 100) { nodes { items(first: 50) { nodes { id } } } }`` = 100 + 100 × 50."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return 0
    values = {
        v.variable.name.value: _literal(v.default_value, {})
        for v in operation.variable_definitions or ()
        if v.default_value is not None
    }
    values.update(variables or {})
    fragments, memo = _fragments(document), {}

    def cost(selections: SelectionSetNode, parent: Any) -> int:  # per instance of `parent`
        total = 0
        for s in selections.selections:
            if isinstance(s, FieldNode):
                field = getattr(parent, "fields", {}).get(s.name.value)  # a union has none
                if field is None or s.selection_set is None or s.name.value.startswith("__"):
                    continue
                named = get_named_type(field.type)
                inner = 0 if is_leaf_type(named) else cost(s.selection_set, named)
                if named.name.endswith("Connection"):
                    size = _argument(s, "first", values)
                    n = _count(_argument(s, "last", values) if size is None else size, page_size_default)
                    total += n + n * inner
                elif parent.name.endswith(("Connection", "Edge")):
                    total += inner
                elif is_list_type(get_nullable_type(field.type)) and isinstance(
                    ids := _argument(s, "ids", values), list
                ):
                    total += len(ids) + len(ids) * inner
                else:
                    total += 1 + inner
            elif isinstance(s, FragmentSpreadNode):
                name = s.name.value
                if name not in memo:
                    memo[name] = 0
                    if name in fragments:
                        fragment = fragments[name]
                        memo[name] = cost(
                            fragment.selection_set, schema.get_type(fragment.type_condition.name.value)
                        )
                total += memo[name]
            elif isinstance(s, InlineFragmentNode):
                condition = s.type_condition
                total += cost(s.selection_set, schema.get_type(condition.name.value) if condition else parent)
        return total

    return cost(operation.selection_set, schema.get_root_type(operation.operation))


def _argument(field: FieldNode, name: str, variables: dict[str, Any]) -> Any:
    return next((_literal(a.value, variables) for a in field.arguments or () if a.name.value == name), None)


def _literal(node: Any, variables: dict[str, Any]) -> Any:
    if isinstance(node, VariableNode):
        return variables.get(node.name.value)
    if isinstance(node, IntValueNode):
        return int(node.value)
    if isinstance(node, ListValueNode):
        return [_literal(v, variables) for v in node.values]
    return getattr(node, "value", None)


def _count(value: Any, default: int) -> int:
    return max(0, value) if isinstance(value, int) and not isinstance(value, bool) else default


def shape_rule(max_depth: int, max_aliases: int) -> type[ValidationRule]:
    """A validation rule (so ValidationCache keeps its verdict) refusing deep or alias-heavy operations."""

    class QueryShape(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> Any:
            depth, aliases = query_shape(node.selection_set, _fragments(self.context.document))
            if depth > max_depth:
                self.report_error(limit_exceeded("QUERY_DEPTH", max_depth, depth, node))
            if aliases > max_aliases:
                self.report_error(limit_exceeded("ALIASES", max_aliases, aliases, node))
            return self.SKIP

    return QueryShape


class QueryLimits(SchemaExtension):
    """Tokens (at parse time), cost (after validation, before execution), ``extensions.cost``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cost: int | None = None

    def on_operation(self) -> Iterator[None]:
        self.execution_context.parse_options["max_tokens"] = self.settings.max_query_tokens
        try:
            yield
        except GraphQLSyntaxError as error:  # ParserCache parses in its hook: its error comes here
            refusal = self._tokens(error)
            if refusal is error:
                raise
            raise refusal from None
        result = self.execution_context.result  # strawberry's own parse: the error is in the result
        if result is not None and result.errors:
            result.errors = [self._tokens(e) for e in result.errors]

    def _tokens(self, error: GraphQLError) -> GraphQLError:
        """graphql-core's abort ("more than N tokens") becomes our refusal, with the count."""
        limit = self.settings.max_query_tokens
        if not isinstance(error, GraphQLSyntaxError) or f"more than {limit} tokens" not in error.message:
            return error
        actual = count_tokens(self.execution_context.query or "", stop_after=10 * limit)
        return limit_exceeded("QUERY_TOKENS", limit, actual)

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        if context.result is None and context.graphql_document is not None:
            self.cost = query_cost(
                context.schema._schema,
                context.graphql_document,
                context.variables,
                self.settings.page_size_default,
                context.operation_name,
            )
            if hasattr(context.context, "list_nodes"):  # plain lists are charged against the rest
                context.context.cost = self.cost
            limit = self.settings.max_query_cost
            if self.cost > limit:  # execution is skipped
                error = limit_exceeded("QUERY_COST", limit, self.cost)
                context.result = ExecutionResult(data=None, errors=[error])
        yield

    def get_results(self) -> dict[str, Any]:
        if self.cost is None:
            return {}
        # What plain lists returned (charged as they resolved) is part of what the query requested:
        # the reported cost is never below the nodes answered; listNodes tells that part apart.
        listed = getattr(self.execution_context.context, "list_nodes", 0)
        cost = {"requestedNodes": self.cost + listed, "maxCost": self.settings.max_query_cost}
        return {"cost": {**cost, "listNodes": listed} if listed else cost}


def hardening_extensions(settings: Settings) -> list[Any]:
    """Schema extension factories (one instance per operation); the rule classes are made once here,
    so ValidationCache entries stay valid across requests."""
    rules: list[type[ASTValidationRule]] = [shape_rule(settings.max_query_depth, settings.max_aliases)]
    if not settings.introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    return [lambda: QueryLimits(settings), lambda: AddValidationRules(rules)]


class RateLimiter:
    """A token bucket per key: ``burst`` requests at once, refilled at ``rate_per_second``.
    In-process and thread-free (one event loop); the clock is ``time.monotonic``."""

    def __init__(self, rate_per_second: float, burst: int) -> None:
        if rate_per_second <= 0 or burst < 1:
            raise ValueError("a rate limit needs rate_per_second > 0 and burst >= 1")
        self.rate, self.burst = rate_per_second, burst
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens left, when)

    def take(self, key: str, now: float | None = None) -> float:
        """0.0 when the request may run (it takes a token); else the seconds until one may."""
        now = time.monotonic() if now is None else now
        tokens, then = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - then) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate


def limit_response(status: int, message: str, code: str, headers: Any = None, **more: Any) -> JSONResponse:
    """A GraphQL-shaped refusal over HTTP, before any GraphQL runs (no data)."""
    error = {"message": message, "extensions": {"code": code, "category": "LIMIT_EXCEEDED", **more}}
    return JSONResponse({"errors": [error]}, status_code=status, headers=headers)


def throttled_response(wait: float) -> JSONResponse:
    message = f"too many requests for this API token: wait {wait:.2f} seconds"
    retry_after = {"Retry-After": str(max(1, math.ceil(wait)))}
    return limit_response(429, message, "THROTTLED", retry_after, retryAfterSeconds=round(wait, 3))


class BodySizeLimit:
    """ASGI middleware: 413 for a body over ``max_bytes``, declared (Content-Length) or streamed.
    A streamed body is answered the moment it passes the limit; the app, still reading, gets an
    exception out of ``receive`` and whatever it sends afterwards (a 500) is dropped."""

    def __init__(self, app: ASGIApp, max_bytes: int, multipart_max_bytes: int | None = None) -> None:
        self.app, self.max_bytes = app, max_bytes
        self.multipart_max_bytes = multipart_max_bytes or max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        limit = (
            self.multipart_max_bytes
            if headers.get(b"content-type", b"").lower().startswith(b"multipart/form-data")
            else self.max_bytes
        )
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        received, started, refused = 0, False, False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                if not started:  # else too late for a 413: the app's own response is under way
                    refused = True
                    await self._refuse(scope, receive, send, limit)
                raise BodyTooLarge(limit)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if not refused:
                started = started or message["type"] == "http.response.start"
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not refused:  # the consequence of a refusal already answered, or a real error
                raise

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        message = f"the request body is larger than {limit:,} bytes: send a smaller request"
        response = limit_response(413, message, "REQUEST_TOO_LARGE", maxBytes=limit)
        await response(scope, receive, send)


class BodyTooLarge(Exception):
    """Raised out of ``receive`` to stop an app reading a body over the limit (already answered)."""
