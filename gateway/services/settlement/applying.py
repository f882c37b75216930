"""Apply and unapply a credit memo or a payment (preview is an apply that writes nothing), and the
same run inside a queued job.

One write transaction: idempotency key → lock the source → resolve and lock the targets (one
statement, id order) → limits (from the headers' item counts; from exact counts only when those
could exceed a limit) → load → rules → save (set-based) → key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import idempotency, ledger, postings
from gateway.config import Settings
from gateway.db import Commits, Database
from gateway.services.documents import SYSTEM, Actor, today
from gateway.services.settlement.inputs import Outcome, SettleInput, apply_request, source_field, to_json
from gateway.settlement import counting, engine
from gateway.settlement import errors as e
from gateway.settlement.limits import check_unapply_counts
from gateway.settlement.model import CREDIT_MEMO, INVOICE, ApplyRequest, Source

Progress = Callable[[float], Awaitable[None]]


async def settle(
    db: Database,
    settings: Settings,
    data: SettleInput,
    *,
    unapply: bool,
    actor: Actor = SYSTEM,
    preview: bool = False,
    commits: Commits | None = None,
) -> Outcome:
    if preview:
        async with db.connect() as conn:
            return await run(conn, settings, data, unapply=unapply, actor=actor, write=False)
    operation = f"{'unapply' if unapply else 'apply'}:{data.source_kind}"
    claim = idempotency.claim(
        data.idempotency_key, caller=actor.name or "", operation=operation, request=to_json(data)
    )

    return await idempotency.write_once(
        db,
        claim,
        lambda conn: run(conn, settings, data, unapply=unapply, actor=actor, write=True),
        dump=Outcome.as_json,
        load=Outcome.from_json,
        queue=(data.source_kind, data.source.raw),  # the source is the first row it locks
        commits=commits,
    )


async def settle_in_job(
    conn: AsyncConnection,
    settings: Settings,
    data: SettleInput,
    *,
    unapply: bool,
    actor: Actor,
    progress: Progress,
) -> Outcome:
    """The job's run: the same rules and writes as a synchronous settle, with the async limits."""
    return await run(
        conn, settings, data, unapply=unapply, actor=actor, write=True, async_=True, progress=progress
    )


async def run(
    conn: AsyncConnection,
    settings: Settings,
    data: SettleInput,
    *,
    unapply: bool,
    actor: Actor,
    write: bool,
    async_: bool = False,
    progress: Progress | None = None,
) -> Outcome:
    # Unknown targets are reported together with whatever else is wrong with the known ones. The
    # items of small targets come with them (at most TOTAL_ITEMS rows in all, what a sync apply
    # within its limits reads anyway); larger targets' items are read once their limits passed.
    wanted = [(t.kind, t.ref, t.field) for t in data.targets]
    small = (
        0 if async_ else min(ledger.ITEMS_WITH_THE_LOCK, settings.limits.total_items // max(1, len(wanted)))
    )
    field = source_field(data.source_kind)
    if write and ledger.can_lock_together(conn, data.source_kind, wanted):  # one round trip
        source, ids, problems, rows, preloaded = await ledger.lock_memo_and_targets(
            conn, data.source, field, wanted, items_up_to=small
        )
    else:
        source = await ledger.find_source(conn, data.source_kind, data.source, field, lock=write)
        ids, problems, rows, preloaded = await ledger.resolve_targets(
            conn, wanted, lock=write, items_up_to=small
        )
    request = apply_request(data, ids)
    try:
        outcome = await _run_known(
            conn, settings, data, request, source, rows, preloaded, unapply, actor, write, async_, progress
        )
    except e.Rejected as rejected:
        rest = [v for v in rejected.errors if not (problems and isinstance(v, e.NoTargets))]
        raise e.Rejected(problems + rest) from None
    if problems:  # the transaction is rolled back: nothing of a refused request is written
        raise e.Rejected(problems)
    return outcome


async def _run_known(
    conn: AsyncConnection,
    settings: Settings,
    data: SettleInput,
    request: ApplyRequest,
    source: Source,
    rows: dict[int, Row[Any]],
    preloaded: ledger.Preloaded,
    unapply: bool,
    actor: Actor,
    write: bool,
    async_: bool,
    progress: Progress | None,
) -> Outcome:
    limits = settings.limits
    source_kind = data.source_kind
    if unapply:
        if not data.targets:  # everything applied
            applied = await ledger.existing_item_parts(conn, source_kind, source.id, None)
            ids = sorted({p.target_id for p in applied})
            rows = await ledger.lock_targets(conn, ids, lock=write)
        await check_unapply_limits(conn, data, request, source.id, list(rows), settings, async_=async_)
    else:
        await check_apply_limits(conn, data, request, source, rows, settings, async_=async_)
    loading = None if progress is None else (lambda fraction: progress(0.4 * fraction))
    targets = await ledger.load_targets(conn, rows, progress=loading, preloaded=preloaded)
    common: dict[str, Any] = {
        "default_rule": settings.default_application_rule,
        "limits": limits,
        "today": today(),
        "async_": async_,
    }
    if unapply:
        existing = await ledger.existing_item_parts(conn, source_kind, source.id, list(rows))
        guard = limits.proration_product_async if async_ else limits.proration_product_unapply
        result = engine.unapply(source, targets, existing, request, proration_guard=guard, **common)
    else:
        guard = limits.proration_product_async if async_ else limits.proration_product_apply
        result = engine.apply(source, targets, request, proration_guard=guard, **common)
    if progress is not None:
        await progress(0.6)  # computed
    warnings = tuple((w.code, w.message) for w in result.warnings)
    if not write:
        return Outcome(
            source.id,
            rule=result.rule,
            warnings=warnings,
            movements=result.movements,
            currency=source.currency,
        )
    saving = None if progress is None else (lambda fraction: progress(0.6 + 0.4 * fraction))
    saved = await postings.save_settlement(
        conn,
        source=source,
        settlement=result,
        kind="UNAPPLY" if unapply else "APPLY",
        sign=-1 if unapply else 1,
        created_by=actor.name,
        progress=saving,
    )
    return Outcome(
        source.id,
        saved.application.id,
        None,
        result.rule,
        warnings,
        result.movements,
        written=saved.written(),
    )


async def check_apply_limits(
    conn: AsyncConnection,
    data: SettleInput,
    request: ApplyRequest,
    source: Source,
    rows: dict[int, Row[Any]],
    settings: Settings,
    *,
    async_: bool,
    exact: bool = False,
) -> tuple[int, dict[int, int]]:
    """Refuse a request over a limit before the items of a large target are read. The targets'
    item counts (their rows) bound the items that count; only when that bound is over a limit, or
    for ``exact`` counts, are the items counted (one statement). Returns the memo items and the
    items per target that count."""
    if source.items or data.source_kind != CREDIT_MEMO:
        memo_open = sum(1 for i in source.items if counting.counts_toward_limit(i.unapplied))
    else:  # read without its items (a request to queue)
        memo_open = await ledger.open_memo_item_count(conn, source.id)

    def over(open_items: dict[int, int], item_counts: dict[int, int]) -> list[e.LimitExceeded]:
        return counting.apply_limits(
            request,
            limits=settings.limits,
            memo_open_items=memo_open,
            open_items=open_items,
            item_counts=item_counts,
            async_=async_,
            documents=len(data.targets),
            invoices=sum(1 for t in data.targets if t.kind == INVOICE),
        )

    headers = {pk: int(r.item_count) for pk, r in rows.items()}
    if not exact and not over(headers, headers):
        return memo_open, headers
    unnamed = [t.target_id for t in request.targets if t.items is None]
    open_items, item_counts = await ledger.item_counts(conn, unnamed)
    if errors := over(open_items, item_counts):
        raise e.Rejected(errors)
    return memo_open, open_items


async def check_unapply_limits(
    conn: AsyncConnection,
    data: SettleInput,
    request: ApplyRequest,
    source_id: int,
    target_ids: list[int],
    settings: Settings,
    *,
    async_: bool,
) -> int:
    """The unapply limits from the applied counts. Returns the items the unapply touches."""
    parts, memo_items, target_items = await ledger.applied_counts(
        conn, data.source_kind, source_id, target_ids
    )
    errors = check_unapply_counts(
        limits=settings.limits,
        documents=len(data.targets) if data.targets else len(target_ids),
        invoices=sum(1 for t in data.targets if t.kind == INVOICE),
        specified_items={t.field: len(t.items) for t in request.targets if t.items is not None},
        specified_source_items=len(counting.named_source_items(request)),
        item_parts=parts,
        total_items=memo_items + target_items,
        async_=async_,
    )
    if errors:
        raise e.Rejected(errors)
    return memo_items + target_items
