"""Settlement persistence: resolve and lock documents, count for limits, load rule state, save.

Locking order, everywhere: the credit memo or payment first, then its targets in ascending id
order (one ``SELECT … ORDER BY id FOR UPDATE``; on PostgreSQL a credit memo's write takes both in
one statement, ``lock_memo_and_targets``, the memo first). Two requests therefore never wait on each other in
a cycle, and under READ COMMITTED every locked row is read in its latest committed version, its
items too (a statement that met a row changed since it began reads again: ``_locked_rows``). On
SQLite the write transaction holds the database lock from ``BEGIN IMMEDIATE`` on.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from types import SimpleNamespace
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    Table,
    bindparam,
    case,
    exists,
    func,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import direct, scope
from gateway import store as s
from gateway.ids import Ref
from gateway.settlement import errors as e
from gateway.settlement.model import (
    CREDIT_MEMO,
    ExistingItemPart,
    Source,
    SourceItem,
    Target,
    TargetItem,
)

Preloaded = dict[int, list[TargetItem]]


def _versions(table: Table) -> tuple[ColumnElement[Any], ...]:
    """PostgreSQL: the version (``xmin``) of each row a locking statement locked, and the version
    its snapshot read.

    They differ when the statement met a row another transaction had changed since the statement
    began (it waited for that one's lock, or that one committed just before): READ COMMITTED then
    locks and returns the row as last committed, but the rows joined to it (its items) are still
    read from the statement's start, before the other transaction moved money on them. Every move
    updates its documents' rows, so a changed row's items are suspect, and ``_locked_rows`` reads
    them again."""
    as_read = table.alias(f"{table.name}_as_read")
    read: Select[Any] = (
        select(literal_column(f"{as_read.name}.xmin")).select_from(as_read).where(as_read.c.id == table.c.id)
    )
    return (
        literal_column(f"{table.name}.xmin").label("locked_version"),
        read.scalar_subquery().label("read_version"),
    )


async def _locked_rows(
    conn: AsyncConnection, stmt: Select[Any], params: dict[str, Any], versions: bool
) -> list[Row[Any]]:
    """The rows of a locking statement, every joined row as of the locks (see ``_versions``)."""
    rows = list((await direct.execute(conn, stmt, params)).all())
    if versions and any(row.locked_version != row.read_version for row in rows):
        # Once more: the locks are held now, so nothing changes them before this statement, whose
        # snapshot is taken after the other transaction committed.
        rows = list((await direct.execute(conn, stmt, params)).all())
    return rows


# The statements of every apply are built once (building them costs more than running them).
@functools.cache
def _memo_with_items(by_number: bool, lock: bool, versions: bool) -> Select[Any]:
    m, i = s.credit_memo_t, s.credit_memo_item_t
    stmt = (
        select(m, *(_versions(m) if versions else ()), *(c.label(f"item_{c.name}") for c in i.c))
        .select_from(m.outerjoin(i, i.c.credit_memo_id == m.c.id))
        .where((m.c.number if by_number else m.c.id) == bindparam("ref"))
        .order_by(i.c.seq)
    )
    return stmt.with_for_update(of=m) if lock else stmt


# A TargetItem's fields, in its order: the last columns of a target-with-items row
TARGET_ITEM_COLUMNS = tuple(
    s.receivable_item_t.c[name] for name in ("id", "seq", "kind", "parent_item_id", "amount", "balance")
)


# The lock's statement brings the items of targets with at most this many: each of its rows repeats
# the target's columns, which costs more than a round trip past ~100 items (an apply at TOTAL_ITEMS,
# 14 invoices of 1,000 items: 58 ms to read them with the lock, 15 ms with ``load_targets``).
ITEMS_WITH_THE_LOCK = 100


@functools.cache
def _targets_with_items(by_id: bool, by_number: bool, lock: bool, versions: bool) -> Select[Any]:
    t, i = s.receivable_t, s.receivable_item_t
    named = []
    if by_id:
        named.append(t.c.id.in_(bindparam("ids", expanding=True)))
    if by_number:
        named.append(t.c.number.in_(bindparam("numbers", expanding=True)))
    small = t.c.item_count <= bindparam("small")
    stmt = (
        select(
            t, *(_versions(t) if versions else ()), *(c.label(f"item_{c.name}") for c in TARGET_ITEM_COLUMNS)
        )
        .select_from(t.outerjoin(i, (i.c.receivable_id == t.c.id) & small))
        .where(or_(*named))
        .order_by(t.c.id, i.c.seq)
    )
    return stmt.with_for_update(of=t) if lock else stmt


# What a Source holds of a credit memo and of its items, in the order of the combined lock's JSON
_MEMO_FIELDS = (
    "id",
    "number",
    "account_id",
    "currency",
    "status",
    "memo_date",
    "amount",
    "applied_amount",
    "unapplied_amount",
    "refund_amount",
    "reversed",
    "latest_applied_on",
)
_MEMO_ITEM_FIELDS = (
    "id",
    "seq",
    "kind",
    "parent_item_id",
    "source_item_id",
    "amount",
    "applied_amount",
    "unapplied_amount",
    "refund_amount",
)


@functools.cache
def _memo_then_targets(memo_by_number: bool, by_id: bool, by_number: bool) -> Any:
    """PostgreSQL: ``_memo_with_items`` and ``_targets_with_items`` (locking, with versions) as one
    statement, the memo locked first: its ``WITH`` parts lock the memo, then (only where it exists)
    the targets in id order. Its rows are the targets' rows, after a first row that is the memo's
    (``id`` null): its versions and, as ``source`` (its first column), the memo with its items (a
    JSON array, in ``_MEMO_FIELDS`` order, then the items' arrays by ``seq``)."""
    m, mi = s.credit_memo_t, s.credit_memo_item_t
    items = (
        select(
            func.json_agg(
                aggregate_order_by(func.json_build_array(*(mi.c[n] for n in _MEMO_ITEM_FIELDS)), mi.c.seq)
            )
        )
        .where(mi.c.credit_memo_id == m.c.id)
        .scalar_subquery()
    )
    memo = (
        select(*_versions(m), func.json_build_array(*(m.c[n] for n in _MEMO_FIELDS), items).label("source"))
        .where((m.c.number if memo_by_number else m.c.id) == bindparam("ref"))
        .with_for_update(of=m)
        .cte("memo")
    )
    targets = (
        _targets_with_items(by_id, by_number, True, True).where(exists(select(memo.c.source))).cte("targets")
    )
    versions = {"locked_version", "read_version"}
    # The memo's row first: its parameter then comes first in the statement's text as in its order
    # of parameters, which ``direct`` needs to send it with the targets' ids as they are (their
    # ``IN`` rendered for their count, so each count has its plan, as the targets' lock had).
    # ``source`` is the first column: a target's row ends with its item, as ``_targets_found`` reads.
    return union_all(
        select(
            memo.c.source,
            *(memo.c[c.name] if c.name in versions else null().label(c.name) for c in targets.c),
        ),
        select(null().label("source"), *targets.c),
    ).order_by(literal_column("id").asc().nulls_first(), literal_column("item_seq"))


async def lock_memo_and_targets(
    conn: AsyncConnection,
    ref: Ref,
    field: Sequence[str],
    wanted: Sequence[tuple[str, Ref, tuple[str, ...]]],
    *,
    items_up_to: int,
) -> tuple[Source, list[int | None], list[e.RuleViolation], dict[int, Row[Any]], Preloaded]:
    """``find_source`` of a credit memo and ``resolve_targets``, both locking, in one statement
    (PostgreSQL): an apply's reads are one round trip, not two. The same answers, the same locks in
    the same order; a row that waited for its lock makes the whole statement run once more, as each
    of the two did (``_locked_rows``). The caller names at least one target (``can_lock_together``)."""
    label = s.LABELS[CREDIT_MEMO]
    if ref.pk == -1:
        raise e.Rejected([e.NotFound(label, ref.raw, field=field)])
    pks, numbers = _named(wanted)
    stmt = _memo_then_targets(ref.pk is None, bool(pks), bool(numbers))
    params = {
        "ref": ref.pk if ref.pk is not None else ref.number,
        "ids": sorted(pks),
        "numbers": sorted(numbers),
        "small": items_up_to,
    }
    rows = await _locked_rows(conn, stmt, params, True)
    memo = rows[0].source if rows else None  # no memo: no target was locked either
    if isinstance(memo, str):
        memo = orjson.loads(memo)
    if memo is None or not scope.visible(memo[2]):
        raise e.Rejected([e.NotFound(label, ref.raw, field=field)])
    return _memo_source(memo), *_targets_found(wanted, rows[1:], items_up_to)


def can_lock_together(
    conn: AsyncConnection, kind: str, wanted: Sequence[tuple[str, Ref, tuple[str, ...]]]
) -> bool:
    """Whether ``lock_memo_and_targets`` serves this source and these targets."""
    return conn.dialect.name == "postgresql" and kind == CREDIT_MEMO and any(_named(wanted))


def _memo_source(memo: list[Any]) -> Source:
    """The Source of the combined lock's memo: its JSON array (``_MEMO_FIELDS``, then its items)."""
    *values, items = memo
    row = SimpleNamespace(**dict(zip(_MEMO_FIELDS, values, strict=True)))
    for day in ("memo_date", "latest_applied_on"):  # (JSON's dates are ISO strings)
        if (value := getattr(row, day)) is not None:
            setattr(row, day, date.fromisoformat(value))
    return _source(CREDIT_MEMO, row, tuple(SourceItem(*item) for item in items or ()))


async def find_source(
    conn: AsyncConnection, kind: str, ref: Ref, field: Sequence[str], *, lock: bool, with_items: bool = True
) -> Source:
    """The credit memo (with its items) or payment a reference names, read (and with ``lock``
    locked) by one statement, or NotFound at ``field``."""
    label = s.LABELS[kind]
    if kind != CREDIT_MEMO or not with_items:
        table = s.credit_memo_t if kind == CREDIT_MEMO else s.payment_t
        return _source(kind, await s.find(conn, table, ref, label, field=field, lock=lock), ())
    if ref.pk == -1:
        raise e.Rejected([e.NotFound(label, ref.raw, field=field)])
    value = ref.pk if ref.pk is not None else ref.number
    versions = lock and conn.dialect.name == "postgresql"
    rows = await _locked_rows(
        conn, _memo_with_items(ref.pk is None, lock, versions), {"ref": value}, versions
    )
    if not rows or not scope.visible(rows[0].account_id):
        raise e.Rejected([e.NotFound(label, ref.raw, field=field)])
    items = tuple(
        SourceItem(
            r.item_id,
            r.item_seq,
            r.item_kind,
            r.item_parent_item_id,
            r.item_source_item_id,
            r.item_amount,
            r.item_applied_amount,
            r.item_unapplied_amount,
            r.item_refund_amount,
        )
        for r in rows
        if r.item_id is not None
    )
    return _source(kind, rows[0], items)


def _source(kind: str, row: Any, items: tuple[SourceItem, ...]) -> Source:
    return Source(
        kind=kind,
        id=row.id,
        number=row.number,
        account_id=row.account_id,
        currency=row.currency,
        status=row.status,
        doc_date=row.memo_date if kind == CREDIT_MEMO else row.effective_date,
        amount=row.amount,
        applied=row.applied_amount,
        unapplied=row.unapplied_amount,
        refund=getattr(row, "refund_amount", 0),
        reversed=getattr(row, "reversed", False),
        items=items,
        latest_application_date=row.latest_applied_on,
    )


async def resolve_targets(
    conn: AsyncConnection,
    wanted: Sequence[tuple[str, Ref, tuple[str, ...]]],
    *,
    lock: bool = False,
    items_up_to: int = 0,
) -> tuple[list[int | None], list[e.RuleViolation], dict[int, Row[Any]], Preloaded]:
    """The receivable id each (kind, ref, field) names, or None with a NotFound at ``field + id``,
    and the rows found, read (and with ``lock`` locked, in id order) by one statement, which also
    brings the items of the documents that have at most ``items_up_to`` (for ``load_targets``)."""
    pks, numbers = _named(wanted)
    found: list[Row[Any]] = []
    if pks or numbers:
        versions = lock and conn.dialect.name == "postgresql"
        stmt = _targets_with_items(bool(pks), bool(numbers), lock, versions)
        params = {"ids": sorted(pks), "numbers": sorted(numbers), "small": items_up_to}
        found = await _locked_rows(conn, stmt, params, versions)
    return _targets_found(wanted, found, items_up_to)


def _named(wanted: Sequence[tuple[str, Ref, tuple[str, ...]]]) -> tuple[set[int], set[str]]:
    """The ids and the numbers the references name (an id that cannot exist names nothing)."""
    pks = {r.pk for _, r, _ in wanted if r.pk is not None and r.pk > 0}
    numbers = {r.number for _, r, _ in wanted if r.pk is None}
    return pks, numbers


def _targets_found(
    wanted: Sequence[tuple[str, Ref, tuple[str, ...]]], found: Sequence[Row[Any]], items_up_to: int
) -> tuple[list[int | None], list[e.RuleViolation], dict[int, Row[Any]], Preloaded]:
    """``resolve_targets``'s answer from the rows of ``_targets_with_items`` (by target, then item)."""
    by_ref: dict[Any, Row[Any]] = {}
    rows: dict[int, Row[Any]] = {}
    preloaded: Preloaded = {}
    last = None
    items: list[TargetItem] = []
    for each in found:
        if each.id != last:
            last = each.id
            by_ref[("id", each.id)] = by_ref[("number", each.number)] = each
            items = preloaded.setdefault(each.id, []) if each.item_count <= items_up_to else []
        if each.item_id is not None:
            items.append(TargetItem(*each[-len(TARGET_ITEM_COLUMNS) :]))
    ids: list[int | None] = []
    problems: list[e.RuleViolation] = []
    for kind, r, field in wanted:
        row = by_ref.get(("id", r.pk) if r.pk is not None else ("number", r.number))
        if row is None or row.kind != kind or not scope.visible(row.account_id):
            problems.append(e.NotFound(s.LABELS[kind], r.raw, field=(*field, "id")))
            ids.append(None)
        else:
            ids.append(int(row.id))
            rows[int(row.id)] = row
    return ids, problems, rows, preloaded


async def lock_targets(
    conn: AsyncConnection, ids: Iterable[int], *, lock: bool = True
) -> dict[int, Row[Any]]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    stmt = select(s.receivable_t).where(s.receivable_t.c.id.in_(wanted)).order_by(s.receivable_t.c.id)
    rows = (await conn.execute(stmt.with_for_update() if lock else stmt)).all()
    return {row.id: row for row in rows}


async def open_memo_item_count(conn: AsyncConnection, memo_id: int) -> int:
    t = s.credit_memo_item_t
    stmt = select(func.count()).where(t.c.credit_memo_id == memo_id, t.c.unapplied_amount > 0)
    return int((await conn.execute(stmt)).scalar_one())


@functools.cache
def _items_of() -> Select[Any]:
    t = s.receivable_item_t
    return (
        select(t.c.receivable_id, *TARGET_ITEM_COLUMNS)
        .where(t.c.receivable_id.in_(bindparam("ids", expanding=True)))
        .order_by(t.c.receivable_id, t.c.seq)
    )


async def load_targets(
    conn: AsyncConnection,
    rows: dict[int, Row[Any]],
    *,
    with_items: bool = True,
    progress: Any = None,
    preloaded: Preloaded | None = None,
) -> dict[int, Target]:
    """Targets with their items, read in batches of documents (progress is reported per batch);
    the items ``resolve_targets`` brought already are not read again."""
    items: dict[int, list[TargetItem]] = defaultdict(list, preloaded or {})
    ids = [pk for pk in rows if pk not in items]
    batch = 20
    for start in range(0, len(ids) if with_items else 0, batch):
        # only what a TargetItem holds (not the sku, description, …): 20,000 rows per batch
        for owner, *item in (await conn.execute(_items_of(), {"ids": ids[start : start + batch]})).all():
            items[owner].append(TargetItem(*item))
        if progress is not None:
            await progress(min(1.0, (start + batch) / len(ids)))
    return {
        pk: Target(
            kind=r.kind,
            id=r.id,
            number=r.number,
            account_id=r.account_id,
            currency=r.currency,
            status=r.status,
            doc_date=r.doc_date,
            amount=r.amount,
            balance=r.balance,
            items=tuple(items[pk]),
            referred_credit_memo_id=getattr(r, "referred_credit_memo_id", None),
        )
        for pk, r in rows.items()
    }


async def existing_item_parts(
    conn: AsyncConnection, kind: str, source_id: int, target_ids: Sequence[int] | None
) -> list[ExistingItemPart]:
    p, ip = s.part_t, s.item_part_t
    owner = p.c.credit_memo_id if kind == CREDIT_MEMO else p.c.payment_id
    stmt = (
        select(ip.c.credit_memo_item_id, p.c.target_id, ip.c.target_item_id, ip.c.amount)
        .select_from(ip.join(p, p.c.id == ip.c.part_id))
        .where(owner == source_id, ip.c.amount > 0)
        .order_by(ip.c.id)
    )
    if target_ids is not None:
        stmt = stmt.where(p.c.target_id.in_(set(target_ids)))
    return [ExistingItemPart(a, b, c, d) for a, b, c, d in (await conn.execute(stmt)).all()]


async def item_counts(conn: AsyncConnection, ids: Sequence[int]) -> tuple[dict[int, int], dict[int, int]]:
    """Per receivable: its items that count toward a limit (``counting.counts_toward_limit``: a
    balance above zero) and all its items, in one statement."""
    if not ids:
        return {}, {}
    t = s.receivable_item_t
    stmt = (
        select(t.c.receivable_id, func.count(case((t.c.balance > 0, 1))), func.count())
        .where(t.c.receivable_id.in_(set(ids)))
        .group_by(t.c.receivable_id)
    )
    rows = (await conn.execute(stmt)).all()
    return {r: int(n) for r, n, _ in rows}, {r: int(n) for r, _, n in rows}


async def applied_counts(
    conn: AsyncConnection, kind: str, source_id: int, target_ids: Sequence[int]
) -> tuple[int, int, int]:
    """What an unapply of these targets touches: item parts, memo items, target items."""
    p, ip = s.part_t, s.item_part_t
    owner = p.c.credit_memo_id if kind == CREDIT_MEMO else p.c.payment_id
    stmt = (
        select(
            func.count(),
            func.count(ip.c.credit_memo_item_id.distinct()),
            func.count(ip.c.target_item_id.distinct()),
        )
        .select_from(ip.join(p, p.c.id == ip.c.part_id))
        .where(owner == source_id, ip.c.amount > 0, p.c.target_id.in_(set(target_ids)))
    )
    parts, memo_items, target_items = (await conn.execute(stmt)).one()
    return int(parts), int(memo_items), int(target_items)
