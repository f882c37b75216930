"""The demo data is a realistic graph that keeps every invariant."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from gateway import store as s
from gateway.config import Settings
from gateway.db import Database
from gateway.seed import SeedSpec, seed
from tests.invariants import assert_invariants


async def test_seed_settles_reverses_and_writes_off_and_keeps_the_invariants(
    db: Database, settings: Settings
) -> None:
    report = await seed(
        db, SeedSpec(accounts=6, invoices_per_account=5, items_per_document=6, seed=7), settings
    )
    assert report.applications > 0 and report.reversed > 0 and report.written_off > 0
    async with db.connect() as conn:
        kinds = dict(
            (
                await conn.execute(
                    select(s.application_t.c.kind, func.count()).group_by(s.application_t.c.kind)
                )
            ).all()
        )
        statuses = {r[0] for r in (await conn.execute(select(s.credit_memo_t.c.status).distinct())).all()}
    assert {"APPLY", "UNAPPLY", "REVERSE", "WRITE_OFF"} <= set(kinds)
    assert statuses == {"DRAFT", "POSTED", "CANCELED"}
    await assert_invariants(db)


async def test_seed_is_all_or_nothing(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway import seed as seeding
    from gateway.seed import seed_atomically

    real = seeding.svc.create_payment
    calls = 0

    async def failing_second_payment(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("disk full")
        return await real(*args, **kwargs)

    monkeypatch.setattr(seeding.svc, "create_payment", failing_second_payment)
    spec = SeedSpec(accounts=3, invoices_per_account=2, items_per_document=3, seed=5)
    with pytest.raises(RuntimeError, match="disk full"):
        await seed_atomically(db, spec, settings)
    assert calls == 2
    async with db.connect() as conn:
        for table in (s.account_t, s.credit_memo_t, s.receivable_t, s.application_t):
            assert await conn.scalar(select(func.count()).select_from(table)) == 0, table.name
    monkeypatch.setattr(seeding.svc, "create_payment", real)
    report = await seed_atomically(db, spec, settings)
    async with db.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(s.account_t)) == report.accounts == 3
        assert await conn.scalar(select(func.count()).select_from(s.application_t)) > 0
