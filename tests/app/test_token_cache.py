"""Token lookups are cached a few seconds per process; a revocation here takes effect at once, one
made elsewhere within ``token_cache_seconds``."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx
from sqlalchemy import update

from gateway import auth
from gateway.app import create_app
from gateway.config import Settings
from gateway.db import Database
from tests.conftest import StatementCounter

Q = "{ accounts { totalCount } }"


async def test_a_known_token_is_looked_up_once_per_window(
    db: Database, settings: Settings, sql: StatementCounter
) -> None:
    token = await auth.create_token(db, name="cached", permissions=["read"])
    app = create_app(settings, db=db)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://g") as client:
        with sql:
            for _ in range(3):
                assert (await client.post("/graphql", json={"query": Q}, headers=headers)).status_code == 200
        lookups = [q for q in sql.statements if "FROM api_token" in q]
        assert len(lookups) == 1


async def test_requests_that_miss_the_cache_together_share_one_lookup(
    db: Database, settings: Settings, sql: StatementCounter
) -> None:
    """Every request in flight when the window ends misses the cache at once: one of them reads the
    token, the others wait for its answer; one whose client went away cancels no other's."""
    token = await auth.create_token(db, name="together", permissions=["read"])
    for _ in range(2):  # the first window, then the next one after the cache forgot the token
        auth._CACHES.pop(db, None)  # noqa: SLF001 - the window ends
        with sql:
            first = asyncio.ensure_future(auth.authenticate(db, token))
            others = [asyncio.ensure_future(auth.authenticate(db, token)) for _ in range(15)]
            first.cancel()
            principals = await asyncio.gather(*others)
        assert first.cancelled()
        assert {p.name for p in principals} == {"together"} and len(principals) == 15
        assert len([q for q in sql.statements if "FROM api_token" in q]) == 1
    assert auth._LOOKUPS[db] == {}  # noqa: SLF001 - nothing left under way
    with sql:  # and the cache answers the next one
        assert (await auth.authenticate(db, token)) == principals[0]
    assert sql.count == 0
    assert await auth.authenticate(db, "sgw_unknown") is None


async def test_a_revocation_elsewhere_takes_effect_within_the_window(
    db: Database, settings: Settings
) -> None:
    short = settings.replace(token_cache_seconds=1.0)
    token = await auth.create_token(db, name="elsewhere", permissions=["read"])
    app = create_app(short, db=Database(short, engine=db.engine, bus=db.bus))
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://g") as client:
        assert (await client.post("/graphql", json={"query": Q}, headers=headers)).status_code == 200
        async with db.connect(write=True) as conn:  # as the CLI of another process would
            await conn.execute(
                update(auth.token_t)
                .where(auth.token_t.c.name == "elsewhere")
                .values(revoked_at=datetime.now(UTC))
            )
        assert (
            await client.post("/graphql", json={"query": Q}, headers=headers)
        ).status_code == 200  # cached
        deadline = time.monotonic() + 10
        while (await client.post("/graphql", json={"query": Q}, headers=headers)).status_code != 401:
            assert time.monotonic() < deadline, "the revocation never took effect"
            await asyncio.sleep(0.05)
