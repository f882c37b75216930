"""Input objects built by plan (``schema.input_conversion``) equal what strawberry builds itself, for
every input type of the schema, from values graphql-core coerced as for a request."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import GraphQLInputObjectType, coerce_input_value
from strawberry.types.arguments import convert_argument
from strawberry.types.base import get_object_definition

from schema import inputs
from schema.input_conversion import build
from tests.conftest import SCHEMA

INPUTS = [
    cls
    for cls in vars(inputs).values()
    if isinstance(cls, type) and (d := get_object_definition(cls)) is not None and d.is_input
]

# GraphQL input values, as a client sends them (variables)
VALUES: dict[str, list[dict[str, Any]]] = {
    "ApplyCreditMemoInput": [
        {"creditMemoId": "Q3JlZGl0TWVtbzox"},
        {
            "creditMemoId": "Q3JlZGl0TWVtbzox",
            "effectiveDate": "2026-11-24",
            "applicationRule": "PRORATION",
            "invoices": [
                {"id": "SW52b2ljZTox", "amount": "1.25", "items": [{"targetItemId": "X", "amount": "0.25"}]},
                {"id": "SW52b2ljZToy", "amount": "3.00", "items": None},
            ],
            "debitMemos": None,
            "idempotencyKey": "k-1",
        },
    ],
    "CreateCreditMemoInput": [
        {
            "accountId": "QWNjb3VudDox",
            "items": [{"amount": "5.00"}, {"amount": "1", "kind": "TAX", "sku": "s"}],
        },
    ],
}


def _convert(cls: type, value: dict[str, Any]) -> Any:
    graphql_type = SCHEMA._schema.get_type(get_object_definition(cls, strict=True).name)
    assert isinstance(graphql_type, GraphQLInputObjectType)
    coerced = coerce_input_value(value, graphql_type)
    registry = SCHEMA.schema_converter.scalar_registry
    return convert_argument(coerced, cls, registry, SCHEMA.config, path=("input",))


def test_every_input_type_is_built_by_plan() -> None:
    assert len(INPUTS) >= 20
    for cls in INPUTS:
        assert get_object_definition(cls, strict=True).from_input is build, cls.__name__


@pytest.mark.parametrize(
    ("name", "value"), [(name, value) for name, values in VALUES.items() for value in values]
)
def test_built_by_plan_as_strawberry_builds_it(name: str, value: dict[str, Any]) -> None:
    cls = getattr(inputs, name)
    definitions = [get_object_definition(c, strict=True) for c in INPUTS]
    ours = _convert(cls, value)
    for d in definitions:
        d.from_input = None
    try:
        theirs = _convert(cls, value)
    finally:
        for d in definitions:
            d.from_input = build
    assert ours == theirs
    assert type(ours) is cls and repr(ours) == repr(theirs)  # nested types and values alike
