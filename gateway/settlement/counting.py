"""Which items count toward a limit, and the limits of one apply request: one rule for the
synchronous apply (before and after loading), the asynchronous submission and the job.

An item counts when something is open on it (a memo item's unapplied amount, a target item's
balance); ``ledger.item_counts`` asks the database the same question (``> 0``) when the items
are not loaded yet. When the caller names items, only those count; when every target names every
source item, only the named source items count.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.settlement.errors import Field, LimitExceeded
from gateway.settlement.limits import Limits, check_apply_counts
from gateway.settlement.model import INVOICE, ApplyRequest


def counts_toward_limit(open_amount: int) -> bool:
    return open_amount > 0


def named_source_items(request: ApplyRequest) -> set[object]:
    return {
        i.source_item_id if i.source_item_id is not None else i.raw_source_item_id
        for t in request.targets
        for i in t.items or ()
        if i.names_source
    }


def all_sources_named(request: ApplyRequest) -> bool:
    return bool(request.targets) and all(
        t.items is not None and all(i.names_source for i in t.items) for t in request.targets
    )


def apply_limits(
    request: ApplyRequest,
    *,
    limits: Limits,
    memo_open_items: int,
    open_items: Mapping[int, int],
    item_counts: Mapping[int, int],
    async_: bool,
    documents: int | None = None,
    invoices: int | None = None,
) -> list[LimitExceeded]:
    """The limits of an apply from counts: ``memo_open_items`` the memo items that count,
    ``open_items`` / ``item_counts`` per target id (items that count / all items) for the targets
    whose items are not named. ``documents`` / ``invoices``: the request's entries when some named
    nothing (those are not in ``request``)."""
    named_sources = named_source_items(request)
    memo_items = len(named_sources) if all_sources_named(request) else memo_open_items
    target_items = 0
    for t in request.targets:
        if t.items is None:
            target_items += open_items.get(t.target_id, 0)
        else:
            target_items += len(
                {i.target_item_id if i.target_item_id is not None else i.raw_target_item_id for i in t.items}
            )
    items_per_target: dict[Field, int] = {
        t.field: item_counts.get(t.target_id, 0) for t in request.targets if t.items is None
    }
    return check_apply_counts(
        limits=limits,
        async_=async_,
        documents=len(request.targets) if documents is None else documents,
        invoices=sum(1 for t in request.targets if t.kind == INVOICE) if invoices is None else invoices,
        items_per_target=items_per_target,
        specified_items={t.field: len(t.items) for t in request.targets if t.items is not None},
        specified_source_items=len(named_sources),
        total_items=memo_items + target_items,
    )


def apply_items_involved(
    request: ApplyRequest, *, memo_open_items: int, open_items: Mapping[int, int]
) -> int:
    """The items a queued apply will touch (the job's progress total): memo items that count and
    the open items of its targets."""
    return memo_open_items + sum(open_items.get(t.target_id, 0) for t in request.targets)
