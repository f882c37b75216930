"""The accounts the current caller may see, for the duration of one root field.

Set by ``resolvers.permissions.Requires`` around every query and mutation; read by the lowest-level
lookups (``store.find``, ``ledger.resolve_targets``) so that no service can forget it. A document
outside the scope is NOT_FOUND, exactly as if it did not exist. None means every account (an
unscoped token, or a worker running a job that was validated under its submitter's scope)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

ACCOUNTS: ContextVar[frozenset[int] | None] = ContextVar("gateway_account_scope", default=None)


def visible(account_id: int) -> bool:
    scope = ACCOUNTS.get()
    return scope is None or account_id in scope


@contextlib.contextmanager
def limited_to(accounts: frozenset[int] | None) -> Iterator[None]:
    token = ACCOUNTS.set(accounts)
    try:
        yield
    finally:
        ACCOUNTS.reset(token)
