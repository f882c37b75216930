"""API tokens: created once and shown once, stored as a SHA-256 hash, revocable.

A token carries permissions (in the spirit of Zuora's billing roles) and optionally a list of the
accounts it may see; every request and every WebSocket connection_init presents one as
``Authorization: Bearer <token>``."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import weakref
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from cachetools import TTLCache
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import store as s
from gateway import tables
from gateway.context import Principal
from gateway.db import Database
from gateway.ids import ref
from gateway.settlement import errors as e

token_t = tables.ApiToken.__table__  # type: ignore[attr-defined]

PERMISSIONS = (
    "read",
    "document.manage",
    "credit_memo.apply",
    "credit_memo.unapply",
    "credit_memo.reverse",
    "credit_memo.write_off",
    "credit_memo.refund",
    "payment.apply",
    "payment.unapply",
    "admin",
)
PREFIX = "sgw_"
# per Database: token hash -> principal, for ``settings.token_cache_seconds`` (known tokens only)
_CACHES: weakref.WeakKeyDictionary[Database, TTLCache[str, Principal]] = weakref.WeakKeyDictionary()
# per Database: token hash -> the lookup of it under way (``authenticate``)
_LOOKUPS: weakref.WeakKeyDictionary[Database, dict[str, asyncio.Future[Principal | None]]] = (
    weakref.WeakKeyDictionary()
)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def allows(principal: Principal, permission: str) -> bool:
    return "admin" in principal.permissions or permission in principal.permissions


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


async def create_token(
    db: Database, *, name: str, permissions: Sequence[str], accounts: Sequence[str] = ()
) -> str:
    unknown = sorted(set(permissions) - set(PERMISSIONS))
    if unknown or not permissions:
        raise e.Rejected(
            [
                e.InvalidValue(
                    f"unknown permissions {unknown}; choose from {', '.join(PERMISSIONS)}"
                    if unknown
                    else "a token needs at least one permission",
                    field=("permissions",),
                )
            ]
        )
    token = PREFIX + secrets.token_urlsafe(32)

    async def run(conn: AsyncConnection) -> str:
        pks = [
            int((await s.find(conn, s.account_t, ref(a, "Account"), "account", field=("accounts",))).id)
            for a in accounts
        ]
        if await conn.scalar(select(token_t.c.id).where(token_t.c.name == name)):
            raise e.Rejected([e.DuplicateNumber(f"a token named {name!r} exists already", field=("name",))])
        await conn.execute(
            token_t.insert().values(
                name=name,
                token_hash=hash_token(token),
                permissions=",".join(sorted(set(permissions))),
                accounts=",".join(map(str, sorted(set(pks)))) if pks else None,
                created_at=datetime.now(UTC),
            )
        )
        return token

    return await db.write(run)


async def list_tokens(db: Database) -> list[Any]:
    async with db.connect() as conn:
        return list((await conn.execute(select(token_t).order_by(token_t.c.id))).all())


async def revoke_token(db: Database, name: str) -> bool:
    async def run(conn: AsyncConnection) -> bool:
        done = await conn.execute(
            update(token_t)
            .where(token_t.c.name == name, token_t.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        return bool(done.rowcount)

    revoked = await db.write(run)
    _CACHES.pop(db, None)  # in this process a revocation takes effect at once
    return revoked


async def revoke_tokens_with_prefix(db: Database, prefix: str) -> int:
    """Revoke every active token whose name starts with ``prefix``; how many were revoked."""

    async def run(conn: AsyncConnection) -> int:
        done = await conn.execute(
            update(token_t)
            .where(token_t.c.name.startswith(prefix, autoescape=True), token_t.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        return int(done.rowcount)

    return await db.write(run)


async def authenticate(db: Database, token: str | None, *, fresh: bool = False) -> Principal | None:
    """The principal a presented token stands for; None for no, unknown or revoked tokens. HTTP
    requests may be answered from the per-process cache; ``fresh`` (every operation over an open
    WebSocket, and its periodic check) reads the token's row, so a revocation stops a socket at once."""
    if not token:
        return None
    digest = hash_token(token)
    cache = _cache(db)
    if fresh or cache is None:
        return await _look_up(db, digest, cache)
    if (known := cache.get(digest)) is not None:
        return known
    # One lookup per token at a time: the requests that miss the cache together (every request in
    # flight when the window ends) wait for the first one's, instead of each checking out a
    # connection (16 clients: a burst of new connections that stalled every request for ~0.2 s).
    # The lookup is a task of its own, so a waiter cancelled (its client gone) cancels no other.
    looking = _LOOKUPS.setdefault(db, {})
    pending = looking.get(digest)
    if pending is None or pending.get_loop() is not asyncio.get_running_loop():  # (a loop since closed)
        pending = looking[digest] = asyncio.ensure_future(_look_up(db, digest, cache))

        def finished(done: asyncio.Future[Principal | None]) -> None:
            if looking.get(digest) is done:
                del looking[digest]
            if not done.cancelled():
                done.exception()  # (retrieved: every waiter may have gone)

        pending.add_done_callback(finished)
    return await asyncio.shield(pending)


async def _look_up(db: Database, digest: str, cache: TTLCache[str, Principal] | None) -> Principal | None:
    """The token's row read (one statement), and the cache told what it says."""
    async with db.engine.connect() as conn:
        row = (await conn.execute(select(token_t).where(token_t.c.token_hash == digest))).first()
    if row is None or row.revoked_at is not None:
        if cache is not None:
            cache.pop(digest, None)
        return None
    principal = principal_of(
        row.name, row.permissions.split(","), row.accounts.split(",") if row.accounts else None
    )
    if cache is not None:
        cache[digest] = principal
    return principal


def _cache(db: Database) -> TTLCache[str, Principal] | None:
    ttl = db.settings.token_cache_seconds
    if ttl <= 0:
        return None
    if db not in _CACHES:
        _CACHES[db] = TTLCache(maxsize=10_000, ttl=ttl)
    return _CACHES[db]


def principal_of(name: str, permissions: Iterable[str], accounts: Iterable[str | int] | None) -> Principal:
    return Principal(
        name, frozenset(permissions), None if accounts is None else frozenset(int(a) for a in accounts)
    )
