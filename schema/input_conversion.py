"""Input objects built from a plan made once per input type, not worked out again per request.

strawberry converts a mutation's input by walking its type for every request: it resolves each
field's type and GraphQL name again, and checks what kind of type each is, which cost ~6% of a
single-item apply. ``from_input`` (strawberry's hook for a type's own construction) builds the same
objects from a plan computed on the first request: per field its GraphQL name, its Python name and a
converter chosen once for its type. Values graphql-core has already coerced (scalars, enums) are
taken as they are, as strawberry takes them; lists are copied, as strawberry copies them; nested
inputs follow their own plan; any other kind of type (a ``Maybe``, a ``GlobalID``, a lazy type) is
converted by strawberry itself (``InputContext.convert``), so nothing is converted differently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING
from typing import Any

from strawberry.relay.types import GlobalID
from strawberry.scalars import is_scalar
from strawberry.types.arguments import InputContext
from strawberry.types.base import StrawberryList, StrawberryMaybe, StrawberryOptional, get_object_definition
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition
from strawberry.types.unset import UNSET

Convert = Callable[[Any, InputContext], Any]
# per input class: the fields given None when omitted, and (GraphQL name, Python name, converter)
Plan = tuple[dict[str, None], tuple[tuple[str, str, Convert], ...]]

_plans: dict[type, Plan] = {}


def _as_is(value: Any, _: InputContext) -> Any:
    return value


def _copied(value: Any, _: InputContext) -> Any:
    return list(value)


def _leaf(type_: Any, registry: Mapping[object, Any]) -> bool:
    if type_ is GlobalID:
        return False
    enum = isinstance(type_, StrawberryEnumDefinition) or has_enum_definition(type_)
    return enum or is_scalar(type_, registry)


def _converter(type_: Any, registry: Mapping[object, Any]) -> Convert:
    if isinstance(type_, StrawberryMaybe):
        return lambda value, ctx: ctx.convert(value, type_)
    if isinstance(type_, StrawberryOptional):
        inner = _converter(type_.of_type, registry)
        return lambda value, ctx: None if value is None else inner(value, ctx)
    if isinstance(type_, StrawberryList):
        of = type_.of_type
        if _leaf(of, registry) or (isinstance(of, StrawberryOptional) and _leaf(of.of_type, registry)):
            return _copied
        each = _converter(of, registry)
        return lambda value, ctx: [None if v is None else each(v, ctx) for v in value]
    if _leaf(type_, registry):
        return _as_is
    definition = get_object_definition(type_)
    if definition is not None and definition.is_input and definition.from_input is build:
        return lambda value, ctx: build(type_, value, ctx)
    return lambda value, ctx: ctx.convert(value, type_)


def _plan(cls: type, ctx: InputContext) -> Plan:
    definition = get_object_definition(cls, strict=True)
    omitted = {
        f.python_name: None
        for f in definition.fields
        if f.default_value is MISSING and f.default_factory is MISSING
    }
    fields = tuple(
        (
            ctx.config.name_converter.from_field(f),
            f.python_name,
            _converter(f.resolve_type(type_definition=definition), ctx.scalar_registry),
        )
        for f in definition.fields
    )
    return omitted, fields


def build(cls: type, value: Mapping[str, Any], ctx: InputContext) -> Any:
    """``from_input``: ``cls`` from its GraphQL input value, as strawberry would build it."""
    plan = _plans.get(cls)
    if plan is None:
        plan = _plans[cls] = _plan(cls, ctx)
    omitted, fields = plan
    kwargs: dict[str, Any] = dict(omitted)
    for graphql_name, python_name, convert in fields:
        if graphql_name in value:
            given = value[graphql_name]
            kwargs[python_name] = given if given is UNSET else convert(given, ctx)
    return cls(**kwargs)


def planned(classes: Iterable[Any]) -> None:
    """Build these input types by plan (``build``)."""
    for cls in classes:
        definition = get_object_definition(cls)
        if definition is not None and definition.is_input:
            definition.from_input = build
