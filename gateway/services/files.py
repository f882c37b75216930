"""Credit memo files: an upload's checks, its bytes in the file store and its row in one step, and
reading a file back within the caller's accounts."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import scope
from gateway import store as s
from gateway.db import Database
from gateway.files import FileStore, new_key
from gateway.ids import Ref
from gateway.services.documents import SYSTEM, Actor
from gateway.settlement import errors as e


def check_upload(name: str, content_type: str, size: int, *, max_bytes: int, allowed: frozenset[str]) -> None:
    problems: list[e.RuleViolation] = []
    if size > max_bytes:
        problems.append(e.FileTooLarge(f"a file may have at most {max_bytes:,} bytes", field=("file",)))
    if size == 0:
        problems.append(e.InvalidValue("the file is empty", field=("file",)))
    if content_type.split(";")[0].strip().lower() not in allowed:
        problems.append(
            e.UnsupportedContentType(
                f"{content_type or 'no content type'} is not accepted; "
                f"send one of {', '.join(sorted(allowed))}",
                field=("file",),
            )
        )
    if problems:
        raise e.Rejected(problems)


def clean_name(name: str | None) -> str:
    """The file's base name without control characters, at most 255 characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    printable = "".join(c for c in base if unicodedata.category(c)[0] != "C").strip()
    return printable[:255] or "file"


async def stored(
    db: Database, files: FileStore, data: bytes, write: Callable[[AsyncConnection, str], Awaitable[int]]
) -> int:
    """Put ``data`` in the store, then run ``write(conn, key)`` in a transaction; the bytes are
    removed again when the transaction fails, so no row points at missing bytes."""
    key = new_key("credit-memo-files")
    await files.put(key, data)
    try:
        return await db.write(lambda conn: write(conn, key))
    except BaseException:
        await files.delete(key)
        raise


async def insert_file(
    conn: AsyncConnection,
    memo: Row[Any],
    *,
    kind: str,
    name: str,
    content_type: str,
    data: bytes,
    key: str,
    actor: Actor,
) -> int:
    return await s.insert_row(
        conn,
        s.file_t,
        credit_memo_id=memo.id,
        account_id=memo.account_id,
        kind=kind,
        name=name,
        content_type=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        storage_key=key,
        created_by=actor.name,
        created_at=datetime.now(UTC),
    )


async def upload(
    db: Database,
    files: FileStore,
    *,
    memo: Ref,
    name: str | None,
    content_type: str,
    data: bytes,
    max_bytes: int,
    allowed: frozenset[str],
    actor: Actor = SYSTEM,
) -> int:
    check_upload(clean_name(name), content_type, len(data), max_bytes=max_bytes, allowed=allowed)

    async def write(conn: AsyncConnection, key: str) -> int:
        row = await s.find(conn, s.credit_memo_t, memo, "credit memo", field=("creditMemoId",))
        return await insert_file(
            conn,
            row,
            kind="ATTACHMENT",
            name=clean_name(name),
            content_type=content_type.split(";")[0].strip().lower(),
            data=data,
            key=key,
            actor=actor,
        )

    return await stored(db, files, data, write)


async def read(db: Database, files: FileStore, pk: int) -> tuple[Row[Any], bytes] | None:
    """A file's row and bytes, or None when it does not exist or is outside the caller's accounts."""
    async with db.connect() as conn:
        row = (await conn.execute(select(s.file_t).where(s.file_t.c.id == pk))).first()
    if row is None or not scope.visible(row.account_id):
        return None
    try:
        return row, await files.get(row.storage_key)
    except FileNotFoundError:
        return None
