"""The planned read path answers exactly what graphql-core answers: data, errors and extensions,
for every query the test suite sends, hand-written edge cases and random schema-valid queries
(hypothesis-graphql), as an admin, as an account-scoped token and as a token without ``read``."""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    OperationDefinitionNode,
    OperationType,
    get_named_type,
    parse,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import from_schema, nodes
from sqlalchemy import select
from strawberry.utils.str_converters import to_camel_case

from benchmarks.read import QUERY as BENCH_QUERY
from gateway import store as s
from gateway.config import Settings
from gateway.context import ANONYMOUS_ADMIN, Context, Principal
from gateway.db import Database
from gateway.hardening import hardening_extensions
from gateway.ids import encode
from gateway.masking import MaskUnexpectedErrors
from gateway.seed import SeedSpec, seed
from gateway.settlement.money import EXPONENTS, format_minor
from schema.build import build_schema
from schema.model import FALLBACK, MODEL, wire_amount
from schema.plan import FIELDS, LOOKUP_FIELDS, ROOT_FIELDS
from schema.planner import PlannedReads
from tests.conftest import IN_CI, StatementCounter
from tests.schema.test_read_graph import NESTED, memos

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = 500 if IN_CI else 60
SCHEMA = build_schema()
CONNECTION_FIELDS = {"edges", "nodes", "pageInfo", "totalCount", "cursor", "node"}
PAGE_INFO_FIELDS = {"hasNextPage", "hasPreviousPage", "startCursor", "endCursor"}


# -- one source of truth ----------------------------------------------------------------------------


def _reachable(type_: Any, seen: dict[str, GraphQLObjectType]) -> None:
    if not isinstance(type_, GraphQLObjectType) or type_.name in seen:
        return
    seen[type_.name] = type_
    for name, field in type_.fields.items():
        if type_.name == "Query" and f"Query.{name}" in FALLBACK:
            continue
        named = get_named_type(field.type)
        for t in SCHEMA._schema.get_possible_types(named) if hasattr(named, "resolve_type") else [named]:
            if f"{t.name}.*" not in FALLBACK:
                _reachable(t, seen)


def test_every_field_a_planned_query_can_reach_is_planned_or_declared_fallback() -> None:
    seen: dict[str, GraphQLObjectType] = {}
    _reachable(SCHEMA._schema.query_type, seen)
    missing = []
    for type_name, type_ in seen.items():
        for name in type_.fields:
            planned = (
                (type_name == "Query" and name in {*ROOT_FIELDS, *LOOKUP_FIELDS, "node", "nodes"})
                or (type_name.endswith(("Connection", "Edge")) and name in CONNECTION_FIELDS)
                or (type_name == "PageInfo" and name in PAGE_INFO_FIELDS)
                or name in FIELDS.get(type_name, {})
            )
            if not planned and f"{type_name}.{name}" not in FALLBACK:
                missing.append(f"{type_name}.{name}")
    assert len(seen) > 20
    assert missing == [], f"declare these in schema/model.py, or add them to FALLBACK: {missing}"


def test_every_declared_field_exists_in_the_schema() -> None:
    for type_name, view in MODEL.items():
        fields = SCHEMA._schema.get_type(type_name).fields  # type: ignore[union-attr]
        for name in (*view.scalars, *view.relations):
            assert to_camel_case(name) in fields, f"{type_name}.{name}"


@given(minor=st.integers(-(10**15), 10**15), currency=st.sampled_from(sorted(EXPONENTS)))
def test_the_planners_amounts_are_the_standard_ones(minor: int, currency: str) -> None:
    assert wire_amount(minor, currency) == format_minor(minor, currency)


# -- the two paths on the same data ---------------------------------------------------------------


class Twins:
    """One seeded database; every query runs through graphql-core and through the planner."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        # A cost limit that random queries (50 nodes per page by default) rarely reach: the refusal
        # itself is tested on its own below.
        self.settings = Settings(database_url=url, workers=0, max_query_cost=10**8)
        self.db = Database(self.settings)
        extensions = [MaskUnexpectedErrors, *hardening_extensions(self.settings)]
        self.standard = build_schema(extensions)
        self.planned_schema = build_schema([*extensions, PlannedReads])
        self.loop.run_until_complete(self._populate())
        self.principals = [
            Principal("admin"),
            Principal("scoped", frozenset({"read"}), frozenset({self.accounts[0]})),
            Principal("no-read", frozenset({"apply"})),
        ]
        self.planned = 0

    async def _populate(self) -> None:
        await seed(self.db, SeedSpec(accounts=2, invoices_per_account=3, items_per_document=3), self.settings)
        await memos(self.db, 4)
        async with self.db.connect() as conn:
            self.accounts = list((await conn.execute(select(s.account_t.c.id).order_by("id"))).scalars())
            ids = [encode("Account", self.accounts[-1])]
            for type_name, table in (
                ("CreditMemo", s.credit_memo_t),
                ("Invoice", s.receivable_t),
                ("CreditMemoItem", s.credit_memo_item_t),
                ("CreditMemoPart", s.part_t),
                ("Payment", s.payment_t),
                ("Application", s.application_t),
            ):
                pks = (await conn.execute(select(table.c.id).order_by("id").limit(3))).scalars()
                ids += [encode(type_name, pk) for pk in pks]
            numbers = (await conn.execute(select(s.credit_memo_t.c.number).limit(2))).scalars()
        self.ids = ids + list(numbers) + ["x", encode("Job", 1)]

    def close(self) -> None:
        self.loop.run_until_complete(self.db.dispose())
        self.loop.close()

    async def _run(self, schema: Any, query: str, variables: Any, principal: Principal) -> Any:
        context = Context(db=self.db, settings=self.settings, principal=principal, request_id="twins")
        try:
            result = await schema.execute(query, variable_values=variables, context_value=context)
        finally:
            await context.close()
        errors = [e.formatted for e in result.errors or ()]
        return (result.data, errors, result.extensions), context.planned

    def same(self, query: str, variables: Any = None) -> bool:
        """Both paths answer alike for every principal; whether the admin's was planned."""
        planned_for_admin = False
        for principal in self.principals:
            expected, _ = self.loop.run_until_complete(self._run(self.standard, query, variables, principal))
            actual, planned = self.loop.run_until_complete(
                self._run(self.planned_schema, query, variables, principal)
            )
            assert_alike(actual, expected, (principal.name, query, variables))
            planned_for_admin = planned_for_admin or (planned and principal.name == "admin")
        self.planned += planned_for_admin
        return planned_for_admin


def assert_alike(actual: Any, expected: Any, case: Any) -> None:
    """Equal answers. One exception, graphql-core's own: when a non-null root field fails, data is
    null and the sibling fields still running may or may not have reported their errors by then, so
    the two error lists need only be non-empty and one within the other."""
    (data, errors, extensions), (want_data, want_errors, want_extensions) = actual, expected
    if data is None and want_data is None and errors and want_errors:
        got, want = (set(map(orjson.dumps, e)) for e in (errors, want_errors))
        assert (got <= want or want <= got) and extensions == want_extensions, case
        return
    assert actual == expected, case


@pytest.fixture
def twins(database_url: str) -> Iterator[Twins]:
    world = Twins(database_url)
    try:
        yield world
    finally:
        world.close()


def _suite_queries() -> list[str]:
    """Every string literal of the tests and benchmarks that is a GraphQL document of queries only."""
    found: dict[str, None] = {}
    for path in sorted([*(ROOT / "tests").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            text = node.value.strip()
            if not text.startswith(("{", "query", "fragment")) or len(text) > 20_000:
                continue
            try:
                document = parse(text)
            except Exception:  # noqa: BLE001 - not GraphQL, or deliberately broken
                continue
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if operations and all(o.operation is OperationType.QUERY for o in operations):
                found[text] = None
    return list(found)


def _value(type_: Any, ids: list[str]) -> Any:
    if isinstance(type_, GraphQLNonNull):
        return _value(type_.of_type, ids)
    if isinstance(type_, GraphQLList):
        return ids[:4]
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, GraphQLInputObjectType):
        return None
    return {"ID": ids[0], "Int": 3, "String": "CM00000001", "Boolean": True, "Date": "2026-01-01"}.get(
        type_.name
    )


def _variables(query: str, ids: list[str]) -> dict[str, Any]:
    document = parse(query)
    out: dict[str, Any] = {}
    for operation in document.definitions:
        for v in getattr(operation, "variable_definitions", None) or ():
            type_name = v.type
            graphql_type = SCHEMA._schema.get_type(_base(type_name))
            wrapped: Any = graphql_type
            if (
                type_name.kind == "non_null_type"
                and type_name.type.kind == "list_type"
                or type_name.kind == "list_type"
            ):
                wrapped = GraphQLList(graphql_type)  # type: ignore[arg-type]
            out[v.variable.name.value] = _value(wrapped, ids)
    return out


def _base(node: Any) -> str:
    while not hasattr(node, "name"):
        node = node.type
    return str(node.name.value)


def test_every_query_of_the_suite_answers_the_same_on_both_paths(twins: Twins) -> None:
    queries = _suite_queries()
    assert len(queries) >= 10
    for query in queries:
        twins.same(query, _variables(query, twins.ids))
    assert twins.planned >= 8, "the suite's read queries must mostly be planned"


EDGE_CASES = [
    (BENCH_QUERY, {}),
    (NESTED, {"first": 100}),
    (NESTED, {"first": 0}),
    (
        """query Frag($skip: Boolean!, $inc: Boolean!) {
          __typename
          first: creditMemos(first: 2, sort: {field: AMOUNT, direction: DESC}) { ...page }
          rest: creditMemos(first: 3, filter: {hasReferredInvoice: false}) { __typename ...page }
          invoices(filter: {status: POSTED}) { edges { __typename cursor node { ...doc } } totalCount }
          debitMemos { nodes { ...doc applicationParts { nodes { ...part } } } }
          accounts { pageInfo { __typename hasNextPage hasPreviousPage startCursor endCursor } nodes {
            name n: number creditMemos(first: 1) @skip(if: $skip) { totalCount }
            payments @include(if: $inc) { nodes { amount parts { nodes { ...part } } applications {
              nodes { kind amount rule createdAt creditMemo { number } payment { number }
              debitMemo { number } lines { amount sourceItem { kind } target { __typename }
              targetItem { ... on InvoiceItem { sku } } } } } } }
            invoices(first: 2) { nodes { invoiceDate dueDate creditMemos { totalCount } } }
          } }
        }
        fragment page on CreditMemoConnection { totalCount nodes { id ...memo } edges { cursor } }
        fragment memo on CreditMemo {
          number status source reversed createdAt postedAt memoDate reasonCode comment
          applications { nodes { __typename kind lines { amount } } }
          parts { nodes { ...part target { ...doc } } }
        }
        fragment doc on SettlementTarget {
          __typename ... on Invoice { number balance paymentAmount } ... on DebitMemo { appliedAmount }
        }
        fragment part on ApplicationPart {
          __typename ... on CreditMemoPart { amount creditMemo { number } }
          ... on PaymentPart { amount payment { number } itemParts { amount targetItem { __typename } } }
        }""",
        {"skip": True, "inc": True},
    ),
    ("query($s: Boolean!) { accounts { nodes { number @skip(if: $s) name } } }", {"s": False}),
    ("{ creditMemos(first: -1) { totalCount } }", {}),
    ("{ creditMemos(first: 1001) { totalCount } }", {}),
    ('{ accounts { nodes { creditMemos(after: "garbage") { totalCount } } } }', {}),
    ('{ creditMemos(after: "garbage") { totalCount } }', {}),
    ("query($f: Int) { creditMemos(first: $f) { nodes { id } } }", {"f": "three"}),
    ("{ jobs { nodes { id } } accounts { totalCount } }", {}),
    ("{ limits { __typename } }", {}),
    # who created an application depends on the caller's scope (resolvers.permissions.creator)
    ("{ creditMemos { nodes { applications { nodes { createdBy } } } } }", {}),
    ("{ __schema { queryType { name } } }", {}),
    # graphql-core runs the first of several unnamed-for operations; so does the planner
    ("query A { accounts { totalCount } } query B { invoices { totalCount } }", {}),
]
PLANNED = {0, 1, 2, 3, 4, len(EDGE_CASES) - 1}  # the others fall back (bad arguments, Job, introspection)


@pytest.mark.parametrize("case", range(len(EDGE_CASES)))
def test_edge_cases_answer_the_same(twins: Twins, case: int) -> None:
    query, variables = EDGE_CASES[case]
    planned = twins.same(query, variables)
    assert planned == (case in PLANNED)


def test_lookups_nodes_and_pages_after_a_cursor_answer_the_same(twins: Twins) -> None:
    ids = twins.ids
    query = """query($ids: [ID!]!, $id: ID!, $n: String) {
      nodes(ids: $ids) { __typename id ... on CreditMemo { number items { nodes { kind } } } }
      node(id: $id) { id ... on Invoice { number account { name } } }
      creditMemo(number: $n) { id parts { nodes { amount } } }
      account(id: $id) { name } invoice(id: $id) { number } payment(number: "P00000001") { amount }
      debitMemo(number: "DM00000001") { number referredCreditMemo { number } }
    }"""
    for id_ in ids:
        twins.same(query, {"ids": ids, "id": id_, "n": "CM00000002"})
    first = twins.loop.run_until_complete(
        twins._run(
            twins.planned_schema, "{ creditMemos(first: 2) { pageInfo { endCursor } } }", {}, Principal("a")
        )
    )[0][0]
    cursor = first["creditMemos"]["pageInfo"]["endCursor"]
    assert twins.same(
        "query($c: String) { creditMemos(first: 2, after: $c) { pageInfo { hasPreviousPage } nodes { number } } }",
        {"c": cursor},
    )


def _scalars(ids: list[str]) -> dict[str, Any]:
    return {
        "Decimal": st.sampled_from(["1.00", "0.01", "x"]).map(nodes.String),
        "Date": st.sampled_from(["2025-01-01", "2026-06-30", "2030-01-01"]).map(nodes.String),
        "DateTime": st.just(nodes.String("2026-01-01T00:00:00+00:00")),
        "ID": st.sampled_from(ids).map(nodes.String),
    }


def test_random_valid_queries_answer_the_same(twins: Twins) -> None:
    roots = sorted({*ROOT_FIELDS, *LOOKUP_FIELDS, "node", "nodes"})
    strategy = from_schema(str(SCHEMA), fields=roots, custom_scalars=_scalars(twins.ids), allow_x00=False)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(query=strategy)
    def one(query: str) -> None:
        twins.same(query)

    one()
    assert twins.planned >= EXAMPLES // 4, f"only {twins.planned} of {EXAMPLES} random queries were planned"


def test_limits_refuse_before_the_planner_and_extensions_cost_is_reported(twins: Twins) -> None:
    strict = twins.settings.replace(max_query_cost=1_000)
    schema = build_schema([MaskUnexpectedErrors, *hardening_extensions(strict), PlannedReads])

    async def run(query: str) -> tuple[Any, bool]:
        context = Context(db=twins.db, settings=strict, principal=ANONYMOUS_ADMIN)
        try:
            return await schema.execute(query, context_value=context), context.planned
        finally:
            await context.close()

    refused, planned = twins.loop.run_until_complete(run(BENCH_QUERY))
    assert not planned and refused.data is None
    assert [e.extensions["code"] for e in refused.errors] == ["QUERY_TOO_COSTLY"]
    assert refused.extensions == {"cost": {"requestedNodes": 100 + 100 * (50 + 50 * 2), "maxCost": 1_000}}
    small, planned = twins.loop.run_until_complete(run("{ accounts(first: 2) { nodes { number } } }"))
    assert planned and small.errors is None
    assert small.extensions == {"cost": {"requestedNodes": 2, "maxCost": 1_000}}


# -- statements -------------------------------------------------------------------------------------


async def _planned_statements(db: Database, settings: Settings, query: str, variables: Any = None) -> Any:
    schema = build_schema([PlannedReads])
    context = Context(db=db, settings=settings, principal=ANONYMOUS_ADMIN)
    try:
        result = await schema.execute(query, variable_values=variables, context_value=context)
    finally:
        await context.close()
    assert result.errors is None and context.planned
    return result.data


async def test_planned_statements_do_not_grow_with_rows(
    db: Database, settings: Settings, sql: StatementCounter
) -> None:
    await memos(db, 5)
    with sql:
        await _planned_statements(db, settings, BENCH_QUERY)
    bench_small = sql.count
    with sql:
        await _planned_statements(db, settings, NESTED, {"first": 100})
    nested_small = sql.count
    await memos(db, 45)
    with sql:
        data = await _planned_statements(db, settings, BENCH_QUERY)
    assert len(data["creditMemos"]["nodes"]) == 50
    assert sql.count == bench_small
    # memos, items, item parts, target items: one statement per relation level (the snapshot is the
    # transaction the first statement opens: BEGIN is not counted, SQLite and PostgreSQL alike)
    assert bench_small == 4, sql.statements
    with sql:
        await _planned_statements(db, settings, NESTED, {"first": 100})
    assert sql.count == nested_small
