"""Who may do what: a field extension per root field.

A mutation without its permission answers its payload with one PERMISSION_DENIED UserError (and
runs nothing); a query without ``read`` is a GraphQL error with the same code."""

from __future__ import annotations

import dataclasses
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import FieldExtension
from strawberry.types import Info

from gateway import scope
from gateway.auth import allows
from gateway.services.documents import today
from gateway.settlement import strict
from gateway.settlement.errors import PermissionDenied, RuleViolation
from schema.errors import user_error


class Requires(FieldExtension):
    def __init__(self, permission: str, *, payload: type | None = None) -> None:
        self.permission = permission
        self.payload = payload

    def _message(self, info: Info) -> str:
        return f"token {info.context.principal.name!r} lacks the permission {self.permission!r}"

    def resolve(self, next_: Any, source: Any, info: Info, **kwargs: Any) -> Any:
        if not allows(info.context.principal, self.permission):
            raise self._denied_query(info)
        with scope.limited_to(info.context.principal.accounts):
            return next_(source, info, **kwargs)

    async def resolve_async(self, next_: Any, source: Any, info: Info, **kwargs: Any) -> Any:
        if allows(info.context.principal, self.permission):
            refused = self._strict(info, kwargs) if self.payload is not None else []
            if refused:  # a mutation's text or date out of bounds: nothing runs
                return self.payload(user_errors=[user_error(v) for v in refused])  # type: ignore[misc]
            if self.payload is not None:  # a mutation runs after the commits of those before it
                commits = info.context.commits
                if commits.pending:
                    await commits.wait()
                commits.field = info.path.key
            with scope.limited_to(info.context.principal.accounts):
                result = await next_(source, info, **kwargs)
            if self.payload is not None and not allows(info.context.principal, "read"):
                return unread(result)
            return result
        if self.payload is not None:
            return self.payload(user_errors=[user_error(PermissionDenied(self._message(info)))])
        raise self._denied_query(info)

    @staticmethod
    def _strict(info: Info, kwargs: dict[str, Any]) -> list[RuleViolation]:
        """Every text and date of a mutation's arguments (paths relative to ``input``)."""
        distance = info.context.settings.max_date_distance_days
        return [
            v
            for name, value in kwargs.items()
            for v in strict.check_input(
                value, today=today(), max_distance_days=distance, field=() if name == "input" else (name,)
            )
        ]

    def _denied_query(self, info: Info) -> GraphQLError:
        return GraphQLError(
            self._message(info), extensions={"code": "PERMISSION_DENIED", "category": "PERMISSION_DENIED"}
        )


def denied_read(info: Info) -> GraphQLError | None:
    """For subscriptions, whose generators field extensions do not wrap."""
    if allows(info.context.principal, "read"):
        return None
    return Requires("read")._denied_query(info)


def creator(info: Info, name: str | None) -> str | None:
    """Who asked for an application or event: other callers' token names are hidden from an
    account-scoped token (it sees its own name, or null)."""
    principal = info.context.principal
    return name if principal.accounts is None or name == principal.name else None


# What a mutation payload answers beside its documents: its own outcome, never a document.
OUTCOME = frozenset({"user_errors", "warnings", "applied_rule", "deleted_id"})


def unread(payload: Any) -> Any:
    """A mutation's payload for a token without ``read``: the documents (and the job) are null; the
    userErrors, warnings and rule remain. Writing does not grant reading."""
    documents = {f.name: None for f in dataclasses.fields(payload) if f.name not in OUTCOME}
    return dataclasses.replace(payload, **documents)
