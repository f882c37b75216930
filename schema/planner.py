"""The planned read path: a query whose every field ``schema.model`` declares runs level by level,
one statement per relation (the loaders' own batch functions), rows written straight into the
response dicts. No resolver, no per-field await, no strawberry object per row.

Anything else raises ``Fallback`` and graphql-core executes the whole operation as usual: a field
declared fallback or unknown, introspection, a mutation, a bad argument or variable (so that errors
and their paths are graphql-core's own), a missing ``read`` permission, a null where the schema
promises none. Reads go through the request's context (one connection, one snapshot), so a fallback
after a partial plan still answers from the same snapshot."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from types import SimpleNamespace
from typing import Any

from graphql import (
    ExecutionResult,
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
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_non_null_type,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.arguments import convert_arguments
from strawberry.utils.str_converters import to_camel_case

from gateway.auth import allows
from gateway.context import Context
from resolvers.lookup import find, find_node
from schema.connection import PageInfo, encode_cursor, page_spec
from schema.model import FALLBACK, LOOKUPS, MODEL, ROOTS, Many, One, Page, Relation, Scalar, type_of

log = logging.getLogger(__name__)
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
        self, strawberry_schema: Any, operation: OperationDefinitionNode, fragments: Any, ctx: Context
    ) -> None:
        self.ctx = ctx
        self.strawberry = strawberry_schema
        self.schema: GraphQLSchema = strawberry_schema._schema
        self.operation = operation
        self.fragments: dict[str, FragmentDefinitionNode] = fragments
        self.variables: VariableValues | None = None
        self.levels: list[Callable[[], Any]] = []

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


def get_directive_values(directive: Any, node: Any, variables: Any) -> dict[str, Any] | None:
    from graphql.execution.values import get_directive_values as values

    return values(directive, node, variables)


async def execute(
    strawberry_schema: Any, document: Any, operation_name: str | None, variables: Any, ctx: Context
) -> dict[str, Any]:
    """The ``data`` of a query, or ``Fallback``."""
    from graphql import get_operation_ast

    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation is not OperationType.QUERY:
        raise Fallback
    if not allows(ctx.principal, "read"):
        raise Fallback  # each root field answers PERMISSION_DENIED its own way
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    plan = Plan(strawberry_schema, operation, fragments, ctx)
    coerced = get_variable_values(plan.schema, operation.variable_definitions or (), variables or {})
    if isinstance(coerced, list):
        raise Fallback
    plan.variables = coerced
    from gateway import scope

    with scope.limited_to(ctx.principal.accounts):
        data = await _root(plan, ctx)
        while plan.levels:
            await asyncio.sleep(0)  # let small requests through between the levels of a big one
            batch, plan.levels = plan.levels, []
            for step in batch:
                await step()
    return data


async def _root(plan: Plan, ctx: Context) -> dict[str, Any]:
    query = plan.object_type("Query")
    info = SimpleNamespace(context=ctx)  # what resolvers.lookup and resolvers.filters read
    data: dict[str, Any] = {}
    for key, nodes in plan.collect(query, [plan.operation.selection_set]).items():
        name = nodes[0].name.value
        if name == "__typename":
            data[key] = "Query"
            continue
        if f"Query.{name}" in FALLBACK:
            raise Fallback
        field = query.fields[name]
        args = plan.arguments(field, nodes[0])
        if name in ROOT_FIELDS:
            from schema.query import top_rows

            root = ROOT_FIELDS[name]
            where, order, descending = await root.resolve(info, args)
            rows, spec, total = await top_rows(
                ctx,
                root.table,
                args.get("first"),
                args.get("after"),
                where=where,
                order=order,
                descending=descending,
            )
            out: dict[str, Any] = {}
            data[key] = out
            counts = {0: total} if _wants_total(plan, field, nodes) else None
            _connection(plan, field, nodes, [(0, rows, out)], spec, _constant(root.to), counts)
        elif name in LOOKUP_FIELDS:
            raw = args.get("id") if args.get("id") is not None else args.get("number")
            row = await find(info, LOOKUP_FIELDS[name], raw)  # type: ignore[arg-type]
            data[key] = None if row is None else _enqueue(plan, {LOOKUP_FIELDS[name]: [(row, {})]}, nodes)
        elif name == "node":
            found = await find_node(info, args["id"])  # type: ignore[arg-type]
            data[key] = None if found is None else _node(plan, found, nodes)
        elif name == "nodes":
            items = []
            for raw in args["ids"]:
                found = await find_node(info, raw)  # type: ignore[arg-type]
                items.append(None if found is None else _node(plan, found, nodes))
            data[key] = items
        else:
            raise Fallback  # a root field this planner does not know
    return data


def _node(plan: Plan, found: tuple[str, Any], nodes: list[FieldNode]) -> dict[str, Any]:
    type_name, row = found
    if type_name not in MODEL:
        raise Fallback
    out: dict[str, Any] = {}
    _enqueue(plan, {type_name: [(row, out)]}, nodes)
    return out


def _enqueue(plan: Plan, groups: dict[str, list[Entry]], nodes: list[FieldNode]) -> Any:
    """Schedules filling the entries' dicts (one group per concrete type) from ``nodes``' selections;
    answers the first entry's dict (for a single lookup)."""
    for type_name, entries in groups.items():
        if entries:
            plan.levels.append(functools.partial(_fill, plan, type_name, entries, nodes))
    first = next(iter(groups.values()), [])
    return first[0][1] if first else None


async def _fill(plan: Plan, type_name: str, entries: list[Entry], nodes: list[FieldNode]) -> None:
    """One batch of rows of one type: scalars now, each relation with one statement."""
    runtime = plan.object_type(type_name)
    known = FIELDS.get(type_name)
    if known is None:
        raise Fallback
    scalars: list[tuple[str, Callable[[Any], Any]]] = []
    relations: list[tuple[str, Relation, list[FieldNode]]] = []
    for key, field_nodes in plan.collect(
        runtime, [n.selection_set for n in nodes if n.selection_set]
    ).items():
        name = field_nodes[0].name.value
        if name == "__typename":
            scalars.append((key, _constant(type_name)))
            continue
        described = known.get(name)
        if described is None:
            raise Fallback  # declared fallback, or a field nobody described yet
        if isinstance(described, Scalar):
            scalars.append((key, described.wire))
        else:
            scalars.append((key, _none))  # keeps the key in its place; filled below
            relations.append((key, described, field_nodes))
    for row, out in entries:
        for key, get in scalars:
            out[key] = get(row)
    for key, relation, field_nodes in relations:
        field = runtime.fields[field_nodes[0].name.value]
        if isinstance(relation, One):
            await _one(plan, entries, key, relation, field, field_nodes)
        elif isinstance(relation, Many):
            await _many(plan, entries, key, relation, field_nodes)
        else:
            await _page(plan, entries, key, relation, field, field_nodes)


def _none(row: Any) -> None:
    return None


def _constant(value: str) -> Callable[[Any], str]:
    return lambda row: value


async def _one(
    plan: Plan, entries: list[Entry], key: str, relation: One, field: GraphQLField, nodes: list[FieldNode]
) -> None:
    ctx = plan.ctx
    ids = sorted({k for row, _ in entries if (k := getattr(row, relation.key)) is not None})
    found = (
        dict(zip(ids, await getattr(ctx.loaders, relation.loader).load_fn(ids), strict=True)) if ids else {}
    )
    groups: dict[str, list[Entry]] = defaultdict(list)
    for row, out in entries:
        child = found.get(getattr(row, relation.key))
        if child is None:
            if is_non_null_type(field.type):
                raise Fallback  # graphql-core's null propagation and error
            out[key] = None
            continue
        child_out: dict[str, Any] = {}
        out[key] = child_out
        groups[type_of(relation, child)].append((child, child_out))
    _enqueue(plan, groups, nodes)


async def _many(plan: Plan, entries: list[Entry], key: str, relation: Many, nodes: list[FieldNode]) -> None:
    ctx = plan.ctx
    ids = sorted({row.id for row, _ in entries})
    found = dict(zip(ids, await getattr(ctx.loaders, relation.loader).load_fn(ids), strict=True))
    groups: dict[str, list[Entry]] = defaultdict(list)
    keep = relation.keep
    for row, out in entries:
        items = []
        for child in found[row.id]:
            if keep is None or keep(child):
                child_out: dict[str, Any] = {}
                items.append(child_out)
                groups[type_of(relation, child)].append((child, child_out))
        out[key] = items
    _enqueue(plan, groups, nodes)


async def _page(
    plan: Plan, entries: list[Entry], key: str, relation: Page, field: GraphQLField, nodes: list[FieldNode]
) -> None:
    ctx = plan.ctx
    args = plan.arguments(field, nodes[0])
    where, order, descending = await relation.resolve(SimpleNamespace(context=ctx), args)
    try:
        spec = page_spec(
            ctx.settings,
            args.get("first"),
            args.get("after"),
            where=where,
            order=order,
            descending=descending,
        )
    except Exception as error:  # noqa: BLE001 - the same QueryArgumentError, with graphql-core's path
        raise Fallback from error
    ids = sorted({row.id for row, _ in entries})
    loaders = ctx.loaders
    pages = await getattr(loaders, relation.pages).load_fn([(pid, spec) for pid in ids])
    by_parent = dict(zip(ids, pages, strict=True))
    counts = None
    if _wants_total(plan, field, nodes):
        totals = await getattr(loaders, relation.counts).load_fn([(pid, where) for pid in ids])
        counts = dict(zip(ids, totals, strict=True))
    parents = []
    for row, out in entries:
        conn: dict[str, Any] = {}
        out[key] = conn
        parents.append((row.id, by_parent[row.id], conn))
    _connection(plan, field, nodes, parents, spec, lambda r: type_of(relation, r), counts)


def _wants_total(plan: Plan, field: GraphQLField, nodes: list[FieldNode]) -> bool:
    conn_type = get_named_type(field.type)
    assert isinstance(conn_type, GraphQLObjectType)
    collected = plan.collect(conn_type, [n.selection_set for n in nodes if n.selection_set])
    return any(n[0].name.value == "totalCount" for n in collected.values())


def _connection(
    plan: Plan,
    field: GraphQLField,
    nodes: list[FieldNode],
    parents: list[tuple[Any, list[Any], dict[str, Any]]],
    spec: Any,
    node_type: Callable[[Any], str],
    counts: Any,
) -> None:
    """Fills each parent's connection dict from its page of rows (``spec.limit`` + 1 fetched)."""
    conn_type = get_named_type(field.type)
    assert isinstance(conn_type, GraphQLObjectType)
    fields = plan.collect(conn_type, [n.selection_set for n in nodes if n.selection_set])
    order_key = ",".join(spec.order) + (":desc" if spec.descending else "")
    groups: dict[tuple[int, ...], dict[str, list[Entry]]] = {}  # node selections -> type -> entries

    def add(group_key: tuple[int, ...], row: Any, out: dict[str, Any]) -> None:
        groups.setdefault(group_key, defaultdict(list))[node_type(row)].append((row, out))

    selections: dict[tuple[int, ...], list[FieldNode]] = {}
    for _, rows, conn in parents:
        shown = rows[: spec.limit]
        cursors: list[str] | None = None

        def cursor_list(shown: list[Any] = shown) -> list[str]:
            return [encode_cursor(order_key, [getattr(r, c) for c in spec.order]) for r in shown]

        for key, field_nodes in fields.items():
            name = field_nodes[0].name.value
            if name == "__typename":
                conn[key] = conn_type.name
            elif name == "totalCount":
                conn[key] = None  # filled once counted (root connections count lazily)
            elif name == "nodes":
                sel = tuple(id(n) for n in field_nodes)
                selections[sel] = field_nodes
                items = []
                for r in shown:
                    item: dict[str, Any] = {}
                    items.append(item)
                    add(sel, r, item)
                conn[key] = items
            elif name == "edges":
                cursors = cursors or cursor_list()
                conn[key] = _edges(plan, conn_type, field_nodes, shown, cursors, add, selections)
            elif name == "pageInfo":
                cursors = cursors or cursor_list()
                info = PageInfo(
                    has_next_page=len(rows) > spec.limit,
                    has_previous_page=spec.after is not None,
                    start_cursor=cursors[0] if cursors else None,
                    end_cursor=cursors[-1] if cursors else None,
                )
                conn[key] = _page_info(plan, field_nodes, info)
            else:
                raise Fallback
    if counts is not None:
        plan.levels.append(lambda: _totals(fields, parents, counts))
    for sel, by_type in groups.items():
        _enqueue(plan, by_type, selections[sel])


async def _totals(fields: dict[str, list[FieldNode]], parents: list[Any], counts: Any) -> None:
    keys = [k for k, n in fields.items() if n[0].name.value == "totalCount"]
    for parent_id, _, conn in parents:
        total = counts[parent_id]
        value = await total() if callable(total) else total
        for key in keys:
            conn[key] = value


def _edges(
    plan: Plan,
    conn_type: GraphQLObjectType,
    nodes: list[FieldNode],
    shown: list[Any],
    cursors: list[str],
    add: Any,
    selections: dict[tuple[int, ...], list[FieldNode]],
) -> list[dict[str, Any]]:
    edge_type = get_named_type(conn_type.fields["edges"].type)
    assert isinstance(edge_type, GraphQLObjectType)
    fields = plan.collect(edge_type, [n.selection_set for n in nodes if n.selection_set])
    edges = []
    for r, cursor in zip(shown, cursors, strict=True):
        edge: dict[str, Any] = {}
        for key, field_nodes in fields.items():
            name = field_nodes[0].name.value
            if name == "__typename":
                edge[key] = edge_type.name
            elif name == "cursor":
                edge[key] = cursor
            elif name == "node":
                sel = tuple(id(n) for n in field_nodes)
                selections[sel] = field_nodes
                item: dict[str, Any] = {}
                edge[key] = item
                add(sel, r, item)
            else:
                raise Fallback
        edges.append(edge)
    return edges


def _page_info(plan: Plan, nodes: list[FieldNode], info: PageInfo) -> dict[str, Any]:
    page_type = plan.object_type("PageInfo")
    out: dict[str, Any] = {}
    for key, field_nodes in plan.collect(
        page_type, [n.selection_set for n in nodes if n.selection_set]
    ).items():
        name = field_nodes[0].name.value
        if name == "__typename":
            out[key] = "PageInfo"
        elif name in PAGE_INFO:
            out[key] = getattr(
                info,
                {
                    "hasNextPage": "has_next_page",
                    "hasPreviousPage": "has_previous_page",
                    "startCursor": "start_cursor",
                    "endCursor": "end_cursor",
                }[name],
            )
        else:
            raise Fallback
    return out


class PlannedReads(SchemaExtension):
    """Answers a query through the planner before graphql-core would execute it (after parsing,
    validation and the hardening limits, which refuse by setting the result first)."""

    async def on_execute(self) -> AsyncIterator[None]:
        ec = self.execution_context
        if not ec.result and ec.graphql_document is not None and isinstance(ec.context, Context):
            try:
                data = await execute(
                    ec.schema, ec.graphql_document, ec.operation_name, ec.variables, ec.context
                )
            except Fallback:
                pass
            except Exception:  # a planner bug must not cost the answer: graphql-core gives it
                log.warning(
                    "planned read failed; executing normally (request %s)",
                    ec.context.request_id,
                    exc_info=True,
                )
            else:
                ec.result = ExecutionResult(data=data, errors=None)
                ec.context.planned = True
        yield
