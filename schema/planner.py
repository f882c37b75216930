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
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLField,
    OperationType,
    is_non_null_type,
)
from graphql.execution.values import get_variable_values
from strawberry.extensions import SchemaExtension

from gateway.auth import allows
from gateway.context import Context
from gateway.outage import is_unavailable
from resolvers.lookup import find, find_node
from schema.connection import page_spec
from schema.model import FALLBACK, MODEL, Many, One, Page, Relation, Scalar, type_of
from schema.plan import FIELDS, LOOKUP_FIELDS, ROOT_FIELDS, Entry, Fallback, Plan
from schema.planned_pages import connection, wants_total

log = logging.getLogger(__name__)
CHUNK = 2_000  # rows filled between two yields to the event loop (~5 ms of work)


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
    plan = Plan(strawberry_schema, operation, fragments, ctx, _fill)
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
        backward(args)
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
            counts = {0: total} if wants_total(plan, field, nodes) else None
            connection(plan, field, nodes, [(0, rows, out)], spec, _constant(root.to), counts)
        elif name in LOOKUP_FIELDS:
            raw = args.get("id") if args.get("id") is not None else args.get("number")
            row = await find(info, LOOKUP_FIELDS[name], raw)  # type: ignore[arg-type]
            data[key] = None if row is None else plan.enqueue({LOOKUP_FIELDS[name]: [(row, {})]}, nodes)
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


def backward(args: dict[str, Any]) -> None:
    """Backward pages (``last``/``before``) are answered by the standard executor."""
    if args.get("last") is not None or args.get("before") is not None:
        raise Fallback


def _node(plan: Plan, found: tuple[str, Any], nodes: list[FieldNode]) -> dict[str, Any]:
    type_name, row = found
    if type_name not in MODEL:
        raise Fallback
    out: dict[str, Any] = {}
    plan.enqueue({type_name: [(row, out)]}, nodes)
    return out


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
    for start in range(0, len(entries), CHUNK):
        if start:
            await asyncio.sleep(0)  # a level of many rows lets small requests through as it goes
        for row, out in entries[start : start + CHUNK]:
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
    plan.enqueue(groups, nodes)


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
        plan.charge(len(items))
    plan.enqueue(groups, nodes)


async def _page(
    plan: Plan, entries: list[Entry], key: str, relation: Page, field: GraphQLField, nodes: list[FieldNode]
) -> None:
    ctx = plan.ctx
    args = plan.arguments(field, nodes[0])
    backward(args)
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
    if wants_total(plan, field, nodes):
        totals = await getattr(loaders, relation.counts).load_fn([(pid, where) for pid in ids])
        counts = dict(zip(ids, totals, strict=True))
    parents = []
    for row, out in entries:
        conn: dict[str, Any] = {}
        out[key] = conn
        parents.append((row.id, by_parent[row.id], conn))
    connection(plan, field, nodes, parents, spec, lambda r: type_of(relation, r), counts)


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
                ec.context.list_nodes = 0  # the standard executor counts again
            except Exception as error:  # a planner bug must not cost the answer: graphql-core gives it
                ec.context.list_nodes = 0
                if is_unavailable(error):
                    pass  # the database is down: the standard path meets it too and answers 503
                else:
                    log.warning(
                        "planned read failed; executing normally (request %s)",
                        ec.context.request_id,
                        exc_info=True,
                    )
            else:
                ec.result = ExecutionResult(data=data, errors=None)
                ec.context.planned = True
        yield
