"""Connections on the planned path: ``edges``, ``nodes``, ``pageInfo`` and ``totalCount`` of each
parent's page of rows, with the cursors ``schema.connection`` makes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from graphql import FieldNode, GraphQLField, GraphQLObjectType, get_named_type

from schema.connection import PageInfo, encode_cursor
from schema.plan import PAGE_INFO, Entry, Fallback, Plan


def wants_total(plan: Plan, field: GraphQLField, nodes: list[FieldNode]) -> bool:
    conn_type = get_named_type(field.type)
    assert isinstance(conn_type, GraphQLObjectType)
    collected = plan.collect(conn_type, [n.selection_set for n in nodes if n.selection_set])
    return any(n[0].name.value == "totalCount" for n in collected.values())


def connection(
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
        plan.enqueue(by_type, selections[sel])


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
