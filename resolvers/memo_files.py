"""uploadCreditMemoFile, generateCreditMemoPdfs, creditMemoPdfStatus, emailCreditMemo."""

from __future__ import annotations

import asyncio
from typing import Any, NoReturn

import strawberry
from strawberry.file_uploads import Upload
from strawberry.types import Info

from gateway.files import file_store
from gateway.ids import encode, ref
from gateway.services import emails, files, pdfs
from gateway.settlement.errors import InvalidValue
from resolvers.documents import actor, mutate
from resolvers.lookup import find
from resolvers.relations import ctx
from schema import inputs as i
from schema import payloads as p
from schema.errors import UserError, refusal, user_error
from schema.memo_files import CreditMemoFile, CreditMemoPdf
from schema.types import Job


async def _file_payload(info: Info, pk: int) -> p.CreditMemoFilePayload:
    row = await ctx(info).loaders.files_by_id.load(pk)
    return p.CreditMemoFilePayload(file=None if row is None else CreditMemoFile.from_row(row))


async def upload_credit_memo_file(
    self: Any, info: Info, credit_memo_id: strawberry.ID, file: Upload
) -> p.CreditMemoFilePayload:
    settings = ctx(info).settings
    if not hasattr(file, "read"):  # a literal or a JSON value, not a multipart file
        problem = InvalidValue(
            "send the file as a multipart upload (GraphQL multipart request spec)", field=("file",)
        )
        return p.CreditMemoFilePayload(user_errors=[user_error(problem)])
    try:  # one byte past the limit is enough to know it is too large
        data = await file.read(settings.max_file_bytes + 1)
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


async def _job_payload(info: Info, pk: int) -> p.JobPayload:
    from schema.mutation import by_ref_payload

    return await by_ref_payload(info, "Job", pk, p.JobPayload, "job")


async def _job(info: Info, pk: int) -> Job | None:
    from schema.query import by_ref  # schema.query imports this module

    found: Job | None = await by_ref(info, "Job", encode("Job", pk), None)
    return found


async def generate_credit_memo_pdfs(
    self: Any, info: Info, input: i.GenerateCreditMemoPdfsInput
) -> Job | None:
    """Returns the Job itself (the issue's contract); a refusal is a GraphQL error with the code and
    the input path of each memo (``refusal``)."""
    c = ctx(info)

    def refused(errors: list[UserError]) -> NoReturn:
        raise refusal(errors)

    return await mutate(
        info,
        lambda: pdfs.submit(
            c.db, c.settings, memos=[ref(m, "CreditMemo") for m in input.credit_memo_ids], actor=actor(info)
        ),
        lambda pk: _job(info, pk),
        refused,
    )


async def email_credit_memo(self: Any, info: Info, input: i.EmailCreditMemoInput) -> p.JobPayload:
    c = ctx(info)
    return await mutate(
        info,
        lambda: emails.submit(
            c.db,
            memo=ref(input.credit_memo_id, "CreditMemo"),
            to=input.to,
            key=input.idempotency_key or c.idempotency_key,
            actor=actor(info),
        ),
        lambda pk: _job_payload(info, pk),
        lambda errors: p.JobPayload(user_errors=errors),
    )


async def credit_memo_pdf_status(
    self: Any, info: Info, ids: list[strawberry.ID]
) -> list[CreditMemoPdf | None]:
    """Per id, in order: the memo's PDF state, or null when no visible memo has that id."""

    async def one(raw: str) -> CreditMemoPdf | None:
        row = await find(info, "CreditMemo", raw)
        if row is None:
            return None
        states = await ctx(info).loaders.pdfs_by_credit_memo.load(row.id)
        return CreditMemoPdf.from_row(states[0]) if states else CreditMemoPdf.none(row.id)

    return list(await asyncio.gather(*(one(raw) for raw in ids)))
