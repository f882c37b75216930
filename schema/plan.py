"""An operation being planned: its variables and fragments, the fields it selects on a type
(collected as graphql-core collects them), its arguments (coerced as strawberry coerces them), and
the queue of batches still to fill, one level after the other."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLIncludeDirective,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSkipDirective,
    InlineFragmentNode,
    NamedTypeNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from graphql.execution.values import VariableValues, get_argument_values
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.arguments import convert_arguments
from strawberry.utils.str_converters import to_camel_case

from gateway.context import Context
from schema.model import FALLBACK, LOOKUPS, MODEL, ROOTS, Relation, Scalar

Entry = tuple[Any, dict[str, Any]]  # a row and the response dict it fills


class Fallback(Exception):
    """This operation is not planned: the standard executor answers it."""


def _graphql_names() -> dict[str, dict[str, Scalar | Relation]]:
    out: dict[str, dict[str, Scalar | Relation]] = {}
    for type_name, view in MODEL.items():
        fields: dict[str, Scalar | Relation] = {to_camel_case(k): v for k, v in view.scalars.items()}
        fields.update({to_camel_case(k): v for k, v in view.relations.items()})
        if f"{type_name}.*" not in FALLBACK:
            out[type_name] = {k: v for k, v in fields.items() if f"{type_name}.{k}" not in FALLBACK}
    return out


FIELDS = _graphql_names()
ROOT_FIELDS = {to_camel_case(k): v for k, v in ROOTS.items()}
LOOKUP_FIELDS = {to_camel_case(k): v for k, v in LOOKUPS.items()}
PAGE_INFO = {"hasNextPage", "hasPreviousPage", "startCursor", "endCursor"}


class Plan:
    """One operation's execution: its variables, fragments and the level queue."""

    def __init__(
        self,
        strawberry_schema: Any,
        operation: OperationDefinitionNode,
        fragments: Any,
        ctx: Context,
        fill: Callable[..., Awaitable[None]],
    ) -> None:
        self.ctx = ctx
        self.fill = fill
        self.strawberry = strawberry_schema
        self.schema: GraphQLSchema = strawberry_schema._schema
        self.operation = operation
        self.fragments: dict[str, FragmentDefinitionNode] = fragments
        self.variables: VariableValues | None = None
        self.levels: list[Callable[[], Any]] = []

    def charge(self, nodes: int) -> None:
        """Count a plain list's nodes, as resolvers.relations.charge does on the standard path (the
        cost known before execution counts such a list as one node per parent). Past the cost limit
        the standard executor answers (QUERY_TOO_COSTLY, with its path)."""
        self.ctx.list_nodes += nodes
        if self.ctx.cost + self.ctx.list_nodes > self.ctx.settings.max_query_cost:
            raise Fallback

    # -- field collection, as graphql-core's CollectFields does it -------------------------------

    def collect(
        self, runtime: GraphQLObjectType, selection_sets: Iterable[SelectionSetNode]
    ) -> dict[str, list[FieldNode]]:
        fields: dict[str, list[FieldNode]] = {}
        visited: set[str] = set()

        def visit(selection_set: SelectionSetNode) -> None:
            for node in selection_set.selections:
                if not self._included(node):
                    continue
                if isinstance(node, FieldNode):
                    key = node.alias.value if node.alias else node.name.value
                    fields.setdefault(key, []).append(node)
                elif isinstance(node, InlineFragmentNode):
                    if self._matches(node.type_condition, runtime):
                        visit(node.selection_set)
                elif isinstance(node, FragmentSpreadNode):
                    name = node.name.value
                    if name in visited:
                        continue
                    visited.add(name)
                    fragment = self.fragments.get(name)
                    if fragment is not None and self._matches(fragment.type_condition, runtime):
                        visit(fragment.selection_set)

        for selection_set in selection_sets:
            visit(selection_set)
        return fields

    def _included(self, node: Any) -> bool:
        for directive in node.directives or ():
            if directive.name.value not in ("skip", "include"):
                raise Fallback  # @defer, @stream: graphql-core's business
        skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
        if skip is not None and skip.get("if") is True:
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        return include is None or include.get("if") is True

    def _matches(self, condition: NamedTypeNode | None, runtime: GraphQLObjectType) -> bool:
        if condition is None or condition.name.value == runtime.name:
            return True
        abstract = self.schema.get_type(condition.name.value)
        return abstract is not None and self.schema.is_sub_type(abstract, runtime)  # type: ignore[arg-type]

    def arguments(self, field: GraphQLField, node: FieldNode) -> dict[str, Any]:
        try:
            raw = get_argument_values(field, node, self.variables)
            definition = field.extensions[GraphQLCoreConverter.DEFINITION_BACKREF]
            return convert_arguments(
                raw,
                definition.arguments,
                scalar_registry=self.strawberry.schema_converter.scalar_registry,
                config=self.strawberry.config,
            )
        except Exception as error:  # noqa: BLE001 - graphql-core reports bad arguments its way
            raise Fallback from error

    def object_type(self, name: str) -> GraphQLObjectType:
        found = self.schema.get_type(name)
        assert isinstance(found, GraphQLObjectType)
        return found

    def enqueue(self, groups: dict[str, list[Entry]], nodes: list[FieldNode]) -> Any:
        """Schedules filling the entries' dicts (one group per concrete type) from ``nodes``'
        selections; answers the first entry's dict (for a single lookup)."""
        for type_name, entries in groups.items():
            if entries:
                self.levels.append(functools.partial(self.fill, self, type_name, entries, nodes))
        first = next(iter(groups.values()), [])
        return first[0][1] if first else None


def get_directive_values(directive: Any, node: Any, variables: Any) -> dict[str, Any] | None:
    from graphql.execution.values import get_directive_values as values

    return values(directive, node, variables)
