"""Hostile queries are refused before execution, with the numbers: depth, aliases, tokens and cost.

Cost is counted the way GitHub's GraphQL API does: a connection field asks for ``first`` nodes
(``page_size_default`` when absent) for every node of the connections around it, so
``creditMemos(first: 100) { nodes { items(first: 50) { … } } }`` requests 100 + 100 × 50 = 5,100
nodes. Every executed response carries ``extensions.cost``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Source,
    TokenKind,
    VariableNode,
)
from graphql.language.lexer import Lexer
from strawberry.extensions import SchemaExtension

from gateway.config import Settings


@dataclass
class Measure:
    depth: int = 0
    aliases: int = 0
    cost: int = 0


def count_tokens(query: str) -> int:
    lexer, n = Lexer(Source(query)), 0
    while lexer.advance().kind != TokenKind.EOF:
        n += 1
    return n


def measure(document: Any, variables: dict[str, Any] | None, default_first: int) -> Measure:
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    result = Measure()
    for op in document.definitions:
        if isinstance(op, OperationDefinitionNode):
            _walk(op.selection_set, 1, 1, fragments, variables or {}, default_first, result, frozenset())
    return result


def _first(field: FieldNode, variables: dict[str, Any], default: int) -> int:
    for arg in field.arguments or ():
        if arg.name.value == "first":
            if isinstance(arg.value, IntValueNode):
                return max(0, int(arg.value.value))
            if isinstance(arg.value, VariableNode):
                value = variables.get(arg.value.name.value)
                return max(0, int(value)) if isinstance(value, int) else default
    return default


def _fields(
    selection_set: SelectionSetNode | None, fragments: dict[str, Any], seen: frozenset[str]
) -> Iterator[FieldNode]:
    for sel in selection_set.selections if selection_set else ():
        if isinstance(sel, FieldNode):
            yield sel
        elif isinstance(sel, InlineFragmentNode):
            yield from _fields(sel.selection_set, fragments, seen)
        elif (
            isinstance(sel, FragmentSpreadNode) and sel.name.value in fragments and sel.name.value not in seen
        ):
            yield from _fields(fragments[sel.name.value].selection_set, fragments, seen | {sel.name.value})


def _walk(
    selection_set: SelectionSetNode | None,
    depth: int,
    multiplier: int,
    fragments: dict[str, Any],
    variables: dict[str, Any],
    default_first: int,
    out: Measure,
    seen: frozenset[str],
) -> None:
    for field in _fields(selection_set, fragments, seen):
        if field.alias is not None:
            out.aliases += 1
        if field.selection_set is None:
            continue
        out.depth = max(out.depth, depth)
        inner = multiplier
        # a connection is a field with `first` paging (by the schema's convention, every connection
        # field takes `first`; `edges`/`nodes` below it cost nothing more)
        if any(a.name.value == "first" for a in field.arguments or ()) or field.name.value in CONNECTIONS:
            inner = multiplier * _first(field, variables, default_first)
            out.cost += inner
        _walk(field.selection_set, depth + 1, inner, fragments, variables, default_first, out, seen)


# Connection fields of the contract (also counted when `first` is omitted: it defaults).
CONNECTIONS = frozenset(
    {
        "accounts",
        "creditMemos",
        "debitMemos",
        "invoices",
        "payments",
        "items",
        "parts",
        "applications",
        "applicationParts",
        "jobs",
    }
)


def refusal(code: str, name: str, maximum: int, actual: int, hint: str) -> GraphQLError:
    return GraphQLError(
        f"{name} is {maximum:,}; this query has {actual:,}. {hint}",
        extensions={
            "code": code,
            "category": "LIMIT_EXCEEDED",
            "limit": {"name": name, "max": maximum, "actual": actual},
        },
    )


class QueryLimits(SchemaExtension):
    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.cost: int | None = None

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.graphql_document is not None and not ctx.pre_execution_errors:
            errors = self._check(ctx.query or "", ctx.graphql_document, ctx.variables)
            if errors:
                ctx.pre_execution_errors = errors  # refused: validation and execution never run
        yield

    def _check(self, query: str, document: Any, variables: dict[str, Any] | None) -> list[GraphQLError]:
        s = self.settings
        tokens = count_tokens(query)
        m = measure(document, variables, s.page_size_default)
        self.cost = m.cost
        errors = []
        if tokens > s.max_query_tokens:
            errors.append(
                refusal(
                    "TOO_MANY_TOKENS",
                    "MAX_QUERY_TOKENS",
                    s.max_query_tokens,
                    tokens,
                    "Send a shorter document.",
                )
            )
        if m.depth > s.max_query_depth:
            errors.append(
                refusal(
                    "QUERY_TOO_DEEP",
                    "MAX_QUERY_DEPTH",
                    s.max_query_depth,
                    m.depth,
                    "Nest fewer levels; fetch deeper data in a second query by id.",
                )
            )
        if m.aliases > s.max_aliases:
            errors.append(
                refusal(
                    "TOO_MANY_ALIASES",
                    "MAX_ALIASES",
                    s.max_aliases,
                    m.aliases,
                    "Use fewer aliases; `nodes(ids:)` fetches many documents at once.",
                )
            )
        if m.cost > s.max_query_cost:
            errors.append(
                refusal(
                    "QUERY_TOO_COSTLY",
                    "MAX_QUERY_COST",
                    s.max_query_cost,
                    m.cost,
                    "Ask for fewer items per page (`first`) and page with `after`.",
                )
            )
        return errors

    def get_results(self) -> dict[str, Any]:
        if self.cost is None:
            return {}
        return {"cost": {"requestedNodes": self.cost, "maxCost": self.settings.max_query_cost}}


def query_limit_extensions(settings: Settings) -> list[Any]:
    extensions: list[Any] = [lambda: QueryLimits(settings)]
    if not settings.introspection:
        from graphql.validation import NoSchemaIntrospectionCustomRule
        from strawberry.extensions import AddValidationRules

        extensions.append(lambda: AddValidationRules([NoSchemaIntrospectionCustomRule]))
    return extensions
