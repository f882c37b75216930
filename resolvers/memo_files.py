"""uploadCreditMemoFile: the multipart upload's bytes, within the size limit, to the file service."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.file_uploads import Upload
from strawberry.types import Info

from gateway.files import file_store
from gateway.ids import ref
from gateway.services import files
from resolvers.documents import actor, mutate
from resolvers.relations import ctx
from schema import payloads as p
from schema.memo_files import CreditMemoFile


async def _file_payload(info: Info, pk: int) -> p.CreditMemoFilePayload:
    row = await ctx(info).loaders.files_by_id.load(pk)
    return p.CreditMemoFilePayload(file=None if row is None else CreditMemoFile.from_row(row))


async def upload_credit_memo_file(
    self: Any, info: Info, credit_memo_id: strawberry.ID, file: Upload
) -> p.CreditMemoFilePayload:
    settings = ctx(info).settings
    try:  # one byte past the limit is enough to know it is too large
        data = await file.read(settings.max_file_bytes + 1)  # type: ignore[attr-defined]
    finally:
        await file.close()  # type: ignore[attr-defined]  # its spooled temporary file
    return await mutate(
        info,
        lambda: files.upload(
            ctx(info).db,
            file_store(settings),
            memo=ref(credit_memo_id, "CreditMemo"),
            name=getattr(file, "filename", None),
            content_type=getattr(file, "content_type", None) or "",
            data=data,
            max_bytes=settings.max_file_bytes,
            allowed=settings.allowed_content_types,
            actor=actor(info),
        ),
        lambda pk: _file_payload(info, pk),
        lambda errors: p.CreditMemoFilePayload(user_errors=errors),
    )
