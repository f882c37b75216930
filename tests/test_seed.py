"""The demo data is a realistic graph that keeps every invariant."""

from __future__ import annotations

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
