"""SPEC.md's invariants, checked over the whole database after an operation."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select

from gateway import store as s
from gateway.db import Database


async def _all(conn: Any, table: Any) -> list[Any]:
    return list((await conn.execute(select(table))).all())


async def assert_invariants(db: Database) -> None:
    async with db.connect() as conn:
        memos = await _all(conn, s.credit_memo_t)
        memo_items = await _all(conn, s.credit_memo_item_t)
        payments = await _all(conn, s.payment_t)
        receivables = await _all(conn, s.receivable_t)
        items = await _all(conn, s.receivable_item_t)
        parts = await _all(conn, s.part_t)
        item_parts = await _all(conn, s.item_part_t)
    problems: list[str] = []

    # 1. amount = applied + unapplied + refund, each ≥ 0 (memos, memo items, payments)
    for m in [*memos, *memo_items]:
        if (
            m.amount != m.applied_amount + m.unapplied_amount + m.refund_amount
            or min(m.applied_amount, m.unapplied_amount, m.refund_amount) < 0
        ):
            problems.append(f"1: {m}")
    for p in payments:
        if p.amount != p.applied_amount + p.unapplied_amount or min(p.applied_amount, p.unapplied_amount) < 0:
            problems.append(f"1: payment {p}")

    # 2. 0 ≤ balance ≤ amount; amount − balance = sum of the parts applied to it
    applied_to: dict[int, int] = defaultdict(int)
    memo_applied_to: dict[int, int] = defaultdict(int)
    for p in parts:
        if p.target_id is not None:
            applied_to[p.target_id] += p.amount
            if p.credit_memo_id is not None:
                memo_applied_to[p.target_id] += p.amount
        if p.amount < 0:
            problems.append(f"negative part {p}")
    applied_to_item: dict[int, int] = defaultdict(int)
    for ip in item_parts:
        applied_to_item[ip.target_item_id] += ip.amount
        if ip.amount < 0:
            problems.append(f"negative item part {ip}")
    for r in receivables:
        if not 0 <= r.balance <= r.amount or r.amount - r.balance != applied_to[r.id]:
            problems.append(f"2: {r.number} amount {r.amount} balance {r.balance} parts {applied_to[r.id]}")
        if (
            r.credit_memo_amount != memo_applied_to[r.id]
            or r.credit_memo_amount + r.payment_amount != applied_to[r.id]
        ):
            problems.append(f"2: {r.number} credit {r.credit_memo_amount} payment {r.payment_amount}")
    item_sums: dict[int, int] = defaultdict(int)
    for i in items:
        item_sums[i.receivable_id] += i.amount
        if not 0 <= i.balance <= i.amount or i.amount - i.balance != applied_to_item[i.id]:
            problems.append(
                f"2: item {i.id} amount {i.amount} balance {i.balance} parts {applied_to_item[i.id]}"
            )
    for r in receivables:
        if item_sums[r.id] != r.amount:
            problems.append(f"document amount is not the sum of its items: {r.number}")

    # 3. item parts add up to their part; parts add up to amount − refund; items' applied = their item parts
    by_part: dict[int, int] = defaultdict(int)
    by_memo_item: dict[int, int] = defaultdict(int)
    for ip in item_parts:
        by_part[ip.part_id] += ip.amount
        if ip.credit_memo_item_id is not None:
            by_memo_item[ip.credit_memo_item_id] += ip.amount
    sums: dict[tuple[str, int], int] = defaultdict(int)
    for p in parts:
        if p.target_id is not None and by_part[p.id] != p.amount:
            problems.append(f"3: part {p.id} = {p.amount}, its item parts {by_part[p.id]}")
        owner = ("memo", p.credit_memo_id) if p.credit_memo_id is not None else ("payment", p.payment_id)
        sums[owner] += p.amount
    for m in memos:
        if sums[("memo", m.id)] != m.amount - m.refund_amount:
            problems.append(f"3: {m.number} parts {sums[('memo', m.id)]} != {m.amount} - {m.refund_amount}")
    for p in payments:
        if sums[("payment", p.id)] != p.amount:
            problems.append(f"3: {p.number} parts {sums[('payment', p.id)]} != {p.amount}")
    for mi in memo_items:
        if mi.applied_amount != by_memo_item[mi.id]:
            problems.append(
                f"3: memo item {mi.id} applied {mi.applied_amount} item parts {by_memo_item[mi.id]}"
            )

    # 4. money is conserved: credit applied = receivables reduced
    applied = sum(m.applied_amount for m in memos) + sum(p.applied_amount for p in payments)
    reduced = sum(r.amount - r.balance for r in receivables)
    if applied != reduced:
        problems.append(f"4: applied {applied} != reduced {reduced}")
    assert problems == [], "\n".join(problems[:20])


async def balances(db: Database) -> dict[str, Any]:
    """Every amount that settlement moves, for 'unapply restores exactly' comparisons."""
    async with db.connect() as conn:
        out: dict[str, Any] = {}
        for name, table, cols in (
            ("memo", s.credit_memo_t, ("applied_amount", "unapplied_amount", "refund_amount")),
            ("memo_item", s.credit_memo_item_t, ("applied_amount", "unapplied_amount", "refund_amount")),
            ("receivable", s.receivable_t, ("balance", "credit_memo_amount", "payment_amount")),
            ("item", s.receivable_item_t, ("balance",)),
            ("payment", s.payment_t, ("applied_amount", "unapplied_amount")),
        ):
            rows = (
                await conn.execute(select(table.c.id, *(table.c[c] for c in cols)).order_by(table.c.id))
            ).all()
            out[name] = [tuple(r) for r in rows]
        return out
