"""Bulk operations: each entry in its own transaction, so that one bad entry blocks no other; the
result of each entry (its document's id, or its violations under ``[field, index]``) in entry order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from gateway.settlement import errors as e
from gateway.settlement.errors import Limit
from gateway.settlement.limits import exceeded

T = TypeVar("T")
Outcome = int | list[e.RuleViolation]


async def each(
    entries: Sequence[T], call: Callable[[T], Awaitable[int]], *, limit: int, field: str = "memos"
) -> list[Outcome]:
    """Run ``call`` on every entry, one after the other; LIMIT_EXCEEDED (nothing run) past ``limit``."""
    if too_many := exceeded(Limit.MEMOS_PER_BULK_REQUEST, limit, len(entries), field=(field,)):
        raise e.Rejected(too_many)
    if not entries:
        raise e.Rejected([e.NoItems("name at least one entry", field=(field,))])
    outcomes: list[Outcome] = []
    for n, entry in enumerate(entries):
        try:
            outcomes.append(await call(entry))
        except e.Rejected as rejected:
            outcomes.append([v.at(field, n) for v in rejected.errors])
        except e.RuleViolation as violation:
            outcomes.append([violation.at(field, n)])
    return outcomes
