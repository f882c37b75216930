"""A credit memo's files, PDF state and emails: views over their rows."""

from __future__ import annotations

import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from sqlalchemy import Row
from strawberry.types import Info

from gateway.ids import encode
from resolvers.relations import ctx, one
from schema.enums import CreditMemoFileKind, EmailStatus, PdfStatus

if TYPE_CHECKING:
    from schema.types import CreditMemo, Job

DOWNLOAD_PATH = "/files/{id}"


def _utc(value: datetime.datetime | None) -> datetime.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=datetime.UTC)


def _job(r: Row[Any]) -> Any:
    from schema.types import Job

    return Job.from_row(r)


@strawberry.type(description="A file of a credit memo: an upload or a generated PDF.")
class CreditMemoFile:
    id: strawberry.ID
    kind: CreditMemoFileKind
    name: str
    content_type: str
    size: int = strawberry.field(description="Bytes.")
    sha256: str
    created_by: str | None
    created_at: datetime.datetime
    download_url: str = strawberry.field(
        description="GET it with the same Authorization header as the API (a path on this server)."
    )
    _row: strawberry.Private[Row[Any]]

    @classmethod
    def from_row(cls, r: Row[Any]) -> CreditMemoFile:
        gid = encode("CreditMemoFile", r.id)
        return cls(
            id=strawberry.ID(gid),
            kind=r.kind,
            name=r.name,
            content_type=r.content_type,
            size=r.size,
            sha256=r.sha256,
            created_by=r.created_by,
            created_at=_utc(r.created_at),  # type: ignore[arg-type]
            download_url=DOWNLOAD_PATH.format(id=gid),
            _row=r,
        )


@strawberry.type(description="Where a memo's PDF stands: NONE until generateCreditMemoPdfs names it.")
class CreditMemoPdf:
    status: PdfStatus
    error: str | None
    updated_at: datetime.datetime | None
    _row: strawberry.Private[Any]

    @classmethod
    def from_row(cls, r: Any) -> CreditMemoPdf:
        return cls(status=r.status, error=r.error, updated_at=_utc(r.updated_at), _row=r)

    @classmethod
    def none(cls, credit_memo_id: int) -> CreditMemoPdf:
        row = SimpleNamespace(
            credit_memo_id=credit_memo_id,
            status="NONE",
            error=None,
            updated_at=None,
            job_id=None,
            file_id=None,
        )
        return cls.from_row(row)

    @strawberry.field
    async def credit_memo(self, info: Info) -> Annotated[CreditMemo, strawberry.lazy("schema.types")]:
        from schema.types import CreditMemo

        return await one(ctx(info).loaders.credit_memos_by_id, self._row.credit_memo_id, CreditMemo.from_row)

    @strawberry.field(description="The generation job asked for last.")
    async def job(self, info: Info) -> Annotated[Job, strawberry.lazy("schema.types")] | None:
        return await one(ctx(info).loaders.jobs_by_id, self._row.job_id, _job)

    @strawberry.field(description="Set when GENERATED.")
    async def file(self, info: Info) -> CreditMemoFile | None:
        return await one(ctx(info).loaders.files_by_id, self._row.file_id, CreditMemoFile.from_row)


@strawberry.type(description="One emailing of a memo's PDF and its outcome.")
class CreditMemoEmail:
    recipients: list[str]
    status: EmailStatus
    error: str | None
    created_by: str | None
    created_at: datetime.datetime
    sent_at: datetime.datetime | None
    _row: strawberry.Private[Row[Any]]

    @classmethod
    def from_row(cls, r: Row[Any]) -> CreditMemoEmail:
        return cls(
            recipients=r.recipients.split(","),
            status=r.status,
            error=r.error,
            created_by=r.created_by,
            created_at=_utc(r.created_at),  # type: ignore[arg-type]
            sent_at=_utc(r.sent_at),
            _row=r,
        )

    @strawberry.field
    async def job(self, info: Info) -> Annotated[Job, strawberry.lazy("schema.types")]:
        return await one(ctx(info).loaders.jobs_by_id, self._row.job_id, _job)
