"""Emailing a credit memo's PDF as a job: ``submit`` records an EMAIL_CREDIT_MEMO job and a PENDING
email on the memo (an idempotency key returns the same job); ``run_job`` renders the PDF, sends it
through SMTP (aiosmtplib) and records SENT or FAILED with the server's answer.

A job re-run after its worker died does not send an email already marked SENT; an email sent by a
worker that died before marking it can be sent twice (at-least-once delivery) **(ours)**."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import orjson
from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import idempotency
from gateway import store as s
from gateway.config import Settings
from gateway.db import Database
from gateway.ids import Ref
from gateway.services.documents import SYSTEM, Actor
from gateway.services.pdfs import render_memo
from gateway.settlement import errors as e
from gateway.settlement.documents import is_email_address

log = logging.getLogger(__name__)
OPERATION = "EMAIL_CREDIT_MEMO"
MAX_RECIPIENTS = 50


def recipients(given: Sequence[str] | None, bill_to: str | None) -> list[str]:
    if given is None:
        if not bill_to:
            raise e.Rejected(
                [
                    e.InvalidValue(
                        "the account has no bill-to email address: name addresses in `to`", field=("to",)
                    )
                ]
            )
        return [bill_to]
    problems: list[e.RuleViolation] = [
        e.InvalidValue(f"{a!r} is not an email address", field=("to", str(n)))
        for n, a in enumerate(given)
        if not is_email_address(a.strip())
    ]
    if not given or len(given) > MAX_RECIPIENTS:
        problems.append(e.InvalidValue(f"name 1 to {MAX_RECIPIENTS} addresses", field=("to",)))
    if problems:
        raise e.Rejected(problems)
    return list(dict.fromkeys(a.strip() for a in given))


async def submit(
    db: Database, *, memo: Ref, to: Sequence[str] | None, key: str | None, actor: Actor = SYSTEM
) -> int:
    claim = idempotency.claim(
        key, caller=actor.name or "", operation=OPERATION, request={"memo": memo.raw, "to": to}
    )

    async def run(conn: AsyncConnection) -> int:
        if claim is not None and (remembered := await idempotency.replay(conn, claim, in_progress_ok=True)):
            return int(remembered["job_id"])
        row = await s.find(conn, s.credit_memo_t, memo, "credit memo", field=("creditMemoId",))
        if row.status != "POSTED":  # as in Zuora: only a posted memo is sent to a customer
            raise e.Rejected(
                [
                    e.InvalidStatus(
                        f"credit memo {row.number} is {row.status}; only a POSTED memo is emailed",
                        field=("creditMemoId",),
                    )
                ]
            )
        acct = (await conn.execute(select(s.account_t).where(s.account_t.c.id == row.account_id))).one()
        to_ = recipients(to, acct.bill_to_email)
        request = {"actor": actor.name, "key": claim.key if claim else None}
        job_id = await s.insert_job(
            conn,
            operation=OPERATION,
            memo=row,
            request=orjson.dumps(request).decode(),
            total=1,
            created_by=actor.name,
        )
        await s.insert_row(
            conn,
            s.email_t,
            credit_memo_id=row.id,
            job_id=job_id,
            recipients=",".join(to_),
            status="PENDING",
            created_by=actor.name,
            created_at=datetime.now(UTC),
        )
        if claim is not None:
            await idempotency.remember(conn, claim, {"job_id": job_id}, status="IN_PROGRESS")
        return job_id

    return await db.write(run)


def message(
    settings: Settings, number: str, account_name: str, to: Sequence[str], pdf: bytes
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = ", ".join(to)
    msg["Subject"] = f"Credit memo {number}"
    msg.set_content(f"Dear {account_name},\n\nplease find attached credit memo {number}.\n")
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename=f"{number}.pdf")
    return msg


async def run_job(
    db: Database, settings: Settings, job: Row[Any], progress: Callable[[float], Awaitable[None]]
) -> list[e.RuleViolation]:
    async with db.connect() as conn:
        email = (await conn.execute(select(s.email_t).where(s.email_t.c.job_id == job.id))).one()
    if email.status == "SENT":  # a re-run of a job whose first run sent it already
        return []
    to = email.recipients.split(",")
    try:
        if not settings.smtp_host:
            raise RuntimeError("no SMTP server is configured (GATEWAY_SMTP_HOST)")
        doc, pdf = await render_memo(db, job.credit_memo_id)
        await aiosmtplib.send(
            message(settings, doc.number, doc.account_name, to, pdf),
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            start_tls=settings.smtp_starttls,
            timeout=settings.smtp_timeout_seconds,
        )
    except (aiosmtplib.SMTPException, OSError, RuntimeError) as exc:
        log.warning("email of credit memo %s (job %s) failed: %s", job.credit_memo_id, job.id, exc)
        error = f"the email could not be sent: {exc}"
        await db.write(lambda conn: _record(conn, email.id, status="FAILED", error=error))
        return [e.EmailNotSent(error, field=("creditMemoId",))]
    await db.write(lambda conn: _record(conn, email.id, status="SENT", error=None, sent_at=datetime.now(UTC)))
    await progress(1.0)
    return []


async def _record(conn: AsyncConnection, email_id: int, **values: Any) -> None:
    await conn.execute(update(s.email_t).where(s.email_t.c.id == email_id).values(**values))
